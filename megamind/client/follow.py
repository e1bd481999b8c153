"""Reading a task's log as lines, and following it across dropped connections.

The API sends a followed log as one long answer, one line per line, and ends it once the
task has ended and its last line was sent.  A connection can drop before that.  Every
answer without ``tail`` starts at the first line the API keeps, so the follower counts
the lines it has been given and, on a new connection, passes over that many: nothing is
shown twice and nothing is skipped.  When the API's bound has pushed the oldest lines
out, such an answer's first line says how many went; they still count, so that the
count stays one of the whole stream.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import aiohttp

from megamind.client.errors import RateLimited, TransportError
from megamind.client.transport import reason
from megamind.logmarks import count_dropped_before

log = logging.getLogger(__name__)

# A followed log that has been silent this long is taken for a connection cut without a
# word (no FIN, no RST) and opened again; resuming is exact, so this costs only a request.
FOLLOW_IDLE_S = 300.0
# Reconnecting gives up when the API has been out of reach this long.
RECONNECT_WITHIN_S = 60.0
_FIRST_BACKOFF_S, _MAX_BACKOFF_S = 0.1, 5.0

# What ends a connection early, as aiohttp raises it while a body is read.
DROPPED = (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError, asyncio.TimeoutError)



class LineSplitter:
    """Bytes in, lines out.  Only ``\\n`` ends a line (a task's ``\\r`` stays in its text);
    a piece not yet ended is held until its end arrives, or until ``end``."""

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, chunk: bytes) -> list[str]:
        *done, self._rest = (self._rest + chunk).split(b"\n")
        return [_text(line) for line in done]

    def end(self) -> list[str]:
        """The last line, when the answer ended without a newline after it."""
        rest, self._rest = self._rest, b""
        return [_text(rest)] if rest else []


def split_lines(data: bytes) -> list[str]:
    splitter = LineSplitter()
    return splitter.feed(data) + splitter.end()


def _text(line: bytes) -> str:
    return line.decode("utf-8", errors="replace")


class LogPosition:
    """How many lines of one stream a reader has given, counted from the stream's very
    first line (those pushed out by the bound included)."""

    def __init__(self) -> None:
        self.given = 0
        self._next: int | None = None  # the count of the answer's next line; None before its first

    def begin(self) -> None:
        """A new answer starts, at the first line the API keeps."""
        self._next = None

    def take(self, line: str) -> bool:
        """Whether ``line``, the answer's next, is one the reader has not given yet."""
        if self._next is None:
            self._next = 0
            # The first line of an answer from a log's start, once its oldest lines went
            # past the API's bound, says how many.
            trimmed = count_dropped_before(line)
            if trimmed is not None:
                self._next = trimmed
                if self._next <= self.given:
                    return False
                # Lines never given went past the bound meanwhile: the line says so.
                self.given = self._next
                return True
        new = self._next >= self.given
        self._next += 1
        if new:
            self.given += 1
        return new


def tail_of(kept: list[str], tail: int) -> tuple[list[str], LogPosition]:
    """The last ``tail`` lines of a whole log as read, and the position after all of it."""
    position = LogPosition()
    lines = [line for line in kept if position.take(line)]
    if lines and count_dropped_before(lines[0]) is not None:
        lines = lines[1:]  # as the API's own tail: lines only
    return lines[len(lines) - min(tail, len(lines)):], position


OpenLog = Callable[[], AbstractAsyncContextManager[aiohttp.ClientResponse]]


async def follow(open_log: OpenLog, ended: Callable[[], Awaitable[bool]], position: LogPosition | None = None,
                 *, within: float = RECONNECT_WITHIN_S) -> AsyncIterator[str]:
    """Every line of a followed log past ``position``, until it ends with the task.

    ``open_log`` opens the followed log from its first kept line.  The API ends an
    answer once the task has ended and its last line was sent, but also a long one while
    the task runs; so an answer that ends as HTTP says it should ends the follow only
    when ``ended()`` had said the task had ended before it was opened.  Otherwise it is
    opened again: for the lines a running task writes next, or for those an ended one
    wrote between that answer's end and its own.

    The first connection is not retried (a wrong URL or task fails at once), the rate
    limit aside; after it worked once, dropped connections are opened again, waiting a
    little longer each time, until the API has been out of reach for ``within`` seconds
    (then TransportError).  Errors the API answers (the task deleted meanwhile, say) are
    raised as they are.
    """
    position = LogPosition() if position is None else position
    was_ended = await ended()  # before the answer is opened: then it holds every line
    connected_once = False
    failing_since: float | None = None
    backoff = _FIRST_BACKOFF_S
    while True:
        try:
            async with open_log() as resp:
                connected_once, failing_since, backoff = True, None, _FIRST_BACKOFF_S
                position.begin()
                splitter = LineSplitter()
                async for chunk in resp.content.iter_any():
                    for line in splitter.feed(chunk):
                        if position.take(line):
                            yield line
                for line in splitter.end():
                    if position.take(line):
                        yield line
            if was_ended:
                return
            was_ended = await ended()
            continue
        except RateLimited as exc:  # not a failure: the API says when to ask again
            await asyncio.sleep(exc.retry_after or 1.0)
            continue
        except (TransportError, *DROPPED) as exc:
            if not connected_once:
                raise
            now = time.monotonic()
            failing_since = now if failing_since is None else failing_since
            if now - failing_since > within:
                raise TransportError(f"the followed log's connection dropped and could not be opened again "
                                     f"for {within:g} s: {_why(exc)}") from None
            log.info("followed log dropped after %d lines (%s); opening it again", position.given, _why(exc))
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, _MAX_BACKOFF_S)


def _why(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, TransportError) else reason(exc)
