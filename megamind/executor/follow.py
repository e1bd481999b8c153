"""Every line a task container prints, each once, from the engine's own log stream.

The engine keeps each container's output (stdout and stderr apart, every line stamped
with nanoseconds) and serves it as ``GET /containers/{id}/logs?follow=1``: what was
logged since a time, then what comes, until the container stops.  We read that stream
ourselves with aiohttp: one socket per follower and no thread, so many tasks cost little
(the SDK's ``logs(stream=True)`` holds a blocking thread per follower).

Resuming is exact: a ``LogCursor`` says, per stream, the last timestamp delivered and how
many lines of exactly that timestamp were.  A re-read starts at the earlier of the two
and skips, per stream, the lines the cursor has already seen.

Engine behaviour this relies on (Docker 20.10, checked by tests/executor/test_follow.py):
``follow=1`` on a running container ends by itself once the container stops, after its
last lines; on a container that is not running (exited, or created and never started)
the engine does not follow: it sends what the log holds (nothing, if never started) and
ends.  A restart ends the stream at the stop; following again from the cursor gives the
new run's lines only (the log file is kept across runs).  The json-file driver stores a
line longer than 16 KiB as pieces that all carry the line's first timestamp, and adds
the missing "\n" to a last line printed without one.
"""

from __future__ import annotations

import asyncio
import os
import re
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

import aiohttp
import docker.utils

from megamind.protocol import MAX_LINE_CHARS, LogCursor, LogEntry, Stream, StreamPosition

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
CONNECT_TIMEOUT_S = 10.0

# [stream, 0, 0, 0, big-endian uint32 size], then the payload: the engine's stdcopy frame.
_FRAME_HEADER = struct.Struct(">BxxxL")
_STREAMS = {int(Stream.STDOUT): Stream.STDOUT, int(Stream.STDERR): Stream.STDERR}
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

DecodedLine = tuple[Stream, int, str]  # (stream, the engine's timestamp in ns, text without "\n")


def parse_timestamp_ns(stamp: str) -> int:
    """RFC 3339 with up to nine fraction digits, as the engine writes it, to integer ns."""
    match = _RFC3339.match(stamp)
    if match is None:
        raise ValueError(f"not an RFC 3339 timestamp: {stamp!r}")
    seconds_text, fraction, zone = match.groups()
    moment = datetime.fromisoformat(seconds_text + ("+00:00" if zone == "Z" else zone))
    # Integer arithmetic throughout: a float would lose the nanoseconds.
    seconds = (moment - _EPOCH) // timedelta(seconds=1)
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


class _StampReader:
    """Stamps to ns, fast for the engine's own fixed form ("...T15:04:05.000000000Z"):
    consecutive lines nearly always share their second, so that part is parsed once."""

    def __init__(self) -> None:
        self._second_text = b""
        self._second_ns = 0

    def ns(self, stamp: bytes) -> int:
        if len(stamp) == 30 and stamp[19] == 0x2E and stamp[29] == 0x5A and stamp[20:29].isdigit():
            second = stamp[:19]
            if second != self._second_text:
                self._second_ns = parse_timestamp_ns(second.decode("ascii") + "Z")
                self._second_text = second
            return self._second_ns + int(stamp[20:29])
        return parse_timestamp_ns(stamp.decode("ascii", "replace"))


class _PartialLine:
    """A line the engine logged in pieces (its log driver splits lines at 16 KiB)."""

    def __init__(self, ns: int, first: bytes, max_bytes: int) -> None:
        self.ns = ns
        self._parts = [first[:max_bytes]]
        self._room = max_bytes - len(self._parts[0])

    def add(self, part: bytes) -> None:
        # Past the cut the rest is read but not kept: a line without end must not fill memory.
        if self._room > 0:
            self._parts.append(part[: self._room])
            self._room -= len(self._parts[-1])

    def text(self, max_chars: int) -> str:
        return b"".join(self._parts).decode("utf-8", "replace")[:max_chars]


