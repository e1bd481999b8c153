"""The OpenAPI entries of the history and the paged task listing, for ``openapi.py``.

`HISTORY_SCHEMAS` are registered after TaskDetail and the schemas it nests.
"""

from __future__ import annotations

from typing import Any

from megamind.api.history import CSV_COLUMNS, CSV_FILENAME, CSV_TYPE
from megamind.api.historyschemas import HistoryQuerySchema, PagedTaskSchema, TaskPageQuerySchema, TaskPageSchema
from megamind.api.openapi_parts import error_statuses, operation

HISTORY_SCHEMAS = {
    "PagedTask": PagedTaskSchema,
    "TaskPage": TaskPageSchema,
}

_PAGE = {"description": "A page of tasks, newest first, and how many match",
         "content": {"application/json": {"schema": "TaskPage"}}}
_PAGING = ("Newest first (by created_at, then taskid). Pass a page's `next_cursor` as `cursor` for the "
           "next page: pages never repeat or skip a task, even when tasks are added meanwhile. "
           "`state` filters the state as stored. A query parameter the call does not know is refused (422).")

_HISTORY_DESCRIPTION = f"""\
Every task of the account created in [`from`, `to`], deleted ones included (`deleted: true`),
each as the task detail without `env`. {_PAGING}

With `Accept: {CSV_TYPE}` the answer is every matching task, not one page (`limit` and
`cursor` do not apply), as CSV (RFC 4180, UTF-8) with the columns {", ".join(CSV_COLUMNS)}.
Times are ISO-8601 UTC (`2024-03-01T12:00:00Z`), empty when unknown; a text cell that
starts with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'` so no
spreadsheet runs it as a formula.
"""

_PAGE_OR_CSV = {
    "description": "A page of tasks, newest first, and how many match; with Accept: text/csv every "
                   "matching task, one row each after a header row",
    "headers": {"Content-Disposition": {
        "schema": {"type": "string"}, "description": f'CSV only: attachment; filename="{CSV_FILENAME}"'}},
    "content": {
        "application/json": {"schema": "TaskPage"},
        CSV_TYPE: {"schema": {"type": "string"}},
    },
}


def _listing(op_id: str, summary: str, ok: dict[str, Any], query: type, description: str) -> dict[str, Any]:
    return operation(op_id, "extension", summary, ok, error_statuses("VALIDATION_FAILED"),
                     parameters=[{"in": "query", "schema": query}], description=description)


HISTORY_PATHS: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/history", {"get": _listing(
        "gethistory", "Every task of the account over a time range, deleted ones included, paged or as CSV",
        _PAGE_OR_CSV, HistoryQuerySchema, _HISTORY_DESCRIPTION,
    )}),
    ("/api/v1/tasks", {"get": _listing(
        "gettasks", "The account's live tasks (not deleted), filtered and paged",
        _PAGE, TaskPageQuerySchema,
        "gettasklist stays the contract's full array; this call pages the same tasks. " + _PAGING,
    )}),
]
