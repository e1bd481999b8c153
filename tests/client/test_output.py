"""Logs, results, input files and progress through AsyncClient, against the real application
(in a thread) and a fake agent speaking protocol 2."""

from __future__ import annotations

import asyncio
import os

import pytest

from megamind.client import (
    AsyncClient,
    PayloadTooLarge,
    ResultsNotFound,
    TaskNotFound,
    TaskState,
    UnsafeArchive,
    ValidationFailed,
)
from megamind.protocol import InputFile, Stream

from .live import IMAGE, LiveServer, server_config, targz
from .proxy import DroppingProxy


async def started(api: AsyncClient, agent, **add) -> str:
    """A task the fake agent has started and reports running."""
    taskid = await api.add_task(IMAGE, agent.hwid, **add)
    await asyncio.to_thread(agent.start, taskid)
    await api.wait_task(taskid, timeout=5, interval=0.02)
    return taskid


async def eventually(check, timeout: float = 5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await check()):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met in time (last: {result!r})")
        await asyncio.sleep(0.02)
    return result


# --- logs ---------------------------------------------------------------------------------


async def test_logs_by_stream_and_tail(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        taskid = await started(api, agent)
        lines = [f"out {i}" for i in range(30)]
        await asyncio.to_thread(agent.logs, taskid, lines)
        await asyncio.to_thread(agent.logs, taskid, ["err 1", "err 2 \r with a carriage return"], Stream.STDERR)
        assert await eventually(lambda: api.logs(taskid)) == lines
        assert await api.logs(taskid, tail=3) == lines[-3:]
        assert await api.logs(taskid, tail=0) == []
        assert await eventually(lambda: api.logs(taskid, "stderr")) == ["err 1", "err 2 \r with a carriage return"]
        assert (await api.task_logs(taskid)).lines == lines[-20:]  # gettasklogs as it was
        with pytest.raises(ValidationFailed):
            await api.logs(taskid, "stdin")
        with pytest.raises(TaskNotFound):
            await api.logs("nosuchtask")


async def test_follow_gets_every_line_written_meanwhile_and_ends_with_the_task(live, key, agent):
    expected = [f"line {i} " + "x" * (i % 70) for i in range(5000)]
    async with AsyncClient(live.url, key) as api:
        taskid = await started(api, agent)

        def write():
            for start in range(0, len(expected), 100):
                agent.logs(taskid, expected[start:start + 100])
            agent.state(taskid, TaskState.STOPPED)
        seen = []

        async def follow():
            async for line in api.follow_logs(taskid):
                seen.append(line)
        follower = asyncio.create_task(follow())
        await asyncio.sleep(0.1)  # following before the first line
        await asyncio.to_thread(write)
        await asyncio.wait_for(follower, 30)
        assert seen == expected


async def test_follow_with_a_tail_starts_there(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        taskid = await started(api, agent)
        await asyncio.to_thread(agent.logs, taskid, [f"old {i}" for i in range(50)])
        await eventually(lambda: api.logs(taskid, tail=1))
        stream = api.follow_logs(taskid, tail=2)
        assert [await anext(stream), await anext(stream)] == ["old 48", "old 49"]
        await asyncio.to_thread(agent.logs, taskid, ["new"])
        assert await anext(stream) == "new"
        await asyncio.to_thread(agent.state, taskid, TaskState.ERROR, "exited with code 3")
        assert [line async for line in stream] == []


async def test_a_follow_dropped_mid_answer_loses_and_repeats_nothing(live, key, agent):
    proxy = DroppingProxy(live.port)
    proxy.start()
    expected = [f"line {i} " + "y" * 200 for i in range(3000)]
    try:
        async with AsyncClient(live.url, key) as direct, AsyncClient(proxy.url, key) as api:
            taskid = await started(direct, agent)
            await asyncio.to_thread(agent.logs, taskid, expected[:1000])
            await eventually(lambda: direct.logs(taskid, tail=1))
            seen = []
            async for line in api.follow_logs(taskid):
                seen.append(line)
                if len(seen) in (10, 500, 1000, 1001, 1700):
                    proxy.drop()  # lines of this answer still in flight are lost with it
                if len(seen) == 1000:
                    await asyncio.to_thread(agent.logs, taskid, expected[1000:2000])
                if len(seen) == 1500:
                    await asyncio.to_thread(agent.logs, taskid, expected[2000:])
                    await asyncio.to_thread(agent.state, taskid, TaskState.STOPPED)
        assert seen == expected
        assert proxy.accepted >= 3  # a drop may find its answer already read to the end
    finally:
        proxy.stop()


async def test_following_a_deleted_task_is_task_not_found(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        taskid = await api.add_task(IMAGE, agent.hwid)
        stream = api.follow_logs(taskid)
        await api.delete_task(taskid)
        with pytest.raises(TaskNotFound):
            await anext(stream)


# --- progress -----------------------------------------------------------------------------


async def test_progress_lines_set_the_tasks_progress(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        taskid = await started(api, agent)
        seen = []
        async for task in api.watch_task(taskid, interval=0.02):
            seen.append(task.progress)
            if task.progress is None:
                await asyncio.to_thread(agent.logs, taskid, ["MEGAMIND_PROGRESS=10", "working",
                                                             "MEGAMIND_PROGRESS=42.5"])
            else:
                break
        assert seen == [None, 42.5]
        assert "MEGAMIND_PROGRESS=42.5" in await api.logs(taskid)  # still a line of the log


# --- results ------------------------------------------------------------------------------


async def test_results_round_trip_byte_for_byte(live, key, agent, tmp_path):
    files = {"model.bin": os.urandom(2_000_000), "logs/metrics.json": b'{"loss": 0.1}\n'}
    archive = targz(files)
    async with AsyncClient(live.url, key) as api:
        taskid = await started(api, agent)
        with pytest.raises(ResultsNotFound) as caught:
            await api.results(taskid)
        assert (caught.value.code, caught.value.status) == (19, 404)
        await asyncio.to_thread(agent.put_results, taskid, archive)
        await asyncio.to_thread(agent.state, taskid, TaskState.STOPPED)
        task = await api.task(taskid)
        assert task.results.size == len(archive) and task.results.truncated == 0
        assert await api.results(taskid) == archive
        paths = await api.download_results(taskid, tmp_path / "out")
        assert {p.relative_to(tmp_path / "out").as_posix(): p.read_bytes() for p in paths} == files


async def test_unsafe_results_are_not_unpacked(live, key, agent, tmp_path):
    async with AsyncClient(live.url, key) as api:
        taskid = await started(api, agent)
        await asyncio.to_thread(agent.put_results, taskid, targz({"ok": b"x", "../../evil": b"x"}))
        with pytest.raises(UnsafeArchive, match="'..'"):
            await api.download_results(taskid, tmp_path / "out")
        assert list((tmp_path / "out").iterdir()) == []


# --- input files --------------------------------------------------------------------------


async def test_uploaded_files_reach_the_task_as_inputs(live, key, agent, tmp_path):
    data = os.urandom(1_500_000)
    (tmp_path / "weights.bin").write_bytes(data)
    async with AsyncClient(live.url, key) as api:
        from_path = await api.upload_file(tmp_path / "weights.bin")
        assert (from_path.name, from_path.size) == ("weights.bin", len(data))
        table = os.urandom(1_200_000)
        from_bytes = await api.upload_file(table, name="table.bin")
        with pytest.raises(ValueError, match="needs a name"):
            await api.upload_file(b"nameless")
        taskid = await api.add_task(IMAGE, agent.hwid, inputs=[from_path, from_bytes.file_id])
        command = await asyncio.to_thread(agent.command)
        assert command.taskid == taskid
        assert command.inputs == (InputFile(from_path.file_id, "weights.bin", len(data)),
                                  InputFile(from_bytes.file_id, "table.bin", len(table)))
        assert await asyncio.to_thread(agent.get_file, from_path.file_id, taskid) == data
        assert await asyncio.to_thread(agent.get_file, from_bytes.file_id, taskid) == table


async def test_a_file_over_the_bound_is_payload_too_large(tmp_path):
    server = LiveServer(server_config(tmp_path, max_file_bytes=100_000))
    server.start()
    try:
        async with AsyncClient(server.url, server.new_key()) as api:
            with pytest.raises(PayloadTooLarge) as caught:
                await api.upload_file(os.urandom(3_000_000), name="big.bin")
            assert (caught.value.code, caught.value.status) == (12, 413)
            assert (await api.upload_file(b"small", name="small.txt")).size == 5  # the connection goes on
    finally:
        server.stop()