class FrameDecoder:
    """The engine's multiplexed log stream (``timestamps=1``, no TTY) as lines: bytes in,
    complete lines out, whatever the chunk boundaries.  Pure and synchronous.

    Only a payload ending in "\\n" ends a line; pieces before it are joined, and the line
    keeps its first piece's timestamp.  Lines are cut at ``max_line_chars`` characters.
    """

    def __init__(self, max_line_chars: int = MAX_LINE_CHARS) -> None:
        self._max_chars = max_line_chars
        # UTF-8 spends at most 4 bytes on a character: this many bytes hold more than the cut.
        self._max_bytes = 4 * max_line_chars + 4
        self._unread = b""  # the start of a frame not complete yet
        self._partial: dict[Stream, _PartialLine] = {}
        self._last_ns = {Stream.STDOUT: 0, Stream.STDERR: 0}
        self._stamps = _StampReader()

    def feed(self, data: bytes) -> list[DecodedLine]:
        buffer = self._unread + data if self._unread else data
        lines: list[DecodedLine] = []
        offset, end = 0, len(buffer)
        while end - offset >= 8:
            kind, size = _FRAME_HEADER.unpack_from(buffer, offset)
            start = offset + 8
            if end - start < size:
                break
            offset = start + size
            stream = _STREAMS.get(kind)
            if stream is not None:  # stdin (0) and the engine's own channel (3) hold no task output
                self._take(stream, buffer[start:offset], lines)
        self._unread = bytes(buffer[offset:])
        return lines

    def flush(self) -> list[DecodedLine]:
        """At the end of the stream: lines that never got their "\\n", oldest first."""
        pending = sorted(self._partial.items(), key=lambda item: item[1].ns)
        self._partial.clear()
        return [(stream, line.ns, line.text(self._max_chars)) for stream, line in pending]

    def _take(self, stream: Stream, payload: bytes, lines: list[DecodedLine]) -> None:
        space = payload.find(b" ")
        try:
            if space <= 0:
                raise ValueError("no timestamp")
            ns = self._stamps.ns(payload[:space])
            body = payload[space + 1:]
        except ValueError:
            # Not stamped as the engine stamps: keep the text all the same, at the
            # stream's last time (which keeps the stream's times in order).
            ns, body = self._last_ns[stream], payload
        self._last_ns[stream] = ns
        partial = self._partial.get(stream)
        if body.endswith(b"\n"):
            if partial is None:
                text = body[: min(len(body) - 1, self._max_bytes)].decode("utf-8", "replace")
                lines.append((stream, ns, text[: self._max_chars]))
            else:
                partial.add(body[:-1])
                del self._partial[stream]
                lines.append((stream, partial.ns, partial.text(self._max_chars)))
        elif partial is None:
            self._partial[stream] = _PartialLine(ns, body, self._max_bytes)
        else:
            partial.add(body)


class _Resume:
    """Drops the lines a cursor says were read, and moves the cursor past the others.

    Every line is counted, skipped ones too: "the n-th line stamped t" must mean the
    same thing in every read of the log.
    """

    def __init__(self, cursor: LogCursor) -> None:
        self._read = cursor
        self.cursor = cursor
        self._seen = {Stream.STDOUT: [0, 0], Stream.STDERR: [0, 0]}  # per stream: last ns, lines with it
        # per stream: while the engine repeats lines, how many at the last ns it repeated
        self._replaying: dict[Stream, int | None] = {Stream.STDOUT: None, Stream.STDERR: None}

    def take(self, lines: list[DecodedLine]) -> list[LogEntry]:
        entries = []
        moved: set[Stream] = set()
        for stream, ns, text in lines:
            seen = self._seen[stream]
            if ns < seen[0]:
                # One stream's stamps never go back: the engine is giving older lines again
                # (its follow can replay part of a log file it rotated), up to where it was.
                self._replaying[stream] = 0
                continue
            if ns == seen[0]:
                replayed = self._replaying[stream]
                if replayed is not None and replayed < seen[1]:
                    self._replaying[stream] = replayed + 1
                    continue
                self._replaying[stream] = None
                seen[1] += 1
            else:
                self._replaying[stream] = None
                seen[0], seen[1] = ns, 1
            if self._read.of(stream).has_read(ns, seen[1]):
                continue
            entries.append(LogEntry(stream, ns, text))
            moved.add(stream)
        if moved:
            stdout, stderr = self.cursor.stdout, self.cursor.stderr
            if Stream.STDOUT in moved:
                stdout = StreamPosition(*self._seen[Stream.STDOUT])
            if Stream.STDERR in moved:
                stderr = StreamPosition(*self._seen[Stream.STDERR])
            self.cursor = LogCursor(stdout, stderr)
        return entries


