"""The shipper: followers read everything, and a link that cannot keep up costs lines from
the middle, never memory without bound and never the newest 20 stdout lines."""

import asyncio

from megamind.executor.shipper import Shipper
from megamind.protocol import TAIL_LINES, LogBatch, LogCursor, Stream

from .fakes import FakeDocker, FakeLogs


def collecting_shipper() -> tuple[FakeDocker, FakeLogs, Shipper, list[LogBatch]]:
    """A shipper over a fake engine whose link takes every batch at once, into ``sent``."""
    docker = FakeDocker()
    logs = FakeLogs(docker)
    sent: list[LogBatch] = []

    async def send(batch: LogBatch) -> bool:
        sent.append(batch)
        return True

    return docker, logs, Shipper(logs, send, window_s=0.001), sent


async def make_container(docker: FakeDocker, taskid: str) -> str:
    created = await docker.create({"labels": {"network.megamind.task": taskid}})
    await docker.start(created.id)
    return created.id


async def test_a_slow_link_holds_the_reading_back_and_loses_nothing():
    docker = FakeDocker()
    logs = FakeLogs(docker)
    sent: list[LogBatch] = []
    most_waiting = 0

    async def slow_send(batch: LogBatch) -> bool:
        nonlocal most_waiting
        most_waiting = max(most_waiting, len(batch.entries))
        await asyncio.sleep(0.02)  # an API that takes its time with every batch
        sent.append(batch)
        return True

    shipper = Shipper(logs, slow_send, window_s=0.001)
    shipping = asyncio.create_task(shipper.run())
    container_id = await make_container(docker, "t1")
    total = 200_000
    logs.print("t1", *[f"out {i}" for i in range(total)])  # all there before the first read
    shipper.follow("t1", container_id)
    docker.exit("t1", 0)
    assert await shipper.drained("t1")
    assert await shipper.flush("t1")
    shipping.cancel()
    entries = [e for batch in sent for e in batch.entries]
    assert not any(e.dropped for e in entries)
    assert [e.text for e in entries] == [f"out {i}" for i in range(total)]
    assert most_waiting <= 20_000
    await shipper.close()


async def test_a_link_that_does_not_move_costs_whole_lines_from_the_middle_counted(monkeypatch):
    monkeypatch.setattr("megamind.executor.shipper.MAX_READ_PAUSE_S", 0.01)
    docker = FakeDocker()
    logs = FakeLogs(docker)
    sent: list[LogBatch] = []
    link_free = asyncio.Event()

    async def slow_send(batch: LogBatch) -> bool:
        await link_free.wait()  # the API does not read for now
        sent.append(batch)
        return True

    shipper = Shipper(logs, slow_send, window_s=0.001)
    shipping = asyncio.create_task(shipper.run())
    container_id = await make_container(docker, "t1")
    shipper.follow("t1", container_id)
    total = 200_000
    for start in range(0, total, 10_000):
        logs.print("t1", *[f"out {i}" for i in range(start, start + 10_000)])
        logs.print("t1", *[f"err {i}" for i in range(start, start + 10_000)], stream=Stream.STDERR)
        await asyncio.sleep(0.01)
    docker.exit("t1", 0)
    assert await shipper.drained("t1", 5)
    assert shipper.waiting("t1") <= 20_000
    link_free.set()
    assert await shipper.flush("t1")
    shipping.cancel()
    entries = [e for batch in sent for e in batch.entries]
    real = [e for e in entries if not e.dropped]
    dropped = sum(e.dropped for e in entries)
    assert dropped > 0 and len(real) + dropped == 2 * total  # every line is there or counted
    stdout = [e.text for e in real if e.stream is Stream.STDOUT]
    assert stdout[-TAIL_LINES:] == [f"out {i}" for i in range(total - TAIL_LINES, total)]
    assert sent[-1].cursor.stdout.ns > 0
    await shipper.close()


async def test_batches_continue_one_another_and_the_restart_of_a_container_is_followed():
    docker, logs, shipper, sent = collecting_shipper()
    shipping = asyncio.create_task(shipper.run())
    container_id = await make_container(docker, "t1")
    shipper.follow("t1", container_id)
    logs.print("t1", "first run")
    docker.exit("t1", 0)
    assert await shipper.drained("t1", 5)
    await docker.start(container_id)  # restarted
    shipper.follow("t1", container_id)
    logs.print("t1", "second run")
    docker.exit("t1", 0)
    assert await shipper.drained("t1", 5)
    assert await shipper.flush("t1")
    shipping.cancel()
    assert [e.text for b in sent for e in b.entries] == ["first run", "second run"]
    assert sent[0].since == LogCursor()
    for before, after in zip(sent, sent[1:]):
        assert after.since == before.cursor
    await shipper.close()


async def test_what_a_follow_left_unread_when_the_container_stopped_is_read_after_it():
    docker, logs, shipper, sent = collecting_shipper()
    logs.follow_ends_early = True  # the engine ends a lagging follow at the stop
    container_id = await make_container(docker, "t1")
    logs.print("t1", *[f"line {i}" for i in range(10_000)])
    docker.exit("t1", 0)
    shipper.follow("t1", container_id)
    assert await shipper.drained("t1")
    assert await shipper.flush("t1")
    assert [e.text for b in sent for e in b.entries] == [f"line {i}" for i in range(10_000)]
    await shipper.close()


async def test_a_follow_is_opened_again_before_the_engine_can_rotate_its_log_under_it(monkeypatch):
    monkeypatch.setattr("megamind.executor.shipper.REOPEN_AFTER_LOG_BYTES", 50_000)
    docker, logs, shipper, sent = collecting_shipper()
    shipping = asyncio.create_task(shipper.run())
    container_id = await make_container(docker, "t1")
    shipper.follow("t1", container_id)
    for start in range(0, 10_000, 1_000):
        logs.print("t1", *[f"line {i}" for i in range(start, start + 1_000)])
        await asyncio.sleep(0.01)
    docker.exit("t1", 0)
    assert await shipper.drained("t1")
    assert await shipper.flush("t1")
    shipping.cancel()
    assert [e.text for b in sent for e in b.entries] == [f"line {i}" for i in range(10_000)]
    assert logs.follows > 5  # opened again every ~50 kB of log, each time from the cursor
    await shipper.close()
