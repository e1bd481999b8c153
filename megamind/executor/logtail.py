"""An agent's running copy of a task's last stdout lines, and what the API still lacks."""

from __future__ import annotations

from collections import deque

from megamind.executor.runtime import LogLine
from megamind.protocol import MAX_LINE_CHARS, TAIL_LINES


class TaskLogTail:
    def __init__(self) -> None:
        self.last_ns: int | None = None
        self._tail: deque[str] = deque(maxlen=TAIL_LINES)
        self._unsent: deque[str] = deque(maxlen=TAIL_LINES)
        # The first batch replaces whatever the API holds: it is the container's own tail.
        self._reset = True

    def add(self, lines: list[LogLine]) -> None:
        for line in lines:
            if self.last_ns is not None and line.ns <= self.last_ns:
                continue
            text = line.text[:MAX_LINE_CHARS]
            self._tail.append(text)
            self._unsent.append(text)
            self.last_ns = line.ns

    def resend_all(self) -> None:
        """After a reconnect the API may have missed batches: send the whole tail again."""
        self._unsent = deque(self._tail, maxlen=TAIL_LINES)
        self._reset = True

    def take(self) -> tuple[list[str], bool] | None:
        """The batch to send, or None when the API is up to date."""
        if not self._unsent and not self._reset:
            return None
        batch, reset = list(self._unsent), self._reset
        self._unsent.clear()
        self._reset = False
        return batch, reset
