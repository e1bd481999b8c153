"""Where a task's output has been read to, and the lines themselves, as the agent ships them.

Each stream's lines carry the engine's timestamps; a position names the last one read
and how many lines carried exactly it, so a re-read from the engine resumes exactly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple

from megamind.wire import ProtocolError, read_enum, storable_text

# A line longer than this is cut.
MAX_LINE_CHARS = 64 * 1024
REREAD_MARGIN_NS = 1_000_000_000


class Stream(IntEnum):
    """A task's output streams, numbered as the engine's multiplexed stream numbers them."""

    STDOUT = 1
    STDERR = 2


@dataclass(frozen=True)
class StreamPosition:
    """How far one stream has been read: its last engine timestamp, and how many lines
    carried exactly that timestamp (timestamps of one stream never go back)."""

    ns: int = 0
    at_ns: int = 0

    def to_wire(self) -> list[int]:
        return [self.ns, self.at_ns]

    @classmethod
    def from_wire(cls, value: Any, name: str) -> "StreamPosition":
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
            raise ProtocolError(f"{name}: expected [ns, count], two non-negative integers")
        return cls(value[0], value[1])

    def after(self, ns: int) -> "StreamPosition":
        """The position once a line stamped ``ns`` has been read too."""
        return StreamPosition(ns, self.at_ns + 1 if ns == self.ns else 1)

    def has_read(self, ns: int, seen_at_ns: int) -> bool:
        """Whether a line stamped ``ns``, the ``seen_at_ns``-th of that stamp (from 1), was read."""
        return ns < self.ns or (ns == self.ns and seen_at_ns <= self.at_ns)


@dataclass(frozen=True)
class LogCursor:
    """Where a task's output has been read up to, both streams."""

    stdout: StreamPosition = field(default_factory=StreamPosition)
    stderr: StreamPosition = field(default_factory=StreamPosition)

    def of(self, stream: Stream) -> StreamPosition:
        return self.stdout if stream is Stream.STDOUT else self.stderr

    def advanced(self, stream: Stream, ns: int) -> "LogCursor":
        if stream is Stream.STDOUT:
            return LogCursor(self.stdout.after(ns), self.stderr)
        return LogCursor(self.stdout, self.stderr.after(ns))

    @property
    def since_ns(self) -> int:
        """Where a re-read must start in the engine's log to miss nothing of either stream.

        The engine stamps each stream's lines as it copies them, so across streams its
        file is in time order only to within a moment; the margin covers that, and a
        stream that never printed does not send every re-read back to the start.
        """
        read = [p.ns for p in (self.stdout, self.stderr) if p.ns]
        return max(0, min(read) - REREAD_MARGIN_NS) if read else 0

    def to_wire(self) -> dict[str, list[int]]:
        return {"stdout": self.stdout.to_wire(), "stderr": self.stderr.to_wire()}

    @classmethod
    def from_wire(cls, value: Any, name: str = "cursor") -> "LogCursor":
        if not isinstance(value, dict):
            raise ProtocolError(f"{name}: expected an object")
        return cls(
            StreamPosition.from_wire(value.get("stdout", [0, 0]), f"{name}.stdout"),
            StreamPosition.from_wire(value.get("stderr", [0, 0]), f"{name}.stderr"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_wire(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> "LogCursor":
        return cls() if not text else cls.from_wire(json.loads(text))


class LogEntry(NamedTuple):
    """One line a task printed, or (``dropped`` > 0) how many lines of a stream the agent
    had to drop at this place because the link or the API could not keep up.

    A tuple: a chatty task makes hundreds of thousands of these a second.
    """

    stream: Stream
    ns: int  # the engine's timestamp, nanoseconds since the epoch (of the last dropped line)
    text: str = ""
    dropped: int = 0

    def to_wire(self) -> list[Any]:
        if self.dropped:
            return [int(self.stream), self.ns, "", self.dropped]
        return [int(self.stream), self.ns, self.text]

    @classmethod
    def from_wire(cls, value: Any) -> "LogEntry":
        if not isinstance(value, list) or len(value) not in (3, 4):
            raise ProtocolError("logs.entries: each entry is [stream, ns, text] or [stream, ns, '', dropped]")
        stream = read_enum(Stream, value[0], "logs.entries.stream")
        ns, text = value[1], value[2]
        if not isinstance(ns, int) or isinstance(ns, bool) or ns < 0:
            raise ProtocolError("logs.entries.ns: expected a non-negative integer")
        if not isinstance(text, str):
            raise ProtocolError("logs.entries.text: expected a string")
        dropped = value[3] if len(value) == 4 else 0
        if not isinstance(dropped, int) or isinstance(dropped, bool) or dropped < 0:
            raise ProtocolError("logs.entries.dropped: expected a non-negative integer")
        return cls(stream, ns, storable_text(text, MAX_LINE_CHARS), dropped)
