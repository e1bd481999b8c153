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
from megamind.errors import ExecutorNotFound, ExecutorOffline, ValidationFailed
from megamind.imageref import parse_image
from megamind.states import visible_state
from megamind.store.accounts import Account
from megamind.store.executors import ExecutorRecord
from megamind.store.files import FileRecord
from megamind.store.tasks import Task


def _account(request: web.Request) -> Account:
    return request[ACCOUNT]


def _run_payload(request: web.Request, image: str, params: str, inputs: list[FileRecord]) -> dict[str, Any]:
    """What an agent needs to run the image: where to pull it, what to hand it, which files to fetch."""
    ref = parse_image(image)
    return {
        "image": ref.pull_reference(request.app[config_key].registry),
        "public_image": ref.public,
        "params": params,
        "inputs": [f.input_file().to_wire() for f in inputs],
    }


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
    """A task as gettasklist shows it: the state a customer sees, not the stored one."""
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
    store, hub = request.app[store_key], request.app[hub_key]
    parse_image(body["image"])  # a bad image is answered before the inputs are looked up
    inputs = await _inputs(request, body["inputs"])
    payload = _run_payload(request, body["image"], body["params"], inputs)
    hwid = body["hwid"]
    if await store.executors.get(hwid) is None:
        raise ExecutorNotFound(f"hwid: no executor {hwid!r}; pick one from gethwlist")
    if not hub.is_online(hwid):
        raise ExecutorOffline(f"hwid: executor {hwid} is offline")
    task, command = await store.tasks.create(
        _account(request).id, hwid, payload["public_image"], body["params"], payload,
        inputs=[f.file_id for f in inputs],
    )
    await hub.dispatch(command)
    return json_response(task_id_schema.dump({"taskid": task.taskid}))


async def deltask(request: web.Request) -> web.Response:
    store, hub = request.app[store_key], request.app[hub_key]
    taskid = request.match_info["taskid"]
    command = await store.tasks.delete(_account(request).id, taskid)
    # The task's output goes with it; its input files are the account's and stay.
    await store.logs.delete(taskid)
    await request.app[blobs_key].delete(results_key(taskid))
    await hub.dispatch(command)
    return json_response(STATUS_OK)


async def gettasklist(request: web.Request) -> web.Response:
    store, hub = request.app[store_key], request.app[hub_key]
    tasks = await store.tasks.list_for_account(_account(request).id)
    return json_response([task_item(t, hub.is_online(t.hwid)) for t in tasks])


async def restarttask(request: web.Request) -> web.Response:
    store, hub = request.app[store_key], request.app[hub_key]
    task = await store.tasks.get(_account(request).id, request.match_info["taskid"])
    if not hub.is_online(task.hwid):
        raise ExecutorOffline(f"executor {task.hwid} of task {task.taskid} is offline; retry when it is back")
    inputs = await store.files.of_account(task.account_id, await store.tasks.inputs_of(task.taskid))
    command = await store.tasks.restart(task.account_id, task.taskid,
                                        _run_payload(request, task.image, task.params, inputs))
    await hub.dispatch(command)
    return json_response(STATUS_OK)


async def gettasklogs(request: web.Request) -> web.Response:
    store = request.app[store_key]
    task = await store.tasks.get(_account(request).id, request.match_info["taskid"])
    lines = await store.logs.tail(task.taskid)
    text = "".join(line + "\n" for line in lines)
    logs_b64 = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return json_response(task_logs_schema.dump({"taskid": task.taskid, "logs_b64": logs_b64}))
