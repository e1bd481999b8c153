"""What tasks produce and consume: their whole logs, their results, the files they are given.

    GET  /api/v1/task/{taskid}/logs?stream=&tail=&follow=   text/plain, one line per line
    GET  /api/v1/task/{taskid}/results                      application/gzip
    POST /api/v1/files                                      an input file for addtask
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from aiohttp import web

from megamind.api.bodies import json_response
from megamind.api.keys import ACCOUNT, blobs_key, config_key, store_key
from megamind.api.schemas import file_schema
from megamind.api.uploads import store_upload
from megamind.blobs import BlobNotFound, BlobReader
from megamind.errors import ResultsNotFound, TaskNotFound, ValidationFailed
from megamind.protocol import Stream
from megamind.store import Store
from megamind.store.files import check_file_name, new_file_id
from megamind.store.logs import PAGE_LINES
from megamind.taskenv import OUTPUT_DIR

STREAMS = {s.name.lower(): s for s in Stream}
FOLLOW_VALUES = {"0": False, "false": False, "1": True, "true": True}
# A follower looks at the task's state at least this often (a task can end with no line),
# and when it wakes with no line of its stream (the task deleted, the other stream busy)
# at most this often.
STATE_CHECK_S = 1.0
IDLE_CHECK_S = 0.1
WRITE_BYTES = 64 * 1024
_MAX_TAIL_DIGITS = 18  # more asks for everything anyway
_DIGITS = re.compile(r"[0-9]+")


def results_key(taskid: str) -> str:
    return f"results/{taskid}"


def input_key(file_id: str) -> str:
    return f"files/{file_id}"


# --- logs -------------------------------------------------------------------------------


def _log_query(query: Mapping[str, str]) -> tuple[Stream, int | None, bool]:
    stream = STREAMS.get(query.get("stream", "stdout"))
    if stream is None:
        raise ValidationFailed(f"stream: must be one of {', '.join(STREAMS)}")
    tail = query.get("tail")
    if tail is not None and not _DIGITS.fullmatch(tail):
        raise ValidationFailed("tail: must be a non-negative integer")
    follow = FOLLOW_VALUES.get(query.get("follow", "0"))
    if follow is None:
        raise ValidationFailed(f"follow: must be one of {', '.join(FOLLOW_VALUES)}")
    if tail is None:
        return stream, None, follow
    return stream, int(tail) if len(tail) <= _MAX_TAIL_DIGITS else 10 ** _MAX_TAIL_DIGITS, follow


async def logs(request: web.Request) -> web.StreamResponse:
    """The task's lines of one stream, oldest first; with follow, new ones as they come."""
    stream, tail, follow = _log_query(request.query)
    store = request.app[store_key]
    account_id = request[ACCOUNT].id
    task = await store.tasks.get(account_id, request.match_info["taskid"])
    after = await store.logs.start(task.taskid, stream, tail)
    response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"})
    await response.prepare(request)
    try:
        after, seen = await _send(response, store, task.taskid, stream, after)
        if follow:
            deadline = asyncio.get_running_loop().time() + request.app[config_key].follow_max_s
            await _follow(request, response, store, account_id, task.taskid, stream, after, seen, deadline)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away: nobody to answer
    return response


async def _send(response: web.StreamResponse, store: Store, taskid: str, stream: Stream,
                after: int) -> tuple[int, int]:
    """Every stored line past ``after``, page by page; where the reading ended and the task's end."""
    while True:
        page = await store.logs.read(taskid, stream, after)
        await _write_lines(response, [text for _, text in page.lines])
        if page.lines:
            after = max(after, page.lines[-1][0])
        if len(page.lines) < PAGE_LINES:
            return after, page.end


async def _write_lines(response: web.StreamResponse, texts: list[str]) -> None:
    # In pieces: each write waits while the client lags, so a slow reader holds a page, not the log.
    piece: list[bytes] = []
    size = 0
    for text in texts:
        data = (text + "\n").encode("utf-8")
        piece.append(data)
        size += len(data)
        if size >= WRITE_BYTES:
            await response.write(b"".join(piece))
            piece, size = [], 0
    if piece:
        await response.write(b"".join(piece))


async def _follow(request: web.Request, response: web.StreamResponse, store: Store, account_id: int,
                  taskid: str, stream: Stream, after: int, seen: int, deadline: float) -> None:
    """Until the task has ended and its last line was sent, it is deleted, the client
    leaves, or ``deadline``.  An executor that is offline has not ended its task."""
    loop = asyncio.get_running_loop()
    checked, idle = -STATE_CHECK_S, True  # a task that has already ended ends the answer at once
    while True:
        now = loop.time()
        transport = request.transport
        if now >= deadline or transport is None or transport.is_closing():
            return
        if now >= checked + (IDLE_CHECK_S if idle else STATE_CHECK_S):
            checked = now
            try:
                task = await store.tasks.get(account_id, taskid)
            except TaskNotFound:
                return
            if task.state.finished:
                # Its last lines were stored before its end was: what is stored now is all.
                await _send(response, store, taskid, stream, after)
                return
        await store.logs.wait(taskid, seen, max(0.0, min(checked + STATE_CHECK_S, deadline) - loop.time()))
        before = after
        after, seen = await _send(response, store, taskid, stream, after)
        idle = after == before


# --- results ----------------------------------------------------------------------------


async def results(request: web.Request) -> web.StreamResponse:
    """The files the task left in /megamind/output/, as the tar.gz its agent made."""
    task = await request.app[store_key].tasks.get(request[ACCOUNT].id, request.match_info["taskid"])
    try:
        async with request.app[blobs_key].open(results_key(task.taskid)) as blob:
            return await send_blob(request, blob, {
                "Content-Type": "application/gzip",
                "Content-Disposition": f'attachment; filename="{task.taskid}-results.tar.gz"',
            })
    except BlobNotFound:
        if task.state.finished:
            raise ResultsNotFound(f"task {task.taskid} left no files in {OUTPUT_DIR}/") from None
        raise ResultsNotFound(f"task {task.taskid} has no results yet: they are collected when it ends") from None


async def send_blob(request: web.Request, blob: BlobReader, headers: dict[str, str]) -> web.StreamResponse:
    response = web.StreamResponse(headers=headers)
    response.content_length = blob.size
    await response.prepare(request)
    try:
        async for chunk in blob.chunks():
            await response.write(chunk)
        await response.write_eof()
    except ConnectionResetError:
        pass  # the client went away: nobody to answer
    return response


# --- input files ------------------------------------------------------------------------


async def upload_file(request: web.Request) -> web.Response:
    """POST /api/v1/files: the raw body (``?name=``) or a multipart form's one file part."""
    name = request.query.get("name")
    if name is not None:
        check_file_name(name)
    blobs, store = request.app[blobs_key], request.app[store_key]
    file_id = new_file_id()
    key = input_key(file_id)
    info, name = await store_upload(request, blobs, key, request.app[config_key].max_file_bytes, name)
    try:
        record = await store.files.add(request[ACCOUNT].id, file_id, name or file_id, info.size, info.sha256)
    except BaseException:
        await blobs.delete(key)
        raise
    return json_response(file_schema.dump(record), status=201)
