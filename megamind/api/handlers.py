"""The six customer calls."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from megamind.api.bodies import json_response, read_body
from megamind.api.keys import ACCOUNT, blobs_key, config_key, hub_key, store_key
from megamind.api.output import results_key
from megamind.api.schemas import (
    STATUS_OK,
    add_task_request_schema,
    task_id_schema,
    task_logs_schema,
)
from megamind.errors import ExecutorNotFound, ExecutorOffline, TaskQueued, Unsatisfiable, ValidationFailed
from megamind.imageref import parse_image
from megamind.jobspec import PortRequest, RunSpec, TaskLimits
from megamind.placement import Need, Requirements, shortfalls
from megamind.states import TaskState, visible_state
from megamind.store.accounts import Account
from megamind.store.executors import ExecutorRecord
from megamind.store.files import FileRecord
from megamind.store.taskmodel import NewTask, Task


def _account(request: web.Request) -> Account:
    return request[ACCOUNT]


def _run_payload(request: web.Request, image: str, params: str, inputs: list[FileRecord],
                 spec: RunSpec) -> dict[str, Any]:
    """What an agent needs to run the image: where to pull it, what to hand it, which files to fetch,
    and the task's own command, surroundings and limits."""
    ref = parse_image(image)
    return {
        "image": ref.pull_reference(request.app[config_key].registry),
        "public_image": ref.public,
        "params": params,
        "inputs": [f.input_file().to_wire() for f in inputs],
        "spec": spec.to_wire(),
    }


def run_spec(body: dict[str, Any]) -> RunSpec:
    limits = body.get("limits") or {}
    return RunSpec(
        command=tuple(body["command"]) if body.get("command") is not None else None,
        env=dict(body.get("env") or {}),
        workdir=body.get("workdir"),
        ports=tuple(PortRequest(p["container"], p["host"]) for p in body.get("ports") or ()),
        limits=TaskLimits(limits.get("cpus"), limits.get("memory"), limits.get("cputime"), limits.get("runtime")),
    )


async def _inputs(request: web.Request, file_ids: list[str]) -> list[FileRecord]:
    files = await request.app[store_key].files.of_account(_account(request).id, file_ids)
    names: set[str] = set()
    for f in files:
        if f.name in names:
            raise ValidationFailed(f"inputs: two files are named {f.name!r}; each lands at /megamind/input/<name>")
        names.add(f.name)
    return files


# The two listings are the calls customers poll: their items are plain dicts of the
# schema's fields and types, built directly.  (A marshmallow dump of 1,000 executors
# took 15 ms, ten times the JSON encoding itself; the output is the same.)


def hardware_item(record: ExecutorRecord) -> dict[str, Any]:
    hw = record.hardware
    return {
        "hwid": record.hwid,
        "gpus": hw.get("gpus", []),
        "cpus": hw.get("cpus", []),
        "ram": int(hw.get("ram", 0)),
        "network": hw.get("network", "unknown"),
        "calculated_perfomance_rating": float(hw.get("calculated_perfomance_rating", 0.0)),
        "cost": float(record.cost),
    }


def task_item(task: Task, executor_online: bool) -> dict[str, Any]:
    """A task as gettasklist shows it: the state a customer sees, not the stored one
    (a queued task has no executor to be away: it shows setup)."""
    return {
        "taskid": task.taskid,
        "ip": task.ip,
        "image": task.image,
        "params": task.params,
        "state": int(visible_state(task.state, executor_online)),
        "error_msg": task.error_msg,
    }


async def gethwlist(request: web.Request) -> web.Response:
    hub, store = request.app[hub_key], request.app[store_key]
    busy = await store.tasks.busy_executors()
    return json_response([hardware_item(r) for r in hub.online() if r.hwid not in busy])


