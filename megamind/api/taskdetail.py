"""One task in full, as the detail call, history and the paged listing show it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from megamind.api.handlers import task_item
from megamind.api.keys import hub_key, store_key
from megamind.money import from_micro
from megamind.placement import Need
from megamind.states import TaskState
from megamind.store.taskmodel import TaskDetail

_EVERY_ADDRESS = ("", "0.0.0.0", "::", "[::]")


def published_address(publish_address: str, executor_ip: str) -> str:
    """Where a customer reaches a published port: the owner's chosen address, or the
    executor's own when it publishes on every address of its host."""
    return executor_ip if publish_address in _EVERY_ADDRESS else publish_address


async def detail_view(app: web.Application, detail: TaskDetail, *, with_env: bool = True) -> dict[str, Any]:
    """The detail's fields (``task_detail_schema``); a deleted task also says when it went."""
    store, hub = app[store_key], app[hub_key]
    task = detail.task
    online = task.hwid is not None and hub.is_online(task.hwid)
    item = task_item(task, online or task.hwid is None)
    state = TaskState(item["state"])
    queued = detail.queued and not task.deleted
    if queued:
        phase = "queued"
    else:
        phase = hub.phase(task.hwid, task.taskid) if state == TaskState.SETUP and task.hwid else None
    spec = detail.spec
    view = {
        **item,
        "state_name": state.name.lower(),
        "hwid": task.hwid,
        "executor_online": online,
        "pending_command": detail.pending_command,
        "phase": phase,
        "created_at": detail.created_at,
        "updated_at": detail.updated_at,
        "progress": detail.progress,
        "results": detail.results,
        "requirements": detail.requirements.to_dict(),
        "command": list(spec.command) if spec.command is not None else None,
        "workdir": spec.workdir,
        "limits": spec.limits.to_wire(),
        "priority": detail.priority,
        "queue_position": await store.scheduler.position(task.taskid, detail.priority, detail.created_at)
        if queued else None,
        "pending_reason": await store.scheduler.explain(Need.of(detail.requirements, spec.limits))
        if queued else None,
        "ports": [{"container": p.container, "host": p.host,
                   "address": published_address(detail.publish_address, task.ip)} for p in detail.ports],
        "exit_code": detail.exit_code,
        "cancelled": detail.cancelled,
        "labels": detail.labels,
        "price": detail.price,
        "billed_seconds": detail.billed_ms / 1000,
        "cost": from_micro(detail.cost_micro),
        "placed_at": detail.placed_at,
        "started_at": detail.started_at,
        "finished_at": detail.finished_at,
    }
    if with_env:
        view["env"] = spec.env
    return view
