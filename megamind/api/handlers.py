"""The six customer calls."""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from megamind.api import jobservice
from megamind.api.bodies import json_response, read_body
from megamind.api.keys import ACCOUNT, hub_key, store_key
from megamind.api.schemas import (
    STATUS_OK,
    add_task_request_schema,
    task_id_schema,
    task_logs_schema,
)
from megamind.errors import ExecutorOffline, TaskQueued
from megamind.jobspec import RunSpec
from megamind.states import TaskState, visible_state
from megamind.store.accounts import Account
from megamind.store.executors import ExecutorRecord
from megamind.store.taskmodel import Task


def _account(request: web.Request) -> Account:
    return request[ACCOUNT]


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


async def addtask(request: web.Request) -> web.Response:
    body = await read_body(request, add_task_request_schema)
    taskid = await jobservice.submit(request.config_dict, _account(request), body)
    return json_response(task_id_schema.dump({"taskid": taskid}))


async def deltask(request: web.Request) -> web.Response:
    await jobservice.delete(request.config_dict, _account(request), request.match_info["taskid"])
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
        payload = jobservice.run_payload(request.config_dict, task.image, task.params, inputs, RunSpec())
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