@dataclass(frozen=True)
class LogsRead:
    """New lines in the engine's order, and where reading stands after them."""

    entries: tuple[LogEntry, ...]
    cursor: LogCursor


class FollowError(Exception):
    """The engine's log could not be read to its end (engine away, an error answer, a cut
    stream): follow again from the last cursor."""


class ContainerGone(FollowError):
    """The engine knows no such container (404)."""


def since_param(ns: int) -> str:
    """The engine's ``since``: "<seconds>.<nine digits>" (it keeps entries at exactly this time)."""
    return f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"


def engine_url(docker_host: str | None) -> tuple[str, str | None]:
    """(base URL, unix socket path or None) for a DOCKER_HOST, read the way docker-py reads it."""
    if os.environ.get("DOCKER_TLS_VERIFY"):
        raise ValueError("DOCKER_TLS_VERIFY is set: following logs over TLS is not supported")
    parsed = docker.utils.parse_host(docker_host or DEFAULT_DOCKER_HOST)
    if parsed.startswith("http+unix://"):
        # Any host name will do over a socket: the engine ignores it.
        return "http://docker", parsed[len("http+unix://"):]
    if parsed.startswith("http://"):
        return parsed.rstrip("/"), None
    raise ValueError(f"DOCKER_HOST {docker_host!r}: only unix:// and tcp:// engines can be followed")


class EngineLogs:
    """Followers of containers' logs, all over one HTTP session to the engine.

    Make it inside a running event loop; ``close()`` it when done.  ``api_version`` is
    the one the SDK negotiated (``docker.APIClient.api_version``).
    """

    def __init__(self, api_version: str, docker_host: str | None = None,
                 connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        base_url, socket_path = engine_url(docker_host or os.environ.get("DOCKER_HOST"))
        # limit=0: a follower holds its connection for as long as its task runs, and
        # the default pool of 100 would leave the 101st waiting.
        connector = (aiohttp.UnixConnector(path=socket_path, limit=0) if socket_path
                     else aiohttp.TCPConnector(limit=0))
        # No total or read timeout: a quiet task keeps a follower waiting for hours.
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout_s),
        )
        self._api = f"{base_url}/v{api_version}"

    async def follow(self, container_id: str, cursor: LogCursor, *, follow: bool = True) -> AsyncIterator[LogsRead]:
        """Batches of the lines after ``cursor``, as they come, until the engine ends the
        stream: the container stopped (or never ran) and every line it printed was given.

        Raises ``ContainerGone`` (404) or ``FollowError``.  Close the iterator
        (``contextlib.aclosing``) when leaving early: that closes its connection.
        """
        params = {"follow": "1" if follow else "0", "stdout": "1", "stderr": "1", "timestamps": "1"}
        if cursor.since_ns:
            params["since"] = since_param(cursor.since_ns)
        url = f"{self._api}/containers/{quote(container_id, safe='')}/logs"
        decoder, resume = FrameDecoder(), _Resume(cursor)
        try:
            async with self._session.get(url, params=params) as response:
                if response.status == 404:
                    raise ContainerGone(f"no container {container_id}")
                if response.status != 200:
                    body = (await response.text(errors="replace"))[:300]
                    raise FollowError(f"logs of {container_id}: engine answered {response.status}: {body}")
                # Everything the socket holds at once: a task printing flat out must not
                # be read a line at a time.
                while chunk := await response.content.readany():
                    entries = resume.take(decoder.feed(chunk))
                    if entries:
                        yield LogsRead(tuple(entries), resume.cursor)
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as exc:
            raise FollowError(f"logs of {container_id}: {exc.__class__.__name__}: {exc}") from exc
        entries = resume.take(decoder.flush())
        if entries:
            yield LogsRead(tuple(entries), resume.cursor)

    async def close(self) -> None:
        await self._session.close()

    async def __aenter__(self) -> "EngineLogs":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()
