"""Every line each task printed, both streams, kept until the task is deleted: the interface.

Agents send batches that say where reading stood before and after them
(``protocol.LogBatch``).  A batch is kept only when it continues the copy exactly, so a
stale batch from a replaced link can neither duplicate nor reorder lines.  Kept lines
are numbered (``seq``, one sequence per task over both streams) and readable at once.
Each stream of a task is bounded in bytes: past the bound its oldest lines go, and a
read from the start says how many.

``LogStore`` is all the API uses; ``SqlLogStore`` (store/sqllogs.py) is the engine
today.  A shared engine for several API replicas only has to offer the same methods
(``wait`` takes a timeout so that such an engine may poll).
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from megamind.protocol import TAIL_LINES, LogBatch, LogCursor, Stream

PAGE_LINES = 5000  # what one read returns at most: a reader's memory stays bounded


class LogPage(NamedTuple):
    lines: list[tuple[int, str]]  # (seq, text) oldest first; dropped-line markers rendered
    end: int  # the task's highest seq (either stream) when it was read: what `wait` compares


class LogStore(Protocol):
    async def append(self, batch: LogBatch) -> bool:
        """Keep the batch if it continues the task's copy (``since`` is its cursor)."""

    async def cursors(self, taskids: list[str]) -> dict[str, LogCursor]:
        """Where each task's copy ends (``LogCursor()`` for a task never seen)."""

    async def tail(self, taskid: str, n: int = TAIL_LINES, stream: Stream = Stream.STDOUT) -> list[str]:
        """The last ``n`` lines the task printed on ``stream``, oldest first, markers left out."""

    async def start(self, taskid: str, stream: Stream, tail: int | None) -> int:
        """The seq to read after for the last ``tail`` lines of ``stream`` (None: all of them)."""

    async def read(self, taskid: str, stream: Stream, after: int, limit: int = PAGE_LINES) -> LogPage:
        """Up to ``limit`` lines of ``stream`` past seq ``after`` (0: from the start)."""

    async def wait(self, taskid: str, seen: int, timeout: float) -> None:
        """Return when the task has lines past seq ``seen``, or after ``timeout`` seconds."""

    async def delete(self, taskid: str) -> None:
        """Forget the task's lines and cursor."""

    async def flush(self) -> None:
        """Write what is only in memory."""
