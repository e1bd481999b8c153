"""The watcher against a fake engine: a task's end goes out after its last lines."""

import asyncio
import time

from megamind.executor.handle import TaskHandle
from megamind.protocol import (
    Command,
    ContainerStatus,
    LogBatch,
    LogCursor,
    Op,
    StateReport,
)
from megamind.states import TaskState


async def started(rooms, taskid="t1", command_id=1):
    await rooms.runner.carry_out(Command(command_id, Op.START, taskid, "127.0.0.1:5000/x:1"))
    return rooms.handles[taskid]


async def test_an_exit_is_reported_after_every_line_was_shipped(rooms):
    for round_ in range(20):
        rooms.sent.clear()
        handle = await started(rooms, command_id=2 * round_ + 1)
        rooms.logs.print("t1", *[f"line {i}" for i in range(50)])
        rooms.docker.exit("t1", 3)
        await rooms.watcher.refresh_locked(handle)
        end = StateReport("t1", TaskState.ERROR, "exited with code 3", 3)
        shipped = [e.text for m in rooms.sent[: rooms.sent.index(end)] if isinstance(m, LogBatch) for e in m.entries]
        assert shipped[-50:] == [f"line {i}" for i in range(50)]
        assert handle.concluded_in == rooms.session
        await rooms.runner.carry_out(Command(2 * round_ + 2, Op.REMOVE, "t1"))


async def test_an_end_not_reported_in_this_session_is_busy_in_the_inventory(rooms):
    handle = await started(rooms)
    rooms.docker.exit("t1", 0)
    rooms.session = 2  # a new link: what was said before may not have arrived
    inventory, _ = await rooms.watcher.inventory()
    assert [(c.taskid, c.status, c.exit_code) for c in inventory.containers] == [("t1", ContainerStatus.BUSY, 0)]
    await rooms.watcher.tell_inventory()
    await rooms.settle()
    assert rooms.sent[-1] == StateReport("t1", TaskState.STOPPED, "", 0)
    assert handle.concluded_in == 2
    inventory, to_look_at = await rooms.watcher.inventory()
    assert [(c.taskid, c.status, c.exit_code) for c in inventory.containers] == [("t1", ContainerStatus.EXITED, 0)]
    assert to_look_at == []


async def test_an_end_whose_lines_could_not_go_is_not_reported(rooms):
    handle = await started(rooms)
    rooms.logs.print("t1", "last")
    rooms.docker.exit("t1", 0)
    rooms.link_up = False
    await rooms.watcher.refresh_locked(handle)
    assert handle.concluded_in != rooms.session
    assert not any(isinstance(m, StateReport) and m.state is TaskState.STOPPED for m in rooms.sent)


async def test_a_vanished_container_is_an_error(rooms):
    handle = await started(rooms)
    del rooms.docker.containers_by_id[handle.container_id]
    await rooms.watcher.refresh_locked(handle)
    assert rooms.sent[-1] == StateReport("t1", TaskState.ERROR, "container vanished")
    assert "t1" not in rooms.handles


async def test_a_death_while_a_command_runs_is_looked_at_after_it(rooms):
    handle = await started(rooms)
    handle.busy = True
    rooms.watcher.feed_event({"Action": "die", "Actor": {"Attributes": {"network.megamind.task": "t1"}}})
    consumer = asyncio.create_task(rooms.watcher.consume_events(resync=None))
    await asyncio.sleep(0.01)
    consumer.cancel()
    assert handle.missed_event
    assert not rooms.jobs  # the operation reports its outcome: no look of its own


async def test_adopted_containers_become_handles(rooms):
    await started(rooms)
    rooms.handles.clear()
    await rooms.watcher.adopt()
    assert isinstance(rooms.handles["t1"], TaskHandle)
    assert rooms.handles["t1"].container_id == rooms.docker.by_task("t1").id


async def test_a_new_session_reads_output_again_from_the_apis_cursor(rooms):
    handle = await started(rooms)
    rooms.logs.print("t1", "a", "b", "c")
    rooms.docker.exit("t1", 0)
    await rooms.watcher.refresh_locked(handle)
    shipped = [e for m in rooms.sent if isinstance(m, LogBatch) for e in m.entries]
    assert [e.text for e in shipped] == ["a", "b", "c"]
    # The API kept only "a": the next session starts right after it, with no gap and no repeat.
    api_has = LogCursor().advanced(shipped[0].stream, shipped[0].ns)
    rooms.sent.clear()
    rooms.session = 2
    rooms.shipper.restart_from({"t1": api_has}, {"t1": handle.container_id})
    await rooms.watcher.tell_inventory()
    await rooms.settle()
    again = [m for m in rooms.sent if isinstance(m, LogBatch)]
    assert [e.text for m in again for e in m.entries] == ["b", "c"]
    assert again[0].since == api_has


