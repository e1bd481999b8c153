"""Following a log across dropped connections, against a small server that drops them on purpose.

The server keeps a log as the API does (every answer without ``tail`` starts at its first
kept line; with ``follow=1`` it stays open until the task has ended) and cuts connections
where the test says, also in the middle of a line, or ends them early as the API ends
long follows.
"""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from megamind.client import AsyncClient, TaskNotFound, TransportError
from megamind.client.follow import LineSplitter, LogPosition, follow, split_lines, tail_of
from megamind.client.transport import Transport

LOG_PATH = "/api/v1/task/t/logs"


class DroppingLog:
    """A task's log served as the API serves it, with connections cut on demand."""

    def __init__(self) -> None:
        self.history: list[str] = []  # every line the task printed
        self.trimmed = 0  # the oldest lines gone past the bound
        self.ended = False
        self.cuts: list[int] = []  # per answer, in order: cut it after this many lines and half a line
        self.early_ends: list[int] = []  # per answer, in order: end it properly after this many lines
        self.opens = 0
        self.gone = False  # the task was deleted: 404
        self._changed = asyncio.Event()

    def append(self, *lines: str) -> None:
        self.history.extend(lines)
        self._changed.set()

    def trim(self, count: int) -> None:
        self.trimmed += count

    def end(self) -> None:
        self.ended = True
        self._changed.set()

    def kept(self) -> list[str]:
        """An answer from the log's start, as the API writes it."""
        marker = [f"[megamind: {self.trimmed} earlier lines dropped]"] if self.trimmed else []
        return marker + self.history[self.trimmed:]

    async def task(self, request: web.Request) -> web.Response:
        if self.gone:
            return web.json_response({"code": 7, "message": "no task 't' in this account"}, status=404)
        return web.json_response({"taskid": "t", "ip": "", "image": "i", "params": "", "error_msg": "",
                                  "state": 4 if self.ended else 3})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.gone:
            return web.json_response({"code": 7, "message": "no task 't' in this account"}, status=404)
        if "follow" not in request.query:
            lines = self.kept()
            if "tail" in request.query:
                lines = self.history[self.trimmed:][-int(request.query["tail"]):]
            return web.Response(text="".join(f"{line}\n" for line in lines))
        assert "tail" not in request.query  # a follow resumes from the log's first line
        self.opens += 1
        cut = self.cuts.pop(0) if self.cuts else None
        early_end = self.early_ends.pop(0) if self.early_ends else None
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        lines, known, sent = self.kept(), len(self.history), 0
        while True:
            self._changed.clear()
            lines.extend(self.history[known:])
            known = len(self.history)
            while sent < len(lines) and sent != early_end:
                data = f"{lines[sent]}\n".encode()
                if sent == cut:
                    await resp.write(data[: len(data) // 2])
                    request.transport.close()  # no last chunk: the client sees a dropped connection
                    return resp
                await resp.write(data)
                sent += 1
            if self.ended or sent == early_end:
                await resp.write_eof()
                return resp
            await self._changed.wait()


@pytest.fixture
async def dropping(aiohttp_server):
    log = DroppingLog()
    app = web.Application()
    app.router.add_get(LOG_PATH, log.handle)
    app.router.add_get("/api/v1/task/t", log.task)
    server = await aiohttp_server(app)
    log.url = f"http://127.0.0.1:{server.port}"
    return log


# --- lines from bytes -------------------------------------------------------------------


def test_lines_end_at_newlines_only_and_wait_for_their_end():
    splitter = LineSplitter()
    assert splitter.feed(b"one\ntw") == ["one"]
    assert splitter.feed(b"o\r still two\n\nth") == ["two\r still two", ""]
    assert splitter.feed("ré\n".encode()[:2]) == []  # half a character waits too
    assert splitter.feed("ré\n".encode()[2:] + b"four") == ["thré"]
    assert splitter.end() == ["four"]
    assert splitter.end() == []


def test_split_lines():
    assert split_lines(b"") == []
    assert split_lines(b"a\nb\n") == ["a", "b"]
    assert split_lines(b"a\n\nb") == ["a", "", "b"]
    assert split_lines(b"bad \xff byte\n") == ["bad \ufffd byte"]


def test_positions_count_the_whole_stream():
    position = LogPosition()
    assert [position.take(line) for line in ["a", "b", "c"]] == [True, True, True]
    assert position.given == 3
    position.begin()  # again from the start: nothing new until the fourth line
    assert [position.take(line) for line in ["a", "b", "c", "d"]] == [False, False, False, True]
    position.begin()  # the two oldest went past the bound meanwhile
    assert [position.take(line) for line in ["[megamind: 2 earlier lines dropped]", "c", "d", "e"]] == [
        False, False, False, True]
    position.begin()  # and then more than were ever given: the marker is news
    assert position.take("[megamind: 9 earlier lines dropped]") is True
    assert [position.take(line) for line in ["j", "k"]] == [True, True]
    assert position.given == 11


def test_tail_of_a_whole_log():
    lines, position = tail_of(["[megamind: 5 earlier lines dropped]", "f", "g", "h"], 2)
    assert (lines, position.given) == (["g", "h"], 8)
    lines, position = tail_of(["[megamind: 1 earlier line dropped]", "b"], 20)
    assert (lines, position.given) == (["b"], 2)
    assert tail_of(["a", "b"], 0)[0] == []
    assert tail_of([], 3)[0] == []


# --- following ----------------------------------------------------------------------------


async def test_a_dropped_follow_goes_on_where_it_stopped(dropping):
    dropping.append(*(f"line {i}" for i in range(10)))
    dropping.cuts = [3, 7, 7, 12]  # in mid-line, twice at one place, and among lines that came later
    seen = []
    async with AsyncClient(dropping.url, "mk_k") as api:
        async for line in api.follow_logs("t"):
            seen.append(line)
            if len(seen) == 10:
                dropping.append(*(f"line {i}" for i in range(10, 20)))
            if len(seen) == 20:
                dropping.end()
    assert seen == [f"line {i}" for i in range(20)]
    assert dropping.opens == 6  # five cut, and one opened once the task had ended


async def test_lines_written_while_following_all_come_once_in_order(dropping):
    dropping.cuts = [150, 400, 401, 900]
    expected = [f"{i} {'x' * (i % 50)}" for i in range(1000)]

    async def write():
        for start in range(0, 1000, 50):
            dropping.append(*expected[start:start + 50])
            await asyncio.sleep(0.005)
        dropping.end()

    async with AsyncClient(dropping.url, "mk_k") as api:
        writer = asyncio.create_task(write())
        seen = [line async for line in api.follow_logs("t")]
        await writer
    assert seen == expected


async def test_tail_first_then_everything_after_it_across_drops(dropping):
    dropping.append(*(f"old {i}" for i in range(100)))
    dropping.cuts = [101, 105]
    seen = []
    async with AsyncClient(dropping.url, "mk_k") as api:
        async for line in api.follow_logs("t", tail=3):
            seen.append(line)
            if line == "old 99":
                dropping.append(*(f"new {i}" for i in range(10)))
                dropping.end()
    assert seen == ["old 97", "old 98", "old 99"] + [f"new {i}" for i in range(10)]


async def test_tail_zero_shows_only_what_comes(dropping):
    dropping.append("old")
    async with AsyncClient(dropping.url, "mk_k") as api:
        async def collect():
            return [line async for line in api.follow_logs("t", tail=0)]
        collector = asyncio.create_task(collect())
        while not dropping.opens:  # the follow is open
            await asyncio.sleep(0.01)
        dropping.append("new")
        dropping.end()
        assert await collector == ["new"]
        with pytest.raises(ValueError):
            await anext(api.follow_logs("t", tail=-1))


async def test_a_follow_the_api_ends_while_the_task_runs_goes_on(dropping):
    dropping.append("a", "b")
    dropping.early_ends = [1, 3]  # the second ends before "d", written as the task ended
    seen = []
    async with AsyncClient(dropping.url, "mk_k") as api:
        async for line in api.follow_logs("t"):
            seen.append(line)
            if line == "b":
                dropping.append("c")
            if line == "c":
                dropping.append("d")
                dropping.end()
    assert seen == ["a", "b", "c", "d"]
    assert dropping.opens == 3


async def test_lines_pushed_out_by_the_bound_keep_the_count(dropping):
    dropping.append(*(f"line {i}" for i in range(10)))
    dropping.cuts = [6]  # the marker and 5 lines, then half of "line 5"
    seen = []
    async with AsyncClient(dropping.url, "mk_k") as api:
        async for line in api.follow_logs("t"):
            seen.append(line)
            if line == "line 4":
                dropping.trim(3)  # before the reconnection
                dropping.append("line 10")
                dropping.end()
    assert seen == ["line 0", "line 1", "line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 8",
                    "line 9", "line 10"]


async def test_a_tail_counts_lines_pushed_out_by_the_bound(dropping):
    dropping.append(*(f"line {i}" for i in range(10)))
    dropping.trim(4)
    dropping.cuts = [2, 3]
    seen = []
    async with AsyncClient(dropping.url, "mk_k") as api:
        async for line in api.follow_logs("t", tail=2):
            seen.append(line)
            if line == "line 9":
                dropping.trim(2)
                dropping.append("line 10", "line 11")
                dropping.end()
    assert seen == ["line 8", "line 9", "line 10", "line 11"]


async def test_a_last_line_without_newline_is_still_a_line(aiohttp_server):
    async def handle(request):
        return web.Response(text="a\nb")

    async def task(request):
        return web.json_response({"taskid": "t", "ip": "", "image": "i", "params": "", "error_msg": "", "state": 4})
    app = web.Application()
    app.router.add_get(LOG_PATH, handle)
    app.router.add_get("/api/v1/task/t", task)
    server = await aiohttp_server(app)
    async with AsyncClient(f"http://127.0.0.1:{server.port}", "mk_k") as api:
        assert [line async for line in api.follow_logs("t")] == ["a", "b"]
        assert await api.logs("t") == ["a", "b"]


async def test_a_task_deleted_while_reconnecting_is_task_not_found(dropping):
    dropping.append("a", "b")
    dropping.cuts = [1]
    async with AsyncClient(dropping.url, "mk_k") as api:
        stream = api.follow_logs("t")
        assert await anext(stream) == "a"
        dropping.gone = True
        with pytest.raises(TaskNotFound):
            await anext(stream)


async def test_the_first_connection_is_not_retried():
    async with AsyncClient("http://127.0.0.1:9", "mk_k", timeout=2) as api:
        with pytest.raises(TransportError, match="cannot reach"):
            await anext(api.follow_logs("t"))


async def test_reconnecting_gives_up_when_the_api_stays_away(dropping):
    dropping.append("a", "b")
    dropping.cuts = [1]
    transports = [Transport(dropping.url, "mk_k", timeout=1), Transport("http://127.0.0.1:9", "mk_k", timeout=1)]

    def open_log():
        return transports[0].open("GET", LOG_PATH, accept="text/plain", params={"follow": "1"})
    try:
        async def running():
            return False
        stream = follow(open_log, running, within=0.5)
        assert await anext(stream) == "a"
        transports.reverse()  # from now on, nothing answers
        with pytest.raises(TransportError, match="could not be opened again for 0.5 s"):
            await anext(stream)
    finally:
        for transport in transports:
            await transport.close()
