"""Whole logs: batches that continue the copy exactly, readable at once, written behind."""

import asyncio

import pytest

from megamind.protocol import TAIL_LINES, LogBatch, LogCursor, LogEntry, Stream
from megamind.states import TaskState
from megamind.store import Store
from megamind.store.logs import PAGE_LINES

from .helpers import create_task

RUN = {"image": "127.0.0.1:5000/helloworld:latest", "public_image": "megamind.network/helloworld:latest", "params": ""}
OUT, ERR = Stream.STDOUT, Stream.STDERR


async def new_task(store, account, hwid):
    task, _ = await create_task(store, account.id, hwid, "megamind.network/helloworld:latest", "", RUN)
    # One live task per executor: later tasks of the test need the executor free again.
    await store.tasks.set_states(hwid, [(task.taskid, TaskState.STOPPED, "")])
    return task.taskid


class Agent:
    """Builds batches the way an agent does: each continues its own cursor for the task."""

    def __init__(self) -> None:
        self.cursors: dict[str, LogCursor] = {}
        self.clock = 1_700_000_000_000_000_000

    def batch(self, taskid: str, lines, stream: Stream = OUT, dropped: int = 0) -> LogBatch:
        since = cursor = self.cursors.get(taskid, LogCursor())
        entries = []
        for line in lines:
            self.clock += 1
            entries.append(LogEntry(stream, self.clock, line))
            cursor = cursor.advanced(stream, self.clock)
        if dropped:
            self.clock += 1
            entries.append(LogEntry(stream, self.clock, "", dropped))
            cursor = cursor.advanced(stream, self.clock)
        self.cursors[taskid] = cursor
        return LogBatch(taskid, since, cursor, tuple(entries))

    async def send(self, store, taskid, lines, stream: Stream = OUT, dropped: int = 0) -> None:
        assert await store.logs.append(self.batch(taskid, lines, stream, dropped))


@pytest.fixture
def agent():
    return Agent()


async def read_all(store, taskid, stream=OUT, after=0, limit=PAGE_LINES) -> list[str]:
    texts = []
    while True:
        page = await store.logs.read(taskid, stream, after, limit)
        texts.extend(text for _, text in page.lines)
        if len(page.lines) < limit:
            return texts
        after = page.lines[-1][0]


async def stored_lines(store, taskid) -> int:
    return (await store.db.fetchone("SELECT COUNT(*) FROM log_lines WHERE taskid = ?", (taskid,)))[0]


async def test_nothing_printed_nothing_read(store, account, hwid):
    taskid = await new_task(store, account, hwid)
    assert await store.logs.tail(taskid) == []
    assert await store.logs.tail("never-issued") == []
    assert await read_all(store, taskid) == []
    assert await store.logs.cursors([taskid, "never-issued"]) == {taskid: LogCursor(), "never-issued": LogCursor()}


async def test_a_batch_that_continues_the_copy_is_kept_and_readable_at_once(store, account, hwid, agent):
    taskid = await new_task(store, account, hwid)
    await agent.send(store, taskid, ["one", "two"])
    await agent.send(store, taskid, ["three"])
    assert await store.logs.tail(taskid) == ["one", "two", "three"]
    page = await store.logs.read(taskid, OUT, 0)
    assert page.lines == [(1, "one"), (2, "two"), (3, "three")] and page.end == 3
    assert (await store.logs.cursors([taskid]))[taskid] == agent.cursors[taskid]
    assert await stored_lines(store, taskid) == 0  # written behind, not at once


async def test_a_batch_that_does_not_continue_the_copy_is_refused_and_loses_nothing(store, account, hwid, agent):
    taskid = await new_task(store, account, hwid)
    first = agent.batch(taskid, ["a", "b"])
    assert await store.logs.append(first)
    assert not await store.logs.append(first)  # the same batch again: a replay
    stale = Agent().batch(taskid, ["x"])  # since = the start, which the copy is past
    assert not await store.logs.append(stale)
    skipping = agent.batch(taskid, ["lost"])  # never sent...
    ahead = agent.batch(taskid, ["c"])  # ...so this one does not continue the copy
    assert not await store.logs.append(ahead)
    assert skipping.cursor == ahead.since
    assert await store.logs.tail(taskid) == ["a", "b"]
    assert (await store.logs.cursors([taskid]))[taskid] == first.cursor
    assert await store.logs.append(skipping) and await store.logs.append(ahead)
    assert await store.logs.tail(taskid) == ["a", "b", "lost", "c"]


