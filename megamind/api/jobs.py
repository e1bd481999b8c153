"""Job calls beyond the contract: cancel, the account's queue, and every executor by its figures."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from marshmallow import ValidationError

from megamind.api.bodies import describe_validation_error, json_response
from megamind.api.handlers import hardware_item
from megamind.api.jobschemas import hardware_query_schema, queue_schema
from megamind.api.keys import ACCOUNT, hub_key, store_key
from megamind.api.schemas import STATUS_OK
from megamind.errors import ValidationFailed
from megamind.jobspec import TaskLimits
from megamind.placement import Need, Requirements, fits
from megamind.store.executors import ExecutorRecord

_SORT_KEYS = {
    "cost": lambda r: (r.cost, -r.capacity.rating, r.hwid),
    "rating": lambda r: (-r.capacity.rating, r.cost, r.hwid),
    "ram": lambda r: (-r.capacity.ram, r.cost, r.hwid),
    "gpus": lambda r: (-len(r.capacity.gpu_names), r.cost, r.hwid),
    "cpus": lambda r: (-r.capacity.cpu_count, r.cost, r.hwid),
}


async def cancel(request: web.Request) -> web.Response:
    """POST /api/v1/task/{taskid}/cancel: end the task and keep it (state 4, cancelled)."""
    store, hub = request.app[store_key], request.app[hub_key]
    command = await store.tasks.cancel(request[ACCOUNT].id, request.match_info["taskid"])
    if command is not None:
        await hub.dispatch(command)
    return json_response(STATUS_OK)


async def queue(request: web.Request) -> web.Response:
    """GET /api/v1/queue: the account's tasks waiting for an executor, next first."""
    items = await request.app[store_key].scheduler.queued_for_account(request[ACCOUNT].id)
    return json_response(queue_schema.dump({"tasks": items}))


def status_of(record: ExecutorRecord, online: bool) -> str:
    if not online:
        return "offline"
    return "busy" if record.busy else "free"


def hardware_figures(record: ExecutorRecord, online: bool) -> dict[str, Any]:
    cap = record.capacity
    return {
        **hardware_item(record),
        "cpu_count": cap.cpu_count,
        "gpu_memory_mb": list(cap.gpu_memory_mb),
        "status": status_of(record, online),
        "slots": int(record.hardware.get("slots") or 1),
    }


async def hardware(request: web.Request) -> web.Response:
    """GET /api/v1/hardware: executors filtered by the requirement fields, sorted and paged."""
    try:
        query = hardware_query_schema.load(dict(request.query))
    except ValidationError as exc:
        raise ValidationFailed(describe_validation_error(exc.messages)) from None
    store, hub = request.app[store_key], request.app[hub_key]
    need = Need.of(Requirements.from_dict(query), TaskLimits())
    wanted = query["status"]
    matching = []
    for record in await store.executors.all():
        online = hub.is_online(record.hwid)
        if (wanted == "any" or status_of(record, online) == wanted) and fits(need, record.capacity):
            matching.append((record, online))
    matching.sort(key=lambda pair: _SORT_KEYS[query["sort"]](pair[0]))
    page = matching[query["offset"]:query["offset"] + query["limit"]]
    return json_response({"executors": [hardware_figures(r, online) for r, online in page], "total": len(matching)})
