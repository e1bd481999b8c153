"""The lines the platform itself writes into a task's log: where lines were dropped.

Written here once: the store renders them, the client reads the count back to resume
a follow exactly.
"""

from __future__ import annotations

import re

_DROPPED_BEFORE = re.compile(r"\[megamind: ([0-9]+) earlier lines? dropped\]")


def dropped_here(count: int) -> str:
    """Lines the agent could not ship, dropped at this place."""
    return f"[megamind: {count} {_lines(count)} dropped here]"


def dropped_before(count: int) -> str:
    """The oldest lines, deleted past the per-task bound: the first line of a read from the start."""
    return f"[megamind: {count} earlier {_lines(count)} dropped]"


def count_dropped_before(line: str) -> int | None:
    """The count of a `dropped_before` line, or None when the line is not one."""
    match = _DROPPED_BEFORE.fullmatch(line)
    return int(match.group(1)) if match else None


def _lines(count: int) -> str:
    return "line" if count == 1 else "lines"
