"""When simulated executors got each start and ended each task, as lines in a file.

The simulated agents run in their own process: they append ``start <taskid> <time>``
when a start command arrives (the moment a task is placed, as its executor sees it) and
``stop <taskid> <time>`` when they end it.  The benchmark tails the file.  Both sides read
the same wall clock (`time.time()`), being on one machine.
"""

from __future__ import annotations

import time
from pathlib import Path

START, STOP = "start", "stop"


class EventWriter:
    def __init__(self, path: Path) -> None:
        # Line-buffered: each event reaches the file when it happens, for the reader to see.
        self._file = path.open("a", buffering=1)

    def write(self, kind: str, taskid: str) -> None:
        self._file.write(f"{kind} {taskid} {time.time():.6f}\n")

    def close(self) -> None:
        self._file.close()


def parse_events(text: str) -> list[tuple[str, str, float]]:
    """(kind, taskid, time) of each whole line; a line being written is not one yet."""
    events = []
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] in (START, STOP):
            events.append((parts[0], parts[1], float(parts[2])))
    return events


class EventLog:
    """The events so far, read on from where the last read stopped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.starts: dict[str, float] = {}
        self.stops: dict[str, float] = {}
        self._offset = 0

    def read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        whole = chunk[:chunk.rfind(b"\n") + 1]  # a line still being written waits for the next read
        self._offset += len(whole)
        for kind, taskid, at in parse_events(whole.decode()):
            # The first start counts: a start sent again after a reconnect is the same placement.
            (self.starts if kind == START else self.stops).setdefault(taskid, at)
