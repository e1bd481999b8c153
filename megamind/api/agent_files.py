"""The agent's file transfers, beside its WebSocket: results up, input files down.

    PUT /api/agent/v1/results/{taskid}           the task's /megamind/output/ as tar.gz
    GET /api/agent/v1/files/{file_id}?taskid=    an input file of a task it runs

Both take the executor's token and serve only tasks that run on that executor and were
not deleted; anything else is a 404, so an executor learns nothing of other tasks.
"""

from __future__ import annotations

from aiohttp import web

from megamind.api.keys import auth_key, blobs_key, config_key, store_key
from megamind.api.output import input_key, results_key, send_blob
from megamind.api.uploads import body_chunks, refuse_announced
from megamind.blobs import BlobNotFound
from megamind.errors import TaskNotFound, ValidationFailed

RESULTS_TRUNCATED_HEADER = "X-Megamind-Results-Truncated"  # files the agent left out


def _truncated(request: web.Request) -> int:
    raw = request.headers.get(RESULTS_TRUNCATED_HEADER, "0")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise ValidationFailed(f"{RESULTS_TRUNCATED_HEADER}: must be a non-negative integer")
    return int(raw)


async def put_results(request: web.Request) -> web.Response:
    record = await request.app[auth_key].executor(request)
    store, blobs = request.app[store_key], request.app[blobs_key]
    taskid = request.match_info["taskid"]
    if not await store.tasks.is_live_on(record.hwid, taskid):
        raise TaskNotFound(f"no task {taskid!r} on this executor")
    truncated = _truncated(request)
    limit = request.app[config_key].results_limit_bytes
    refuse_announced(request, limit)
    # A restarted task's new results replace the old ones whole (the write is atomic).
    info = await blobs.write(results_key(taskid), body_chunks(request), limit)
    if not await store.tasks.set_results(taskid, info.size, truncated):
        await blobs.delete(results_key(taskid))  # deleted while it uploaded
        raise TaskNotFound(f"no task {taskid!r} on this executor")
    return web.Response(status=204)


async def get_input(request: web.Request) -> web.StreamResponse:
    record = await request.app[auth_key].executor(request)
    file_id, taskid = request.match_info["file_id"], request.query.get("taskid", "")
    file = await request.app[store_key].files.input_of(record.hwid, taskid, file_id)
    if file is None:
        raise TaskNotFound(f"no input file {file_id!r} of a task {taskid!r} on this executor")
    try:
        async with request.app[blobs_key].open(input_key(file.file_id)) as blob:
            return await send_blob(request, blob, {"Content-Type": "application/octet-stream"})
    except BlobNotFound:
        raise TaskNotFound(f"the bytes of file {file_id!r} are gone") from None
