"""Whole logs in the database, read from memory while they are written behind.

Kept lines are readable at once from memory and written behind: one transaction per
flush for every task, the lines with the cursor after them, so the two never disagree
after a crash.  A copy nobody appended to for a flush interval leaves memory; reads
then find it in the table.  The SQL is plain enough for PostgreSQL too.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import NamedTuple

from megamind.protocol import TAIL_LINES, LogBatch, LogCursor, Stream
from megamind.store.db import Database
from megamind.logmarks import dropped_before, dropped_here
from megamind.store.logs import PAGE_LINES, LogPage

_TRIM_TO = 0.9  # of the bound, once a stream passes it
_IN_CHUNK = 500  # taskids per IN (...) list


def _size(text: str) -> int:
    return len(text.encode("utf-8")) + 1  # and its newline


class _Row(NamedTuple):
    seq: int
    stream: int
    ns: int
    text: str
    dropped: int  # > 0: a marker for this many lines the agent could not send


@dataclass(eq=False)
class _TaskLog:
    """A task's copy as far as it goes: stored, and appended since the last flush."""

    cursor: LogCursor = field(default_factory=LogCursor)
    next_seq: int = 1
    size: dict[int, int] = field(default_factory=lambda: {int(s): 0 for s in Stream})  # bytes kept
    trimmed: dict[int, int] = field(default_factory=lambda: {int(s): 0 for s in Stream})
    pending: list[_Row] = field(default_factory=list)  # appended, not yet in a flush
    flushing: list[_Row] = field(default_factory=list)  # in the flush under way
    touched: bool = True  # appended to since the last flush: kept in memory a while longer

    def first_in_memory(self) -> int | None:
        """Rows below this seq are stored; from it on, the memory has them all."""
        rows = self.flushing or self.pending
        return rows[0].seq if rows else None


@dataclass
class _Written:
    """What one flush writes of one task, fixed when the flush takes its rows."""

    taskid: str
    log: _TaskLog
    rows: list[_Row]
    cursor: LogCursor
    next_seq: int
    size: dict[int, int]
    trimmed: dict[int, int]
    removed: dict[int, tuple[int, int]] = field(default_factory=dict)  # stream -> (bytes, lines) trimmed


class _Signal:
    __slots__ = ("event", "waiters")

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.waiters = 0


_STATE_COLUMNS = "cursor, next_seq, stdout_bytes, stderr_bytes, stdout_trimmed, stderr_trimmed"


def _log_of(row) -> _TaskLog:
    if row is None:
        return _TaskLog(touched=False)
    return _TaskLog(
        LogCursor.from_json(row["cursor"]), row["next_seq"],
        {int(Stream.STDOUT): row["stdout_bytes"], int(Stream.STDERR): row["stderr_bytes"]},
        {int(Stream.STDOUT): row["stdout_trimmed"], int(Stream.STDERR): row["stderr_trimmed"]},
        touched=False,
    )


def _render(row) -> str:
    return dropped_here(row[2]) if row[2] else row[1]


