"""Following a container's log: the frame decoder on hand-made bytes, then the real engine.

The engine tests build a busybox image FROM scratch (no internet), run their containers
on network "none" labelled ``megamind.test=<this run>``, and remove them by that label.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
import uuid
from datetime import datetime, timezone

import aiohttp
import aiohttp.web
import docker
import pytest

from megamind.executor.follow import (
    ContainerGone,
    EngineLogs,
    FollowError,
    FrameDecoder,
    _Resume,
    engine_url,
    parse_timestamp_ns,
    since_param,
)
from megamind.executor.spec import LOG_CONFIG
from megamind.protocol import MAX_LINE_CHARS, LogCursor, LogEntry, Stream, StreamPosition

from .conftest import TEST_LABEL

OUT, ERR = Stream.STDOUT, Stream.STDERR
BASE_S = int(datetime(2024, 3, 5, 7, 8, 9, tzinfo=timezone.utc).timestamp())
BASE_NS = BASE_S * 1_000_000_000


def frame(stream: int, payload: bytes) -> bytes:
    return struct.pack(">BxxxL", stream, len(payload)) + payload


def entry(stream: int, fraction: int, body: bytes) -> bytes:
    """A frame as the engine writes it: its fixed-width stamp, a space, the text."""
    return frame(stream, b"2024-03-05T07:08:09.%09dZ %s" % (fraction, body))


# --- timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize("stamp, fraction_ns", [
    ("2024-03-05T07:08:09.123456789Z", 123_456_789),
    ("2024-03-05T07:08:09.000000001Z", 1),
    ("2024-03-05T07:08:09.123456Z", 123_456_000),
    ("2024-03-05T07:08:09.5Z", 500_000_000),
    ("2024-03-05T07:08:09Z", 0),
    ("2024-03-05T09:08:09.25+02:00", 250_000_000),
    ("2024-03-05T02:08:09.25-05:00", 250_000_000),
    ("2024-03-05T09:08:09+02:00", 0),
])
def test_timestamps_to_ns(stamp, fraction_ns):
    assert parse_timestamp_ns(stamp) == BASE_NS + fraction_ns


def test_timestamps_order_within_a_second_and_refuse_garbage():
    assert parse_timestamp_ns("2024-03-05T07:08:10.000000000Z") - parse_timestamp_ns(
        "2024-03-05T07:08:09.999999999Z") == 1
    for bad in ("", "2024-03-05", "2024-03-05T07:08:09.Z", "2024-03-05T07:08:09.1234567890Z", "yesterday"):
        with pytest.raises(ValueError):
            parse_timestamp_ns(bad)


def test_since_is_seconds_and_nine_digits():
    assert since_param(BASE_NS + 5) == f"{BASE_S}.000000005"
    assert since_param(BASE_NS) == f"{BASE_S}.000000000"


def test_docker_host_is_read_like_the_sdk(monkeypatch):
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    assert engine_url(None) == ("http://docker", "/var/run/docker.sock")
    assert engine_url("unix:///run/user/1/docker.sock") == ("http://docker", "/run/user/1/docker.sock")
    assert engine_url("tcp://10.0.0.2:2375") == ("http://10.0.0.2:2375", None)
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    with pytest.raises(ValueError, match="TLS"):
        engine_url("tcp://10.0.0.2:2376")


# --- the frame decoder --------------------------------------------------------------------


def test_lines_keep_their_stream_and_stamp_and_lose_only_the_newline():
    data = entry(1, 1, b"hello\n") + entry(2, 2, b"oops\r\n") + entry(1, 3, b"10%\r20%\r100%\n") + entry(1, 4, b"\n")
    assert FrameDecoder().feed(data) == [
        (OUT, BASE_NS + 1, "hello"), (ERR, BASE_NS + 2, "oops\r"), (OUT, BASE_NS + 3, "10%\r20%\r100%"),
        (OUT, BASE_NS + 4, ""),
    ]


def test_any_chunking_gives_the_same_lines():
    data = b"".join(entry(1 + i % 2, i, b"line %d \xc3\xa9\n" % i) for i in range(50))
    whole = FrameDecoder().feed(data)
    assert len(whole) == 50
    for size in (1, 3, 7, 8, 9, 64):
        decoder = FrameDecoder()
        got = []
        for start in range(0, len(data), size):  # headers and UTF-8 characters split too
            got += decoder.feed(data[start:start + size])
        assert got == whole


def test_a_header_split_across_chunks_waits_for_the_rest():
    data = entry(1, 7, b"abc\n")
    decoder = FrameDecoder()
    assert decoder.feed(data[:5]) == []
    assert decoder.feed(data[5:12]) == []
    assert decoder.feed(data[12:]) == [(OUT, BASE_NS + 7, "abc")]


def test_pieces_of_a_long_line_are_joined_at_the_first_stamp_per_stream():
    data = (entry(1, 1, b"first ") + entry(2, 2, b"err-a ") + entry(1, 3, b"second ")
            + entry(2, 4, b"err-b\n") + entry(1, 5, b"third\n") + entry(1, 6, b"next\n"))
    assert FrameDecoder().feed(data) == [
        (ERR, BASE_NS + 2, "err-a err-b"), (OUT, BASE_NS + 1, "first second third"), (OUT, BASE_NS + 6, "next"),
    ]


def test_a_character_split_between_pieces_is_whole_again():
    euro = "€".encode()
    data = entry(1, 1, b"price " + euro[:1]) + entry(1, 2, euro[1:] + b" 5\n")
    assert FrameDecoder().feed(data) == [(OUT, BASE_NS + 1, "price € 5")]


def test_long_lines_are_cut_but_consumed_whole():
    decoder = FrameDecoder(max_line_chars=10)
    pieces = [entry(1, i, b"x" * 16384) for i in range(1, 5)] + [entry(1, 5, b"tail\n"), entry(1, 6, b"after\n")]
    got = []
    for piece in pieces:
        got += decoder.feed(piece)
    assert got == [(OUT, BASE_NS + 1, "x" * 10), (OUT, BASE_NS + 6, "after")]
    assert decoder.feed(entry(2, 7, b"y" * 100 + b"\n")) == [(ERR, BASE_NS + 7, "y" * 10)]


def test_bad_utf8_is_replaced():
    assert FrameDecoder().feed(entry(1, 1, b"a\xffb\n")) == [(OUT, BASE_NS + 1, "a\ufffdb")]


def test_stamps_in_other_forms():
    data = (frame(1, b"2024-03-05T07:08:09Z whole second\n")
            + frame(2, b"2024-03-05T09:08:09.5+02:00 offset\n")
            + frame(1, b"2024-03-05T07:08:09.25Z short fraction\n"))
    assert FrameDecoder().feed(data) == [
        (OUT, BASE_NS, "whole second"), (ERR, BASE_NS + 500_000_000, "offset"),
        (OUT, BASE_NS + 250_000_000, "short fraction"),
    ]


def test_an_unstamped_payload_is_kept_at_the_streams_last_time():
    data = entry(1, 9, b"stamped\n") + frame(1, b"no stamp here\n") + frame(3, b"engine says\n")
    assert FrameDecoder().feed(data) == [(OUT, BASE_NS + 9, "stamped"), (OUT, BASE_NS + 9, "no stamp here")]


def test_flush_gives_lines_that_never_ended():
    decoder = FrameDecoder()
    assert decoder.feed(entry(2, 2, b"err") + entry(1, 1, b"out")) == []
    assert decoder.flush() == [(OUT, BASE_NS + 1, "out"), (ERR, BASE_NS + 2, "err")]
    assert decoder.flush() == []


# --- resuming -----------------------------------------------------------------------------


def test_resume_skips_what_the_cursor_read_counting_equal_stamps():
    # Three stdout lines share one stamp; two of them were read, and stderr up to ns 5.
    cursor = LogCursor(StreamPosition(10, 2), StreamPosition(5, 1))
    lines = [(ERR, 5, "e5"), (OUT, 10, "a"), (ERR, 7, "e7"), (OUT, 10, "b"), (OUT, 10, "c"), (OUT, 11, "d")]
    resume = _Resume(cursor)
    assert resume.take(lines[:4]) == [LogEntry(ERR, 7, "e7")]
    assert resume.cursor == LogCursor(StreamPosition(10, 2), StreamPosition(7, 1))
    assert resume.take(lines[4:]) == [LogEntry(OUT, 10, "c"), LogEntry(OUT, 11, "d")]
    assert resume.cursor == LogCursor(StreamPosition(11, 1), StreamPosition(7, 1))


def test_resume_from_every_cut_gives_each_line_once():
    stamps = [1, 1, 2, 2, 2, 3, 5, 5, 8]
    lines = [(OUT if i % 3 else ERR, ns, str(i)) for i, ns in enumerate(stamps)]
    for cut in range(len(lines) + 1):
        first = _Resume(LogCursor())
        got = first.take(lines[:cut])
        since = first.cursor.since_ns
        # The engine re-sends everything stamped at or after ``since``.
        got += _Resume(first.cursor).take([line for line in lines if line[1] >= since])
        assert [e.text for e in got] == [text for _, _, text in lines], cut


def test_a_line_the_engine_gives_again_after_a_newer_one_is_skipped():
    # A follow across a rotated log file can replay older lines of a stream.
    lines = [(OUT, 1, "a"), (OUT, 2, "b"), (OUT, 3, "c1"), (OUT, 3, "c2"), (ERR, 1, "e"),
             (OUT, 2, "b"), (OUT, 3, "c1"), (OUT, 3, "c2"), (OUT, 3, "c3"), (OUT, 4, "d")]
    resume = _Resume(LogCursor())
    assert [e.text for e in resume.take(lines)] == ["a", "b", "c1", "c2", "e", "c3", "d"]
    assert resume.cursor.stdout == StreamPosition(4, 1)


# --- the HTTP side, against a fake engine ---------------------------------------------------


@pytest.fixture
async def fake_engine(aiohttp_server, monkeypatch):
    """An engine answering /logs from a script: a status, then frames, then maybe a cut."""
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    script = {"status": 200, "frames": [], "cut": False, "queries": []}

    async def container_logs(request):
        script["queries"].append((request.match_info["container"], dict(request.query)))
        if script["status"] != 200:
            return aiohttp.web.json_response({"message": "engine trouble"}, status=script["status"])
        response = aiohttp.web.StreamResponse()
        await response.prepare(request)
        for data in script["frames"]:
            await response.write(data)
        if script["cut"]:
            await response.write(entry(1, 99, b"half"))
            request.transport.close()  # the engine went away mid-stream
            return response
        await response.write_eof()
        return response

    app = aiohttp.web.Application()
    app.router.add_get("/v1.41/containers/{container}/logs", container_logs)
    server = await aiohttp_server(app, host="127.0.0.1")
    async with EngineLogs("1.41", docker_host=f"tcp://127.0.0.1:{server.port}") as logs:
        yield logs, script


async def test_a_follow_resumes_from_the_cursor_and_ends_with_the_stream(fake_engine):
    logs, script = fake_engine
    script["frames"] = [entry(1, 5, b"old\n") + entry(2, 6, b"e\n"), entry(1, 7, b"new "), entry(1, 8, b"line\n")]
    cursor = LogCursor(StreamPosition(BASE_NS + 5, 1), StreamPosition(BASE_NS + 3, 1))
    reads = []
    async with contextlib.aclosing(logs.follow("task/1", cursor)) as batches:
        async for read in batches:
            reads.append(read)
    assert script["queries"] == [("task/1", {"follow": "1", "stdout": "1", "stderr": "1", "timestamps": "1",
                                             "since": f"{BASE_S - 1}.000000003"})]  # a moment before
    assert [e.text for read in reads for e in read.entries] == ["e", "new line"]
    assert reads[-1].cursor == LogCursor(StreamPosition(BASE_NS + 7, 1), StreamPosition(BASE_NS + 6, 1))


@pytest.mark.parametrize("status, error", [(404, ContainerGone), (500, FollowError)])
async def test_an_error_answer_is_a_follow_error(fake_engine, status, error):
    logs, script = fake_engine
    script["status"] = status
    with pytest.raises(error, match="no container c" if status == 404 else "500: .*engine trouble"):
        async for _ in logs.follow("c", LogCursor()):
            pass


async def test_a_stream_cut_short_is_a_follow_error_after_what_was_whole(fake_engine):
    logs, script = fake_engine
    script["frames"], script["cut"] = [entry(1, 1, b"whole\n")], True
    got = []
    with pytest.raises(FollowError):
        async for read in logs.follow("c", LogCursor()):
            got += [e.text for e in read.entries]
    assert got == ["whole"]  # and nothing of the half line: the next follow reads it again


# --- the real engine ----------------------------------------------------------------------

SEQ_30 = "i=0; while [ $i -lt 30 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done"


@pytest.fixture
def container(engine, busybox_image, run_label):
    """Create (not start) a container running a shell script, as the agent makes task containers."""
    made = []

    def create(script: str) -> str:
        container_id = engine.api.create_container(
            busybox_image, ["/bin/sh", "-c", script], labels={TEST_LABEL: run_label},
            host_config=engine.api.create_host_config(network_mode="none", log_config=LOG_CONFIG, init=True),
        )["Id"]
        made.append(container_id)
        return container_id

    yield create
    for container_id in made:
        with contextlib.suppress(docker.errors.NotFound):
            engine.api.remove_container(container_id, force=True)


@pytest.fixture
async def logs(engine):
    async with EngineLogs(engine.api.api_version) as logs:
        yield logs


async def read_all(logs: EngineLogs, container_id: str, cursor: LogCursor = LogCursor(),
                   stop_after: int | None = None) -> tuple[list[LogEntry], LogCursor]:
    """Follow until the engine ends the stream, or until ``stop_after`` lines came."""
    entries: list[LogEntry] = []
    async with contextlib.aclosing(logs.follow(container_id, cursor)) as batches:
        async for read in batches:
            entries += read.entries
            cursor = read.cursor
            if stop_after is not None and len(entries) >= stop_after:
                break
    return entries, cursor


def texts(entries: list[LogEntry], stream: Stream) -> list[str]:
    return [e.text for e in entries if e.stream is stream]


@pytest.mark.e2e
async def test_every_line_on_its_stream_in_order_every_time(logs, engine, container):
    expected_out, expected_err = [f"out{i}" for i in range(30)], [f"err{i}" for i in range(30)]
    for attempt in range(20):
        # Half of them print at once (often done before the follow begins: the engine
        # then sends the whole log), half after a pause (followed live until they stop).
        pause = "sleep 0.2; " if attempt % 2 else ""
        container_id = container(pause + SEQ_30)
        engine.api.start(container_id)
        entries, cursor = await read_all(logs, container_id)
        assert texts(entries, OUT) == expected_out, attempt
        assert texts(entries, ERR) == expected_err, attempt
        assert cursor.stdout.ns == max(e.ns for e in entries if e.stream is OUT)
        engine.api.remove_container(container_id, force=True)


@pytest.mark.e2e
async def test_a_line_printed_just_before_exiting_is_always_there(logs, engine, container):
    for attempt in range(20):
        container_id = container("echo last words; exit 3")
        engine.api.start(container_id)
        entries, _ = await read_all(logs, container_id)
        assert [(e.stream, e.text) for e in entries] == [(OUT, "last words")], attempt
        assert engine.api.inspect_container(container_id)["State"]["ExitCode"] == 3
        engine.api.remove_container(container_id, force=True)


@pytest.mark.e2e
async def test_resuming_from_the_cursor_again_and_again_loses_and_repeats_nothing(logs, engine, container):
    container_id = container("i=0; while [ $i -lt 5000 ]; do echo $i; echo $i >&2; i=$((i+1)); done")
    engine.api.start(container_id)
    entries, cursor, follows = [], LogCursor(), 0
    while True:
        batch, cursor = await read_all(logs, container_id, cursor, stop_after=1000)
        follows += 1
        if not batch:
            break
        entries += batch
    expected = [str(i) for i in range(5000)]
    assert texts(entries, OUT) == expected and texts(entries, ERR) == expected
    assert follows >= 3  # it really did stop and resume


@pytest.mark.e2e
async def test_a_long_line_comes_as_one_line_cut(logs, engine, container):
    # 100 KB: the log driver stores it as seven pieces; é's UTF-8 bytes straddle some cuts.
    container_id = container(
        "head -c 100000 /dev/zero | tr '\\0' a; echo; "
        "i=0; while [ $i -lt 50000 ]; do printf '\\303\\251'; i=$((i+1)); done; echo; echo next")
    engine.api.start(container_id)
    entries, _ = await read_all(logs, container_id)
    assert [e.text for e in entries] == ["a" * MAX_LINE_CHARS, "é" * 50000, "next"]


@pytest.mark.e2e
async def test_a_chatty_task_loses_nothing(logs, engine, container):
    container_id = container("sleep 0.3; seq 0 99999")
    engine.api.start(container_id)
    started = time.monotonic()
    entries, _ = await read_all(logs, container_id)
    elapsed = time.monotonic() - started
    assert [e.text for e in entries] == [str(i) for i in range(100_000)]
    assert all(e.stream is OUT for e in entries)
    print(f"100,000 lines followed live in {elapsed:.2f}s")


@pytest.mark.e2e
async def test_a_container_not_started_gives_nothing_and_ends(logs, container):
    entries, cursor = await read_all(logs, container("echo never"))
    assert entries == [] and cursor == LogCursor()


@pytest.mark.e2e
async def test_after_a_restart_the_cursor_gives_only_the_new_run(logs, engine, container):
    # The container keeps its files across runs: each run numbers itself.
    container_id = container("n=$(cat /runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > /runs; "
                             "echo run$n; sleep 0.5; echo run$n done")
    engine.api.start(container_id)
    first, cursor = await read_all(logs, container_id)  # ends when the first run stops
    assert [e.text for e in first] == ["run1", "run1 done"]
    engine.api.restart(container_id, timeout=1)
    second, cursor = await read_all(logs, container_id, cursor)
    assert [e.text for e in second] == ["run2", "run2 done"]
    again, _ = await read_all(logs, container_id, cursor)
    assert again == []


@pytest.mark.e2e
async def test_a_container_the_engine_does_not_know_is_gone(logs):
    with pytest.raises(ContainerGone):
        await read_all(logs, f"megamind-no-such-{uuid.uuid4().hex}")


@pytest.mark.e2e
async def test_more_followers_at_once_than_an_http_pool_holds(logs, engine, container):
    # aiohttp's connectors hold 100 connections by default; a follower keeps its one for
    # as long as its task runs, so the 101st must not wait for one of them to end.
    container_id = container("echo hi; sleep 60")
    engine.api.start(container_id)
    followers = 120
    greeted = asyncio.Semaphore(0)

    async def follow() -> list[str]:
        got = []
        async with contextlib.aclosing(logs.follow(container_id, LogCursor())) as batches:
            async for read in batches:
                got += [e.text for e in read.entries]
                greeted.release()
        return got

    tasks = [asyncio.ensure_future(follow()) for _ in range(followers)]
    try:
        for _ in range(followers):
            await asyncio.wait_for(greeted.acquire(), 20)
    finally:
        engine.api.kill(container_id)
    assert await asyncio.gather(*tasks) == [["hi"]] * followers
