"""Following each task container's output and shipping it to the API.

One follower per container reads the engine's log stream from where the API's copy
ends; one shipping loop sends what waits, a short moment after it arrives, so that
lines of many tasks travel together.  A task's end is reported only after its last
lines went out (`drained`, then `flush`), so finished means complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from megamind.executor.follow import ContainerGone, FollowError, LogsRead
from megamind.executor.output import OutputBuffer
from megamind.protocol import LogBatch, LogCursor

log = logging.getLogger(__name__)

# A follower whose buffer is crowded stops reading the engine this long at most, waiting
# for the link to take what waits; past it, it reads on and the buffer drops lines,
# counted.  Short: the engine's own log holds only 3 x 10 MB, and what it rotates away
# while nobody reads is lost uncounted.
MAX_READ_PAUSE_S = 1.0
# A read of fewer lines than this is followed by a short wait, so that the lines of a
# task that prints a few at a time are read in one gulp rather than one wake-up each.
SMALL_READ_LINES = 64
READ_GATHER_S = 0.02

# The engine (Docker 20.10's json-file) stops delivering a follow, or repeats stretches
# of it, once the log file under it rotates (at 10 MB): a follow is opened again from
# the cursor before that much can have passed under it.  Estimated as the engine
# stores it: each line's text and about this much of JSON around it.
REOPEN_AFTER_LOG_BYTES = 6 * 1024 * 1024
ENGINE_BYTES_PER_LINE = 90

# A stopped container's last lines are waited for as long as its follower makes progress
# on them, and this long without any.
DRAIN_STALL_S = 10.0

# A follower whose stream breaks (the engine restarting under it) reads again from its
# cursor after these pauses; past them, the next look at the container starts it again.
REFOLLOW_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)


class LogSource(Protocol):
    def follow(self, container_id: str, cursor: LogCursor, *, follow: bool = True) -> AsyncIterator[LogsRead]:
        """Batches of lines after ``cursor`` and the cursor after each, until the container
        stops (``follow``), or until the end of what the engine has kept (not ``follow``)."""


@dataclass(eq=False)
class TaskOutput:
    taskid: str
    buffer: OutputBuffer
    container_id: str | None = None
    follower: asyncio.Task | None = None
    # Asked to follow again while a follower was still reading the run before.
    follow_again: bool = False
    drained: asyncio.Event = field(default_factory=asyncio.Event)
    room: asyncio.Event = field(default_factory=asyncio.Event)  # set whenever a batch was taken


class Shipper:
    def __init__(self, source: LogSource, send: Callable[[LogBatch], Awaitable[bool]], window_s: float) -> None:
        self._source = source
        self._send = send
        self._window_s = window_s
        self._outputs: dict[str, TaskOutput] = {}
        self._waiting = asyncio.Event()
        self._sending = asyncio.Lock()

    def _output(self, taskid: str) -> TaskOutput:
        out = self._outputs.get(taskid)
        if out is None:
            out = self._outputs[taskid] = TaskOutput(taskid, OutputBuffer(LogCursor()))
            out.drained.set()
        return out

    # --- following -------------------------------------------------------------------

    def follow(self, taskid: str, container_id: str) -> None:
        """Read the container's output from where this task's copy ends, until it stops."""
        out = self._output(taskid)
        out.container_id = container_id
        out.drained.clear()
        if out.follower is not None and not out.follower.done():
            out.follow_again = True
            return
        out.follower = asyncio.create_task(self._follow(out), name=f"follow-{taskid}")

    async def _follow(self, out: TaskOutput) -> None:
        broken = 0
        while True:
            out.follow_again = False
            try:
                await self._read(out, follow=True)
                if not out.follow_again:
                    # The engine ends a follow when the container stops, and then only reads
                    # on to the end if its reader kept up: a reader held back by a slow link
                    # would lose the rest.  What is left is read again, plainly, from the cursor.
                    await self._read(out, follow=False)
                broken = 0
            except ContainerGone:
                pass  # removed: nothing more to read
            except FollowError as exc:
                if broken < len(REFOLLOW_DELAYS_S):
                    log.info("output of %s: %s; following again", out.taskid, exc)
                    await asyncio.sleep(REFOLLOW_DELAYS_S[broken])
                    broken += 1
                    out.follow_again = True
                else:
                    log.warning("output of %s cannot be read now: %s", out.taskid, exc)
            if not out.follow_again:
                log.debug("output of %s read to %s", out.taskid, out.buffer.cursor)
                out.drained.set()
                return

    async def _read(self, out: TaskOutput, follow: bool) -> None:
        logged = 0  # bytes the engine's log grew by, as far as this follow has read
        async with contextlib.aclosing(self._source.follow(out.container_id, out.buffer.cursor, follow=follow)) as reads:
            async for read in reads:
                if out.buffer.crowded:
                    await self._make_room(out)
                out.buffer.add(read.entries, read.cursor)
                self._waiting.set()
                if not follow:
                    continue
                logged += sum(len(e.text) for e in read.entries) + ENGINE_BYTES_PER_LINE * len(read.entries)
                if logged > REOPEN_AFTER_LOG_BYTES:
                    out.follow_again = True  # opened again from the cursor: no gap, no repeat
                    return
                if len(read.entries) < SMALL_READ_LINES:
                    await asyncio.sleep(READ_GATHER_S)

    async def _make_room(self, out: TaskOutput) -> None:
        """Stop reading until the link took what waits (the engine's log holds the rest)."""
        out.room.clear()
        self._waiting.set()
        try:
            await asyncio.wait_for(out.room.wait(), MAX_READ_PAUSE_S)
        except asyncio.TimeoutError:
            log.warning("output of %s: the link does not keep up; lines are dropped", out.taskid)

    async def drained(self, taskid: str, stall_s: float = DRAIN_STALL_S) -> bool:
        """Wait until the follower has read everything the stopped container wrote, for as
        long as it makes progress (a backlog takes its time) and ``stall_s`` without."""
        out = self._outputs.get(taskid)
        if out is None:
            return True
        while True:
            position = out.buffer.cursor
            try:
                await asyncio.wait_for(out.drained.wait(), stall_s)
                return True
            except asyncio.TimeoutError:
                if out.buffer.cursor == position:
                    log.warning("output of %s not drained: no progress in %gs", taskid, stall_s)
                    return False

    def restart_from(self, cursors: dict[str, LogCursor], containers: dict[str, str]) -> None:
        """A new session: the output of every container (taskid -> container id) is read
        again from where the API's copy ends (``cursors``; nothing yet: from the start)."""
        for out in self._outputs.values():
            if out.follower is not None and not out.follower.done():
                out.follower.cancel()
            out.follower = None
        for taskid in list(self._outputs):
            if taskid not in containers:
                del self._outputs[taskid]
        for taskid, container_id in containers.items():
            self._output(taskid).buffer.reset(cursors.get(taskid, LogCursor()))
            self.follow(taskid, container_id)

    def following(self, taskid: str) -> bool:
        out = self._outputs.get(taskid)
        return out is not None and out.follower is not None and not out.follower.done()

    def waiting(self, taskid: str) -> int:
        """How many entries of a task wait to be shipped."""
        out = self._outputs.get(taskid)
        return 0 if out is None else len(out.buffer)

    def forget(self, taskid: str) -> None:
        out = self._outputs.pop(taskid, None)
        if out is not None and out.follower is not None:
            out.follower.cancel()

    # --- shipping --------------------------------------------------------------------

    async def flush(self, taskid: str) -> bool:
        """Send what waits of one task now; True once the link took it."""
        out = self._outputs.get(taskid)
        if out is None:
            return True
        async with self._sending:
            batch = out.buffer.take(taskid)
            out.room.set()
            return batch is None or await self._send(batch)

    async def run(self) -> None:
        """Ship forever: a short window after lines arrive, every task's waiting lines go."""
        while True:
            await self._waiting.wait()
            await asyncio.sleep(self._window_s)
            self._waiting.clear()
            async with self._sending:
                for out in list(self._outputs.values()):
                    batch = out.buffer.take(out.taskid)
                    out.room.set()
                    if batch is not None and not await self._send(batch):
                        break  # the link is down: the next session reads again from the API's cursor

    async def close(self) -> None:
        followers = [o.follower for o in self._outputs.values() if o.follower is not None]
        for follower in followers:
            follower.cancel()
        for follower in followers:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await follower
