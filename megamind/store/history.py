"""An account's tasks over time: newest first, a page at a time, deleted ones included.

Pages are read by key, not by offset: the cursor holds the last row's (created_at,
taskid), so a page costs the same deep in the history as at its top, and tasks added
meanwhile neither repeat a row nor push one off a page.  The index history_order
(account_id, created_at DESC, taskid DESC) serves the range and the order; taskid
breaks ties between tasks created in the same instant.  The SQL is plain enough for
PostgreSQL too: no row values, no SQLite functions.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from megamind.errors import ValidationFailed
from megamind.store.db import Database
from megamind.store.taskmodel import DETAIL_COLUMNS, DETAIL_FROM, TaskDetail, detail_of_row

MAX_TASKID_CHARS = 128  # far beyond any taskid the platform makes; a longer cursor is not ours
WALK_BATCH = 1000


@dataclass(frozen=True)
class HistoryPage:
    details: list[TaskDetail]
    total: int  # every matching task, on every page
    has_more: bool
    next_cursor: str | None  # for the page after this one; None on the last


@dataclass(frozen=True)
class _Filter:
    """Which tasks of one account a reading covers; every bound is inclusive."""

    account_id: int
    created_from: float | None
    created_to: float | None
    state: int | None
    image: str | None  # exactly as stored: megamind.network/<name>:<tag>
    include_deleted: bool

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = ["t.account_id = ?"], [self.account_id]
        if self.created_from is not None:
            clauses.append("t.created_at >= ?")
            params.append(self.created_from)
        if self.created_to is not None:
            clauses.append("t.created_at <= ?")
            params.append(self.created_to)
        if self.state is not None:
            clauses.append("t.state = ?")
            params.append(self.state)
        if self.image is not None:
            clauses.append("t.image = ?")
            params.append(self.image)
        if not self.include_deleted:
            clauses.append("t.deleted = 0")
        return " AND ".join(clauses), params


def encode_cursor(created_at: float, taskid: str) -> str:
    """The position after a row, as an opaque url-safe string."""
    raw = json.dumps([created_at, taskid], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The (created_at, taskid) a cursor of `encode_cursor` holds; anything else is refused."""
    refused = ValidationFailed("cursor: not a cursor this call gave; pass next_cursor exactly as it came")
    try:
        raw = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True)
        created_at, taskid = json.loads(raw)
    except (binascii.Error, ValueError, TypeError, RecursionError):
        raise refused from None
    if (not isinstance(created_at, (int, float)) or isinstance(created_at, bool) or not math.isfinite(created_at)
            or not isinstance(taskid, str) or not 0 < len(taskid) <= MAX_TASKID_CHARS):
        raise refused
    return float(created_at), taskid


class HistoryStore:
    """Reads the tasks table by account and time; `purge` is the one write."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def page(
        self, account_id: int, *, created_from: float | None, created_to: float | None, state: int | None,
        image: str | None, include_deleted: bool, limit: int, cursor: str | None,
    ) -> HistoryPage:
        """One page, newest first, after ``cursor`` (a page's ``next_cursor``) or from the top.

        A malformed cursor raises ValidationFailed.  ``total`` ignores the cursor.
        """
        if limit < 1:
            raise ValueError(f"limit must be positive, not {limit}")
        where = _Filter(account_id, created_from, created_to, state, image, include_deleted)
        after = decode_cursor(cursor) if cursor is not None else None
        details, has_more = await self._read(where, limit, after)
        clause, params = where.where()
        row = await self._db.fetchone(f"SELECT COUNT(*) FROM tasks t WHERE {clause}", params)
        last = details[-1] if details and has_more else None
        return HistoryPage(details, row[0], has_more,
                           encode_cursor(last.created_at, last.task.taskid) if last else None)

    async def walk(
        self, account_id: int, *, created_from: float | None, created_to: float | None, state: int | None,
        image: str | None, include_deleted: bool, batch: int = WALK_BATCH,
    ) -> AsyncIterator[list[TaskDetail]]:
        """Every matching task, newest first, ``batch`` at a time (no count: an export
        reads them all and need not know how many before it starts)."""
        where = _Filter(account_id, created_from, created_to, state, image, include_deleted)
        after = None
        while True:
            details, has_more = await self._read(where, batch, after)
            if details:
                yield details
            if not has_more:
                return
            after = (details[-1].created_at, details[-1].task.taskid)

    async def _read(self, where: _Filter, limit: int, after: tuple[float, str] | None) -> tuple[list[TaskDetail], bool]:
        clause, params = where.where()
        if after is not None:
            # The first term bounds the index range; the second drops the rows of the last
            # page's instant that were on it already.
            clause += " AND t.created_at <= ? AND (t.created_at < ? OR t.taskid < ?)"
            params += [after[0], after[0], after[1]]
        # One row past the page says whether another page follows.
        rows = await self._db.fetchall(
            f"SELECT {DETAIL_COLUMNS} {DETAIL_FROM} WHERE {clause}"
            " ORDER BY t.created_at DESC, t.taskid DESC LIMIT ?",
            [*params, limit + 1],
        )
        return [detail_of_row(r) for r in rows[:limit]], len(rows) > limit

    async def purge(self, older_than: float) -> int:
        """Forget deleted tasks created before ``older_than``, and their commands; how many went.

        A deleted task whose container is not yet gone (it still holds its executor) or
        whose meter still runs is kept: its agent and its last charge still need the row.
        The charges ledger keeps every row: money once recorded is never forgotten.
        """
        gone = "deleted = 1 AND holds_executor = 0 AND meter_from IS NULL AND created_at < ?"
        async with self._db.transaction() as conn:
            await conn.execute(f"DELETE FROM commands WHERE taskid IN (SELECT taskid FROM tasks WHERE {gone})",
                               (older_than,))
            cursor = await conn.execute(f"DELETE FROM tasks WHERE {gone}", (older_than,))
            return cursor.rowcount
