"""A task's progress, as it prints it: a stdout line ``MEGAMIND_PROGRESS=<number 0-100>``.

The line stays in the logs like any other; the last valid one of a batch is what the
task detail shows.  Anything else that merely looks like it (a prefix, a sign, an
exponent, a number out of range) is an ordinary line, so a task cannot set a value it
did not mean to by printing some other text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from megamind.taskenv import PROGRESS_PREFIX as PREFIX

MIN_PROGRESS, MAX_PROGRESS = 0.0, 100.0

# Surrounding whitespace is forgiven (a "\r" from a program written for a terminal).
_LINE = re.compile(re.escape(PREFIX) + r"([0-9]{1,3}(?:\.[0-9]+)?)")


def progress_of(texts: Iterable[str]) -> float | None:
    """The value of the last valid progress line among ``texts`` (stdout lines, oldest first)."""
    lines = texts if isinstance(texts, Sequence) else list(texts)
    for text in reversed(lines):
        if PREFIX not in text:
            continue
        match = _LINE.fullmatch(text.strip())
        if match is None:
            continue
        value = float(match.group(1))
        if MIN_PROGRESS <= value <= MAX_PROGRESS:
            return value
    return None
