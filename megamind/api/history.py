"""An account's tasks a page at a time: its whole history, or its live tasks.

    GET /api/v1/history?from=&to=&state=&image=&limit=&cursor=   JSON, or CSV of every row
    GET /api/v1/tasks?state=&image=&limit=&cursor=               the live tasks, paged

gettasklist stays the contract's full array; these page by cursor, newest first.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from datetime import datetime, timezone
from typing import Any

from aiohttp import web

from megamind.api.bodies import json_response, read_query
from megamind.api.handlers import task_item
from megamind.api.historyschemas import history_query_schema, task_page_query_schema, task_page_schema
from megamind.api.keys import ACCOUNT, hub_key, store_key
from megamind.api.taskdetail import detail_view
from megamind.money import from_micro
from megamind.states import TaskState
from megamind.store.history import HistoryPage
from megamind.store.taskmodel import TaskDetail

CSV_TYPE = "text/csv"
CSV_FILENAME = "history.csv"
CSV_COLUMNS = ("taskid", "image", "state", "state_name", "created_at", "started_at", "finished_at", "hwid",
               "price", "billed_seconds", "cost", "exit_code", "error_msg", "deleted")
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP's list):
# an error_msg is the task's own text, so it could be made to.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _filters(query: dict[str, Any], include_deleted: bool) -> dict[str, Any]:
    return {
        "created_from": query.get("created_from"),
        "created_to": query.get("created_to"),
        "state": query.get("state"),
        "image": query.get("image"),
        "include_deleted": include_deleted,
    }


async def _page_response(app: web.Application, page: HistoryPage) -> web.Response:
    items = []
    for detail in page.details:
        view = await detail_view(app, detail, with_env=False)
        items.append({**view, "deleted": detail.task.deleted, "deleted_at": detail.deleted_at})
    return json_response(task_page_schema.dump({
        "tasks": items, "total": page.total, "has_more": page.has_more, "next_cursor": page.next_cursor}))


async def history(request: web.Request) -> web.StreamResponse:
    """GET /api/v1/history: every task created in [from, to], deleted ones included, newest first."""
    query = read_query(request, history_query_schema)
    store, account_id = request.app[store_key], request[ACCOUNT].id
    filters = _filters(query, include_deleted=True)
    if wants_csv(request.headers.get("Accept", "")):
        return await _send_csv(request, account_id, filters)
    page = await store.history.page(account_id, **filters, limit=query["limit"], cursor=query.get("cursor"))
    response = await _page_response(request.app, page)
    response.headers["Vary"] = "Accept"
    return response


async def live_tasks(request: web.Request) -> web.Response:
    """GET /api/v1/tasks: the tasks not deleted, newest first, a page at a time."""
    query = read_query(request, task_page_query_schema)
    page = await request.app[store_key].history.page(
        request[ACCOUNT].id, **_filters(query, include_deleted=False), limit=query["limit"], cursor=query.get("cursor"))
    return await _page_response(request.app, page)


# --- CSV ------------------------------------------------------------------------------


def wants_csv(accept: str) -> bool:
    """CSV when the Accept header names text/csv and does not rank JSON above it."""
    ranks: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if not math.isfinite(quality):
            quality = 0.0
        media = media.lower()
        ranks[media] = max(ranks.get(media, 0.0), quality)
    csv_rank = ranks.get(CSV_TYPE, 0.0)
    return csv_rank > 0 and csv_rank >= ranks.get("application/json", 0.0)


def _iso(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(value: str | None) -> str:
    """A text cell a spreadsheet shows as text: a formula's first character is quoted away."""
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _number(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def csv_row(detail: TaskDetail, executor_online: bool) -> list[str]:
    task = detail.task
    # The state a customer is shown, as in the JSON items (a queued task has no executor to be away).
    state = TaskState(task_item(task, executor_online or task.hwid is None)["state"])
    return [
        _text(task.taskid), _text(task.image), str(int(state)), state.name.lower(),
        _iso(detail.created_at), _iso(detail.started_at), _iso(detail.finished_at), _text(task.hwid),
        _number(detail.price), _number(detail.billed_ms / 1000), _number(from_micro(detail.cost_micro)),
        _number(detail.exit_code), _text(task.error_msg), "true" if task.deleted else "false",
    ]


def _csv_bytes(rows: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # RFC 4180: CRLF, quotes doubled
    return buffer.getvalue().encode("utf-8")


async def _send_csv(request: web.Request, account_id: int, filters: dict[str, Any]) -> web.StreamResponse:
    """Every matching row, not one page (limit and cursor do not apply), read and written
    a batch at a time so an account's whole history never sits in memory."""
    hub = request.app[hub_key]
    batches = request.app[store_key].history.walk(account_id, **filters)
    try:
        # Read before the answer starts: a failing read is still answered as an error.
        first = await anext(batches, [])
        response = web.StreamResponse(headers={
            "Content-Type": f"{CSV_TYPE}; charset=utf-8",
            "Content-Disposition": f'attachment; filename="{CSV_FILENAME}"',
            "Cache-Control": "no-store",
            "Vary": "Accept",
        })
        await response.prepare(request)
        try:
            await response.write(_csv_bytes([list(CSV_COLUMNS)]))
            batch: list[TaskDetail] | None = first
            while batch:
                await response.write(_csv_bytes(
                    csv_row(d, d.task.hwid is not None and hub.is_online(d.task.hwid)) for d in batch))
                batch = await anext(batches, None)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went away: nobody to answer
        return response
    finally:
        await batches.aclose()