class SqlLogStore:
    def __init__(self, db: Database, limit_bytes: int) -> None:
        self._db = db
        self._limit = limit_bytes
        self._logs: dict[str, _TaskLog] = {}
        self._dirty: set[str] = set()
        self._signals: dict[str, _Signal] = {}
        # Bumped whenever a copy leaves memory: a load that raced it reads again.
        self._generation = 0
        self._flush_lock = asyncio.Lock()

    # --- the agent's side ---------------------------------------------------------

    async def append(self, batch: LogBatch) -> bool:
        log = await self._load(batch.taskid)
        if batch.since != log.cursor:
            return False
        seq = log.next_seq
        rows = []
        for entry in batch.entries:
            rows.append(_Row(seq, int(entry.stream), entry.ns, "" if entry.dropped else entry.text, entry.dropped))
            if not entry.dropped:
                log.size[int(entry.stream)] += _size(entry.text)
            seq += 1
        log.pending.extend(rows)
        log.next_seq, log.cursor, log.touched = seq, batch.cursor, True
        self._dirty.add(batch.taskid)
        if rows:
            self._notify(batch.taskid)
        return True

    async def cursors(self, taskids: list[str]) -> dict[str, LogCursor]:
        while True:
            generation = self._generation
            stored: dict[str, LogCursor] = {}
            for chunk in _chunks(taskids):
                rows = await self._db.fetchall(
                    f"SELECT taskid, cursor FROM log_state WHERE taskid IN ({_marks(chunk)})", chunk
                )
                stored.update((r["taskid"], LogCursor.from_json(r["cursor"])) for r in rows)
            if generation == self._generation:
                break
        # What memory holds is newer than any row.
        return {t: self._logs[t].cursor if t in self._logs else stored.get(t, LogCursor()) for t in taskids}

    async def _load(self, taskid: str) -> _TaskLog:
        while True:
            log = self._logs.get(taskid)
            if log is not None:
                return log
            generation = self._generation
            row = await self._db.fetchone(f"SELECT {_STATE_COLUMNS} FROM log_state WHERE taskid = ?", (taskid,))
            if generation == self._generation:
                # Another append may have loaded it meanwhile: the first one loaded stands.
                return self._logs.setdefault(taskid, _log_of(row))

    # --- readers ------------------------------------------------------------------------

    async def tail(self, taskid: str, n: int = TAIL_LINES, stream: Stream = Stream.STDOUT) -> list[str]:
        if n <= 0:
            return []
        newest: list[str] = []
        floor = None
        log = self._logs.get(taskid)
        if log is not None:
            floor = log.first_in_memory()
            for row in _reversed(log):
                if row.stream == stream and not row.dropped:
                    newest.append(row.text)
                    if len(newest) == n:
                        return newest[::-1]
        rows = await self._db.fetchall(
            "SELECT text FROM log_lines WHERE taskid = ? AND stream = ? AND dropped = 0"
            + (" AND seq < ?" if floor is not None else "") + " ORDER BY seq DESC LIMIT ?",
            (taskid, int(stream), *(() if floor is None else (floor,)), n - len(newest)),
        )
        newest.extend(r["text"] for r in rows)
        return newest[::-1]

    async def start(self, taskid: str, stream: Stream, tail: int | None) -> int:
        if tail is None:
            return 0
        if tail <= 0:
            return await self._end(taskid)
        count = 0
        floor = None
        log = self._logs.get(taskid)
        if log is not None:
            floor = log.first_in_memory()
            for row in _reversed(log):
                if row.stream == stream:
                    count += 1
                    if count == tail:
                        return row.seq - 1
        row = await self._db.fetchone(
            "SELECT seq FROM log_lines WHERE taskid = ? AND stream = ?"
            + (" AND seq < ?" if floor is not None else "") + " ORDER BY seq DESC LIMIT 1 OFFSET ?",
            (taskid, int(stream), *(() if floor is None else (floor,)), tail - count - 1),
        )
        return row["seq"] - 1 if row is not None else 0

    async def read(self, taskid: str, stream: Stream, after: int, limit: int = PAGE_LINES) -> LogPage:
        # Memory first, then the table below what memory holds: a flush that lands in
        # between moves rows from one to the other without a gap or a repeat.
        log = self._logs.get(taskid)
        if log is not None:
            end, trimmed, floor = log.next_seq - 1, log.trimmed[int(stream)], log.first_in_memory()
            recent = [(r.seq, r.text, r.dropped)
                      for r in islice((r for r in _after(log, after) if r.stream == stream), limit)]
        else:
            state = await self._db.fetchone(
                "SELECT next_seq, stdout_trimmed, stderr_trimmed FROM log_state WHERE taskid = ?", (taskid,)
            )
            end = state["next_seq"] - 1 if state else 0
            trimmed = (state["stdout_trimmed"] if stream is Stream.STDOUT else state["stderr_trimmed"]) if state else 0
            floor, recent = None, []
        stored = await self._db.fetchall(
            "SELECT seq, text, dropped FROM log_lines WHERE taskid = ? AND stream = ? AND seq > ?"
            + (" AND seq < ?" if floor is not None else "") + " ORDER BY seq LIMIT ?",
            (taskid, int(stream), after, *(() if floor is None else (floor,)), limit),
        )
        lines = [(r[0], _render(r)) for r in [*stored, *recent][:limit]]
        if after == 0 and trimmed:
            lines.insert(0, (0, dropped_before(trimmed)))
        return LogPage(lines, max(end, lines[-1][0] if lines else 0))

    async def wait(self, taskid: str, seen: int, timeout: float) -> None:
        # Registered before the check, so an append between the two is not missed.
        signal = self._signals.get(taskid)
        if signal is None:
            signal = self._signals[taskid] = _Signal()
        signal.waiters += 1
        try:
            if await self._end(taskid) > seen:
                return
            async with asyncio.timeout(timeout):
                await signal.event.wait()
        except TimeoutError:
            pass
        finally:
            signal.waiters -= 1
            if not signal.waiters and self._signals.get(taskid) is signal:
                del self._signals[taskid]

    def _notify(self, taskid: str) -> None:
        signal = self._signals.pop(taskid, None)
        if signal is not None:
            signal.event.set()

    async def _end(self, taskid: str) -> int:
        log = self._logs.get(taskid)
        if log is not None:
            return log.next_seq - 1
        row = await self._db.fetchone("SELECT next_seq FROM log_state WHERE taskid = ?", (taskid,))
        return row["next_seq"] - 1 if row else 0

    # --- writing ---------------------------------------------------------------------

    async def delete(self, taskid: str) -> None:
        self._logs.pop(taskid, None)
        self._dirty.discard(taskid)
        self._generation += 1
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM log_lines WHERE taskid = ?", (taskid,))
            await conn.execute("DELETE FROM log_state WHERE taskid = ?", (taskid,))
        self._notify(taskid)  # followers find the task gone

    async def flush(self) -> None:
        # One flush at a time: a caller that needs the lines stored (a task that just
        # ended) must not return while another flush still holds them.
        async with self._flush_lock:
            await self._flush()
            self._evict_idle()

    async def _flush(self) -> None:
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        writes = []
        for taskid in dirty:
            log = self._logs.get(taskid)
            if log is None:
                continue
            rows, log.pending, log.flushing = log.pending, [], log.pending
            writes.append(_Written(taskid, log, rows, log.cursor, log.next_seq, dict(log.size), dict(log.trimmed)))
        try:
            async with self._db.transaction() as conn:
                await self._write(conn, writes)
        except BaseException:
            for w in writes:  # not written: the next flush tries again
                if self._logs.get(w.taskid) is w.log:
                    w.log.pending[:0] = w.rows
                    w.log.flushing = []
                    self._dirty.add(w.taskid)
            raise
        for w in writes:
            w.log.flushing = []
            for stream, (size, lines) in w.removed.items():
                w.log.size[stream] -= size
                w.log.trimmed[stream] += lines

    async def _write(self, conn, writes: list[_Written]) -> None:
        live: set[str] = set()
        for chunk in _chunks([w.taskid for w in writes]):
            # A task deleted meanwhile keeps nothing.
            rows = await conn.execute_fetchall(
                f"SELECT taskid FROM tasks WHERE deleted = 0 AND taskid IN ({_marks(chunk)})", chunk
            )
            live.update(r[0] for r in rows)
        writes[:] = [w for w in writes if w.taskid in live and self._logs.get(w.taskid) is w.log]
        await conn.executemany(
            "INSERT INTO log_lines (taskid, seq, stream, ns, text, dropped) VALUES (?, ?, ?, ?, ?, ?)",
            [(w.taskid, *row) for w in writes for row in w.rows],
        )
        for w in writes:
            for stream in Stream:
                if w.size[stream] > self._limit:
                    w.removed[int(stream)] = await self._trim(conn, w.taskid, stream, w.size[stream])
        await conn.executemany(
            f"INSERT INTO log_state (taskid, {_STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (taskid) DO UPDATE SET cursor = excluded.cursor, next_seq = excluded.next_seq,"
            " stdout_bytes = excluded.stdout_bytes, stderr_bytes = excluded.stderr_bytes,"
            " stdout_trimmed = excluded.stdout_trimmed, stderr_trimmed = excluded.stderr_trimmed",
            [(w.taskid, w.cursor.to_json(), w.next_seq, *_after_trim(w)) for w in writes],
        )

    async def _trim(self, conn, taskid: str, stream: Stream, size: int) -> tuple[int, int]:
        """Delete the oldest lines of a stream until it is back to 90% of the bound."""
        excess = size - int(self._limit * _TRIM_TO)
        removed_bytes = removed_lines = 0
        last = 0
        while removed_bytes < excess:
            rows = await conn.execute_fetchall(
                "SELECT seq, text, dropped FROM log_lines WHERE taskid = ? AND stream = ? AND seq > ?"
                " ORDER BY seq LIMIT ?",
                (taskid, int(stream), last, PAGE_LINES),
            )
            if not rows:
                break
            for seq, text, dropped in rows:
                if removed_bytes >= excess:
                    break
                last = seq
                # Counted as the log reads: a marker of dropped lines is one line of it, so
                # that a reader can count its way back into the stream after a reconnect.
                removed_lines += 1
                removed_bytes += 0 if dropped else _size(text)
        await conn.execute(
            "DELETE FROM log_lines WHERE taskid = ? AND stream = ? AND seq <= ?", (taskid, int(stream), last)
        )
        return removed_bytes, removed_lines

    def _evict_idle(self) -> None:
        """Copies nobody appended to since the last flush leave memory; reads find them stored."""
        for taskid, log in list(self._logs.items()):
            if log.touched or log.pending or log.flushing or taskid in self._dirty:
                log.touched = False
                continue
            del self._logs[taskid]
            self._generation += 1


def _after_trim(w: _Written) -> tuple[int, int, int, int]:
    size = {s: w.size[s] - w.removed.get(s, (0, 0))[0] for s in w.size}
    trimmed = {s: w.trimmed[s] + w.removed.get(s, (0, 0))[1] for s in w.trimmed}
    out, err = int(Stream.STDOUT), int(Stream.STDERR)
    return size[out], size[err], trimmed[out], trimmed[err]


def _reversed(log: _TaskLog) -> Iterator[_Row]:
    yield from reversed(log.pending)
    yield from reversed(log.flushing)


def _after(log: _TaskLog, seq: int) -> Iterator[_Row]:
    for rows in (log.flushing, log.pending):
        yield from rows[bisect_right(rows, seq, key=lambda r: r.seq):]


def _chunks(items: list[str]) -> Iterator[list[str]]:
    for i in range(0, len(items), _IN_CHUNK):
        yield items[i:i + _IN_CHUNK]


def _marks(items: list[str]) -> str:
    return ", ".join("?" * len(items))
