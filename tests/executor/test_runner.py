"""The runner against a fake engine: commands carried out once, failures kept to their task."""

import asyncio
import dataclasses

from megamind.protocol import Ack, Command, Op, Phase, PhaseReport, StateReport
from megamind.states import TaskState


def start(command_id=1, taskid="t1"):
    return Command(command_id, Op.START, taskid, "127.0.0.1:5000/x:1", "megamind.network/x:1", "p")


async def test_a_start_pulls_creates_starts_and_reports_running_then_acks(rooms):
    await rooms.runner.carry_out(start())
    phases = [m.phase for m in rooms.of_type(PhaseReport)]
    assert phases == [Phase.PULLING, Phase.STARTING]
    assert rooms.of_type(StateReport) == [StateReport("t1", TaskState.RUNNING)]
    assert rooms.sent[-1] == Ack(1)
    assert rooms.docker.by_task("t1").status == "running"


async def test_a_pull_failure_is_the_tasks_error_and_no_container_is_left(rooms):
    rooms.images.error = "manifest unknown"
    await rooms.runner.carry_out(start())
    assert rooms.of_type(StateReport) == [StateReport("t1", TaskState.ERROR, "pull failed: manifest unknown")]
    assert rooms.docker.by_task("t1") is None
    assert rooms.sent[-1] == Ack(1)


async def test_the_pull_uses_the_commands_token(rooms):
    await rooms.runner.carry_out(dataclasses.replace(start(), pull_token="tok"))
    assert rooms.images.tokens == ["tok"]


async def test_a_command_id_is_carried_out_once(rooms):
    await rooms.runner.carry_out(start())
    restart = Command(2, Op.RESTART, "t1", "127.0.0.1:5000/x:1")
    await rooms.runner.carry_out(restart)
    await rooms.runner.carry_out(restart)  # resent after a lost acknowledgement
    assert rooms.docker.by_task("t1").runs == 2
    assert rooms.of_type(Ack) == [Ack(1), Ack(2), Ack(2)]


async def test_a_failed_remove_is_retried_and_acknowledged_only_once_the_container_is_gone(rooms, monkeypatch):
    monkeypatch.setattr("megamind.executor.runner.REMOVE_RETRY_DELAYS_S", (0.01,))
    await rooms.runner.carry_out(start())
    rooms.docker.remove_failures = 3
    removing = asyncio.create_task(rooms.runner.carry_out(Command(2, Op.REMOVE, "t1")))
    await asyncio.sleep(0.005)
    assert Ack(2) not in rooms.sent and rooms.docker.by_task("t1") is not None
    await removing
    assert rooms.docker.removes == 4
    assert rooms.docker.by_task("t1") is None
    assert rooms.sent[-1] == Ack(2)
    assert "t1" not in rooms.handles


async def test_one_tasks_trouble_stays_its_own(rooms, monkeypatch):
    async def broken(kwargs):
        raise RuntimeError("boom")

    await rooms.runner.carry_out(start(1, "t1"))
    monkeypatch.setattr(rooms.docker, "create", broken)
    await rooms.runner.carry_out(start(2, "t2"))
    assert StateReport("t2", TaskState.ERROR, "agent failed to start: boom") in rooms.sent
    assert rooms.sent[-1] == Ack(2)
    assert rooms.docker.by_task("t1").status == "running"


async def test_a_stop_reports_how_the_container_ended_after_its_last_lines(rooms):
    await rooms.runner.carry_out(start())
    rooms.logs.print("t1", "last words")
    await rooms.runner.carry_out(Command(2, Op.STOP, "t1"))
    end = StateReport("t1", TaskState.ERROR, "exited with code 137", 137)
    assert end in rooms.sent
    batches = [m for m in rooms.sent[: rooms.sent.index(end)] if m.type == "logs"]
    assert [e.text for b in batches for e in b.entries] == ["last words"]
