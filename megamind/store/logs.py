"""The last lines of each task's stdout.

Agents send at most the last 20 lines of what a task printed since their previous
batch, so the tail kept here is bounded whatever the volume.  Tails live in memory
and are written behind in one transaction per flush: a busy executor costs one row
write per flush interval, not one per batch.
"""

from __future__ import annotations

import json
from collections import deque

from megamind.protocol import TAIL_LINES
from megamind.store.db import Database


class LogStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._tails: dict[str, deque[str]] = {}
        self._dirty: set[str] = set()

    async def tail(self, taskid: str) -> list[str]:
        cached = self._tails.get(taskid)
        if cached is not None:
            return list(cached)
        row = await self._db.fetchone("SELECT lines FROM task_logs WHERE taskid = ?", (taskid,))
        return json.loads(row["lines"]) if row else []

    async def append(self, taskid: str, lines: list[str], reset: bool) -> None:
        if taskid not in self._tails:
            stored = [] if reset else await self.tail(taskid)
            # Another batch may have loaded the tail while this one awaited the read.
            self._tails.setdefault(taskid, deque(stored, maxlen=TAIL_LINES))
        tail = self._tails[taskid]
        if reset:
            tail.clear()
        tail.extend(lines)
        self._dirty.add(taskid)

    def forget(self, taskid: str) -> None:
        self._tails.pop(taskid, None)
        self._dirty.discard(taskid)

    async def flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        rows = [(t, json.dumps(list(self._tails[t]))) for t in dirty if t in self._tails]
        try:
            async with self._db.transaction() as conn:
                # The task may have been deleted meanwhile: only tails of existing tasks are kept.
                await conn.executemany(
                    "INSERT INTO task_logs (taskid, lines) SELECT ?1, ?2 WHERE EXISTS"
                    " (SELECT 1 FROM tasks WHERE taskid = ?1 AND deleted = 0)"
                    " ON CONFLICT(taskid) DO UPDATE SET lines = excluded.lines",
                    rows,
                )
        except BaseException:
            self._dirty |= dirty  # not written: the next flush tries again
            raise
        # Written tails need not stay in memory; reads fall back to the row.
        for taskid in dirty:
            if taskid not in self._dirty:
                self._tails.pop(taskid, None)