async def test_tail_is_exactly_the_last_20_stdout_lines_when_streams_interleave(store, account, hwid, agent):
    taskid = await new_task(store, account, hwid)
    for i in range(30):
        await agent.send(store, taskid, [f"out {i}"], OUT)
        await agent.send(store, taskid, [f"err {i}"], ERR)
    expected_out = [f"out {i}" for i in range(10, 30)]
    assert TAIL_LINES == 20
    assert await store.logs.tail(taskid) == expected_out
    assert await store.logs.tail(taskid, stream=ERR) == [f"err {i}" for i in range(10, 30)]
    assert await store.logs.tail(taskid, 3) == ["out 27", "out 28", "out 29"]
    # The same whether the lines are in memory, half stored or all stored.
    await store.logs.flush()
    await agent.send(store, taskid, ["out 30"], OUT)
    await agent.send(store, taskid, ["err 30"], ERR)
    assert await store.logs.tail(taskid) == expected_out[1:] + ["out 30"]
    await store.logs.flush()
    assert await store.logs.tail(taskid) == expected_out[1:] + ["out 30"]
    assert await read_all(store, taskid, ERR) == [f"err {i}" for i in range(31)]


async def test_lines_and_cursor_survive_a_close_and_reopen(tmp_path, agent):
    path = tmp_path / "logs.sqlite"
    store = await Store.open(path)
    account, _ = await store.accounts.create("alice")
    hwid, _ = await store.executors.register(account.id, {}, 0.0)
    taskid = await new_task(store, account, hwid)
    await agent.send(store, taskid, ["line 1", "line 2"])
    await store.logs.flush()
    await agent.send(store, taskid, ["line 3"], ERR)
    await store.close()  # close flushes what is left

    store = await Store.open(path)
    try:
        assert (await store.logs.cursors([taskid]))[taskid] == agent.cursors[taskid]
        assert await store.logs.tail(taskid) == ["line 1", "line 2"]
        assert await read_all(store, taskid, ERR) == ["line 3"]
        # The agent goes on from the cursor it is handed; numbering goes on too.
        await agent.send(store, taskid, ["line 4"])
        assert (await store.logs.read(taskid, OUT, 0)).lines == [(1, "line 1"), (2, "line 2"), (4, "line 4")]
    finally:
        await store.close()


async def test_a_failed_flush_keeps_lines_and_cursor_for_the_next(store, account, hwid, agent, monkeypatch):
    taskid = await new_task(store, account, hwid)
    await agent.send(store, taskid, ["kept"])
    real = store.db.transaction

    def failing():
        raise OSError("disk full")
    monkeypatch.setattr(store.db, "transaction", failing)
    with pytest.raises(OSError):
        await store.logs.flush()
    monkeypatch.setattr(store.db, "transaction", real)
    assert await store.db.fetchone("SELECT 1 FROM log_state WHERE taskid = ?", (taskid,)) is None
    assert await store.logs.tail(taskid) == ["kept"]
    await agent.send(store, taskid, ["after"])
    await store.logs.flush()
    assert await stored_lines(store, taskid) == 2
    row = await store.db.fetchone("SELECT cursor, next_seq FROM log_state WHERE taskid = ?", (taskid,))
    assert (LogCursor.from_json(row["cursor"]), row["next_seq"]) == (agent.cursors[taskid], 3)


async def test_a_copy_left_in_the_table_is_loaded_again_and_continued(store, account, hwid, agent):
    taskid = await new_task(store, account, hwid)
    await agent.send(store, taskid, ["a"])
    for _ in range(3):  # idle flushes: the copy leaves memory
        await store.logs.flush()
    await agent.send(store, taskid, ["b"])
    assert (await store.logs.read(taskid, OUT, 0)).lines == [(1, "a"), (2, "b")]
    await store.logs.flush()
    assert await stored_lines(store, taskid) == 2


async def test_reading_pages_after_a_seq_across_memory_and_table(store, account, hwid, agent):
    taskid = await new_task(store, account, hwid)
    await agent.send(store, taskid, [f"s{i}" for i in range(7)])
    await agent.send(store, taskid, [f"e{i}" for i in range(5)], ERR)
    await store.logs.flush()
    await agent.send(store, taskid, [f"s{i}" for i in range(7, 12)])
    expected = [f"s{i}" for i in range(12)]
    for limit in (1, 2, 3, 5, 100):
        assert await read_all(store, taskid, OUT, limit=limit) == expected
    page = await store.logs.read(taskid, OUT, 5)
    assert [text for _, text in page.lines] == [f"s{i}" for i in range(5, 12)]
    assert page.end == 17  # 12 stdout lines and 5 stderr lines


async def test_start_gives_the_last_n_lines_of_a_stream(store, account, hwid, agent):
    taskid = await new_task(store, account, hwid)
    await agent.send(store, taskid, ["o1", "o2"])
    await agent.send(store, taskid, ["e1"], ERR)
    await store.logs.flush()
    await agent.send(store, taskid, ["o3"])

    async def last(n, stream=OUT):
        return await read_all(store, taskid, stream, await store.logs.start(taskid, stream, n))
    assert await last(None) == ["o1", "o2", "o3"]
    assert await last(1) == ["o3"]
    assert await last(2) == ["o2", "o3"]
    assert await last(3) == ["o1", "o2", "o3"]
    assert await last(50) == ["o1", "o2", "o3"]
    assert await last(0) == []
    assert await last(1, ERR) == ["e1"]


