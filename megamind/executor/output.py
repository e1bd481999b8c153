"""A task's output between the engine and the API: read, not yet shipped, and bounded.

What the link or the API cannot take as fast as the engine gives it piles up here.
Once half full, the buffer is ``crowded``: the follower stops reading for a while and
the engine's own log file holds the rest (a burst of a few hundred thousand lines
gets through whole).  When that is not enough, past the bound whole lines go from
the middle (after the oldest ones waiting, before the newest), and one entry per
stream says how many.  The newest 20 stdout lines always stay, so gettasklogs is
exact whatever was dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from megamind.protocol import TAIL_LINES, LogBatch, LogCursor, LogEntry, Stream

MAX_WAITING_LINES = 20_000
# Characters of text waiting: a batch is the whole buffer, and must stay well inside
# one WebSocket message even when every character needs a JSON escape.
MAX_WAITING_CHARS = 2 * 1024 * 1024
# The oldest lines waiting are kept when the middle goes: what comes right after the
# API's copy stays continuous as far as it can.
KEPT_HEAD_LINES = 1_000


class OutputBuffer:
    def __init__(self, since: LogCursor, max_lines: int = MAX_WAITING_LINES,
                 max_chars: int = MAX_WAITING_CHARS, head_lines: int = KEPT_HEAD_LINES) -> None:
        self._max_lines = max_lines
        self._max_chars = max_chars
        self._head_lines = min(head_lines, max_lines // 2)
        self.reset(since)

    def reset(self, since: LogCursor) -> None:
        """Forget what waits: reading starts again after ``since`` (what the API has)."""
        self.since = since
        self.cursor = since
        self._head: list[LogEntry] = []
        self._tail: deque[LogEntry] = deque()
        self._tail_stdout = 0
        self._chars = 0
        # stream -> (lines dropped, timestamp of the last of them)
        self._dropped: dict[Stream, tuple[int, int]] = {}

    def __len__(self) -> int:
        return len(self._head) + len(self._tail)

    @property
    def crowded(self) -> bool:
        """Half full: reading more now would soon cost lines."""
        return len(self) * 2 >= self._max_lines or self._chars * 2 >= self._max_chars

    @property
    def dropped(self) -> int:
        return sum(count for count, _ in self._dropped.values())

    def add(self, entries: Iterable[LogEntry], cursor: LogCursor) -> None:
        """Lines just read from the engine, and where reading stands after them."""
        head, tail = self._head, self._tail
        for entry in entries:
            self._chars += len(entry.text)
            if len(head) < self._head_lines and not tail and not self._dropped:
                head.append(entry)
                continue
            tail.append(entry)
            if entry.stream is Stream.STDOUT:
                self._tail_stdout += 1
        self.cursor = cursor
        while len(head) + len(tail) > self._max_lines or (self._chars > self._max_chars and tail):
            if not self._drop_one():
                break

    def _drop_one(self) -> bool:
        tail = self._tail
        index = 0
        if tail[0].stream is Stream.STDOUT and self._tail_stdout <= TAIL_LINES:
            # The oldest line waiting is one of the newest 20 stdout lines: a stderr line goes instead.
            index = next((i for i, e in enumerate(tail) if e.stream is not Stream.STDOUT), -1)
            if index < 0:
                return False
        entry = tail[index]
        del tail[index]
        if entry.stream is Stream.STDOUT:
            self._tail_stdout -= 1
        self._chars -= len(entry.text)
        count, _ = self._dropped.get(entry.stream, (0, 0))
        self._dropped[entry.stream] = (count + 1, entry.ns)
        return True

    def take(self, taskid: str) -> LogBatch | None:
        """Everything waiting as one batch (None when nothing does); the buffer starts over after it."""
        if not self._head and not self._tail and self.cursor == self.since:
            return None
        gaps = [LogEntry(stream, ns, "", count) for stream, (count, ns) in sorted(self._dropped.items())]
        batch = LogBatch(taskid, self.since, self.cursor, (*self._head, *gaps, *self._tail))
        self.reset(self.cursor)
        return batch