async def validate_pinned(request: web.Request, body: dict[str, Any], spec: RunSpec) -> ExecutorRecord:
    """The executor an addtask body names, if a task could start there now."""
    hwid = body["hwid"]
    if body.get("requirements"):
        raise ValidationFailed("give hwid or requirements, not both: hwid runs the task exactly there")
    record = await request.app[store_key].executors.get(hwid)
    if record is None:
        raise ExecutorNotFound(f"hwid: no executor {hwid!r}; pick one from gethwlist")
    if not request.app[hub_key].is_online(hwid):
        raise ExecutorOffline(f"hwid: executor {hwid} is offline")
    lacking = shortfalls(Need.of(Requirements(), spec.limits), record.capacity)
    if lacking:
        raise Unsatisfiable(f"executor {hwid} cannot hold the limits: it lacks {', '.join(lacking)}")
    return record


async def addtask(request: web.Request) -> web.Response:
    body = await read_body(request, add_task_request_schema)
    store, hub = request.app[store_key], request.app[hub_key]
    hwid = body.get("hwid")
    parse_image(body["image"])  # a bad image is answered before the inputs are looked up
    inputs = await _inputs(request, body["inputs"])
    spec = run_spec(body)
    payload = _run_payload(request, body["image"], body["params"], inputs, spec)
    if hwid is not None:
        await validate_pinned(request, body, spec)
    placed = await store.scheduler.submit(NewTask(
        _account(request).id, payload["public_image"], body["params"], payload,
        inputs=tuple(f.file_id for f in inputs), hwid=hwid,
        requirements=Requirements.from_dict(body.get("requirements") or {}), spec=spec,
        priority=body["priority"], queue_timeout=body["queue_timeout"],
    ))
    if placed.command is not None:
        await hub.dispatch(placed.command)
    return json_response(task_id_schema.dump({"taskid": placed.task.taskid}))


async def deltask(request: web.Request) -> web.Response:
    store, hub = request.app[store_key], request.app[hub_key]
    taskid = request.match_info["taskid"]
    command = await store.tasks.delete(_account(request).id, taskid)
    # The task's output goes with it; its input files are the account's and stay.
    await store.logs.delete(taskid)
    await request.app[blobs_key].delete(results_key(taskid))
    if command is not None:
        await hub.dispatch(command)
    return json_response(STATUS_OK)


async def gettasklist(request: web.Request) -> web.Response:
    store, hub = request.app[store_key], request.app[hub_key]
    tasks = await store.tasks.list_for_account(_account(request).id)
    return json_response([task_item(t, t.hwid is None or hub.is_online(t.hwid)) for t in tasks])


async def restarttask(request: web.Request) -> web.Response:
    store, hub = request.app[store_key], request.app[hub_key]
    task = await store.tasks.get(_account(request).id, request.match_info["taskid"])
    if task.hwid is None:
        if task.state == TaskState.SETUP:
            raise TaskQueued(f"task {task.taskid} is queued: it starts when an executor is free")
        # It ended before it was placed (cancelled, out of queue time): placed or queued again.
        start = await store.scheduler.requeue(task.account_id, task.taskid)
        if start is not None:
            await hub.dispatch(start)
        return json_response(STATUS_OK)
    if not hub.is_online(task.hwid):
        raise ExecutorOffline(f"executor {task.hwid} of task {task.taskid} is offline; retry when it is back")
    # The command, env, ports and limits addtask gave are kept with the task and sent again;
    # a task from before they were kept runs its image as it did.
    payload = await store.tasks.run_payload_of(task.taskid)
    if not payload:
        inputs = await store.files.of_account(task.account_id, await store.tasks.inputs_of(task.taskid))
        payload = _run_payload(request, task.image, task.params, inputs, RunSpec())
    command = await store.tasks.restart(task.account_id, task.taskid, payload)
    await hub.dispatch(command)
    return json_response(STATUS_OK)


async def gettasklogs(request: web.Request) -> web.Response:
    store = request.app[store_key]
    task = await store.tasks.get(_account(request).id, request.match_info["taskid"])
    lines = await store.logs.tail(task.taskid)
    text = "".join(line + "\n" for line in lines)
    logs_b64 = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return json_response(task_logs_schema.dump({"taskid": task.taskid, "logs_b64": logs_b64}))