async def test_lines_the_agent_dropped_show_as_one_line(store, account, hwid, agent):
    taskid = await new_task(store, account, hwid)
    await agent.send(store, taskid, ["before"], dropped=1234)
    await agent.send(store, taskid, ["after"], dropped=1)
    await store.logs.flush()
    assert await read_all(store, taskid) == [
        "before", "[megamind: 1234 lines dropped here]", "after", "[megamind: 1 line dropped here]"]
    assert await store.logs.tail(taskid) == ["before", "after"]  # gettasklogs shows what was printed


async def test_a_stream_past_its_bound_loses_its_oldest_lines_and_says_how_many(tmp_path, agent):
    store = await Store.open(tmp_path / "db.sqlite", log_limit_bytes=1000)
    try:
        account, _ = await store.accounts.create("alice")
        hwid, _ = await store.executors.register(account.id, {}, 0.0)
        taskid = await new_task(store, account, hwid)
        lines = [f"line {i:05}" for i in range(100)]  # 10 bytes and a newline each: 1,100 bytes
        await agent.send(store, taskid, lines[:60])
        await agent.send(store, taskid, ["an error"], ERR)
        await store.logs.flush()
        assert await read_all(store, taskid) == lines[:60]  # 660 bytes: within the bound
        await agent.send(store, taskid, lines[60:])
        await store.logs.flush()
        kept = await read_all(store, taskid)
        assert kept[0].startswith("[megamind: ") and kept[0].endswith(" earlier lines dropped]")
        dropped = int(kept[0].split()[1])
        assert kept[1:] == lines[dropped:]
        assert len(kept[1:]) * 11 <= 900  # down to 90% of the bound
        assert await store.logs.tail(taskid) == lines[-20:]
        assert await read_all(store, taskid, ERR) == ["an error"]  # the other stream keeps its own
        # Reading from a later seq is not "from the start": no count line.
        page = await store.logs.read(taskid, OUT, await store.logs.start(taskid, OUT, 2))
        assert [t for _, t in page.lines] == lines[-2:]
    finally:
        await store.close()
    store = await Store.open(tmp_path / "db.sqlite", log_limit_bytes=1000)
    try:
        assert (await read_all(store, taskid))[0] == kept[0]  # the count is stored too
    finally:
        await store.close()


async def test_a_deleted_task_keeps_no_lines(store, account, hwid, agent):
    taskid = await new_task(store, account, hwid)
    await agent.send(store, taskid, ["secret"])
    await store.tasks.delete(account.id, taskid)
    await store.logs.flush()  # appended before the delete, flushed after it: not written
    assert await stored_lines(store, taskid) == 0

    other = await new_task(store, account, hwid)
    await agent.send(store, other, ["x"])
    await store.logs.flush()
    await store.logs.delete(other)
    assert await stored_lines(store, other) == 0
    assert await store.db.fetchone("SELECT 1 FROM log_state WHERE taskid = ?", (other,)) is None
    assert await store.logs.tail(other) == []
    assert (await store.logs.cursors([other]))[other] == LogCursor()


async def test_wait_returns_on_new_lines_or_after_the_timeout(store, account, hwid, agent):
    taskid = await new_task(store, account, hwid)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await store.logs.wait(taskid, 0, 0.05)
    assert loop.time() - started >= 0.04

    waiter = asyncio.create_task(store.logs.wait(taskid, 0, 5.0))
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await agent.send(store, taskid, ["wake up"])
    await asyncio.wait_for(waiter, 1.0)

    started = loop.time()
    await store.logs.wait(taskid, 0, 5.0)  # lines past 0 exist already
    await store.logs.flush()
    for _ in range(3):
        await store.logs.flush()
    await store.logs.wait(taskid, 0, 5.0)  # also once they are only in the table
    assert loop.time() - started < 1.0


async def test_the_count_of_trimmed_lines_is_of_lines_as_the_log_reads(tmp_path, agent):
    """A marker of dropped lines is one line of the log: a reader counting lines from the
    start of the stream finds its place again after the oldest ones went."""
    store = await Store.open(tmp_path / "db.sqlite", log_limit_bytes=100)
    try:
        account, _ = await store.accounts.create("alice")
        hwid, _ = await store.executors.register(account.id, {}, 0.0)
        taskid = await new_task(store, account, hwid)
        await agent.send(store, taskid, ["first line"], dropped=500)
        lines = [f"line {i:05}" for i in range(20)]
        await agent.send(store, taskid, lines)
        as_read = await read_all(store, taskid)
        assert len(as_read) == 22 and as_read[1] == "[megamind: 500 lines dropped here]"
        await store.logs.flush()
        kept = await read_all(store, taskid)
        dropped = int(kept[0].split()[1])
        assert kept[0] == f"[megamind: {dropped} earlier lines dropped]"
        assert dropped + len(kept) - 1 == 22 and kept[1:] == as_read[dropped:]
    finally:
        await store.close()