async def test_a_running_container_nobody_follows_is_followed_again_after_a_resync(rooms):
    handle = await started(rooms)
    rooms.shipper.forget("t1")  # the engine went away under its follower, which gave up
    assert not rooms.shipper.following("t1")
    await rooms.watcher.resync(lambda: 0)
    await rooms.settle()
    assert rooms.shipper.following("t1")
    rooms.logs.print("t1", "after the engine came back")
    rooms.docker.exit("t1", 0)
    await rooms.watcher.refresh_locked(handle)
    assert "after the engine came back" in [e.text for m in rooms.sent if isinstance(m, LogBatch) for e in m.entries]


async def test_a_container_that_died_during_its_start_still_has_its_lines_read(rooms, monkeypatch):
    real_start = rooms.docker.start

    async def start_and_die(container_id):
        await real_start(container_id)
        container = rooms.docker.containers_by_id[container_id]
        rooms.logs.print(container.taskid, "about to fail")
        rooms.docker.exit(container.taskid, 3)
        rooms.handles[container.taskid].missed_event = True  # the die event came while it was busy

    monkeypatch.setattr(rooms.docker, "start", start_and_die)
    await started(rooms)
    end = StateReport("t1", TaskState.ERROR, "exited with code 3", 3)
    assert end in rooms.sent
    shipped = [e.text for m in rooms.sent[: rooms.sent.index(end)] if isinstance(m, LogBatch) for e in m.entries]
    assert shipped == ["about to fail"]


async def test_an_end_concluded_across_a_reconnect_waits_for_the_new_sessions_reading(rooms, monkeypatch):
    """The link broke while an end was being concluded: the new session reads the output
    again from the API's cursor, and the end goes out only after that reading shipped."""
    for round_ in range(10):
        rooms.sent.clear()
        handle = await started(rooms, command_id=2 * round_ + 1)
        rooms.logs.print("t1", *[f"line {i}" for i in range(30)])
        rooms.docker.exit("t1", 0)
        real_ship_results = rooms.watcher._ship_results
        reconnects = []

        async def reconnect_meanwhile(taskid, info):
            await real_ship_results(taskid, info)
            if reconnects:
                return
            reconnects.append(rooms.session)
            rooms.sent.clear()  # the API kept none of it
            rooms.session += 1
            rooms.shipper.restart_from({}, {"t1": handle.container_id})

        monkeypatch.setattr(rooms.watcher, "_ship_results", reconnect_meanwhile)
        await rooms.watcher.refresh_locked(handle)
        monkeypatch.undo()
        end = StateReport("t1", TaskState.STOPPED, "", 0)
        assert end in rooms.sent
        shipped = [e.text for m in rooms.sent[: rooms.sent.index(end)] if isinstance(m, LogBatch) for e in m.entries]
        assert shipped == [f"line {i}" for i in range(30)]
        assert handle.concluded_in == rooms.session
        await rooms.runner.carry_out(Command(2 * round_ + 2, Op.REMOVE, "t1"))


async def test_an_end_carries_the_engines_times_of_the_run_and_the_agents_clock(rooms):
    handle = await started(rooms)
    container = rooms.docker.by_task("t1")
    container.started_at = "2026-12-02T10:00:00.250000000Z"
    rooms.docker.exit("t1", 0)
    container.finished_at = "2026-12-02T10:00:03.750000000Z"
    await rooms.watcher.refresh_locked(handle)
    end = [m for m in rooms.sent_as_is if isinstance(m, StateReport) and m.state is TaskState.STOPPED][-1]
    assert abs(end.finished_at - end.started_at - 3.5) < 1e-6
    assert abs(end.started_at - 1796205600.25) < 1e-6
    assert abs(end.sent_at - time.time()) < 5
    inventory, _ = await rooms.watcher.inventory()
    assert abs(inventory.containers[0].started_at - 1796205600.25) < 1e-6 and inventory.sent_at is not None
