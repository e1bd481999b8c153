"""Job calls beyond the contract: cancel, the account's queue, and every executor by its figures."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from megamind.api.bodies import json_response, read_query
from megamind.api.handlers import hardware_item
from megamind.api.jobschemas import hardware_query_schema, queue_schema
from megamind.api.keys import ACCOUNT, hub_key, store_key
from megamind.api.schemas import STATUS_OK
from megamind.jobspec import TaskLimits
from megamind.placement import Capacity, Need, Requirements, fits, placement_order
from megamind.store.executors import ExecutorRecord

# The largest first, the cheaper between equals; by cost, the order placement follows.
_SORT_KEYS = {
    "cost": placement_order,
    "rating": lambda cap: (-cap.rating, cap.cost, cap.hwid),
    "ram": lambda cap: (-cap.ram, cap.cost, cap.hwid),
    "gpus": lambda cap: (-len(cap.gpu_names), cap.cost, cap.hwid),
    "cpus": lambda cap: (-cap.cpu_count, cap.cost, cap.hwid),
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


def hardware_figures(record: ExecutorRecord, cap: Capacity, online: bool) -> dict[str, Any]:
    return {
        **hardware_item(record),
        "cpu_count": cap.cpu_count,
        "gpu_memory_mb": list(cap.gpu_memory_mb),
        "status": status_of(record, online),
        "slots": int(record.hardware.get("slots") or 1),
    }


async def hardware(request: web.Request) -> web.Response:
    """GET /api/v1/hardware: executors filtered by the requirement fields, sorted and paged."""
    query = read_query(request, hardware_query_schema)
    store, hub = request.app[store_key], request.app[hub_key]
    need = Need.of(Requirements.from_dict(query), TaskLimits())
    wanted = query["status"]
    matching = []
    for record in await store.executors.all():
        online, cap = hub.is_online(record.hwid), record.capacity
        if (wanted == "any" or status_of(record, online) == wanted) and fits(need, cap):
            matching.append((record, cap, online))
    order = _SORT_KEYS[query["sort"]]
    matching.sort(key=lambda item: order(item[1]))
    page = matching[query["offset"]:query["offset"] + query["limit"]]
    return json_response({"executors": [hardware_figures(*item) for item in page], "total": len(matching)})
