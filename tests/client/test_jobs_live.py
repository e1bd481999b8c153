"""The job model end to end through the clients: the real application (in a thread) places,
queues and cancels tasks on fake agents (tests/client/live.py)."""

import asyncio

import pytest

from megamind.client import (
    AsyncClient,
    Client,
    PortRequest,
    Requirements,
    TaskLimits,
    TaskQueued,
    TaskState,
    Unsatisfiable,
)
from megamind.jobspec import DEFAULT_PRIORITY

from .live import HARDWARE, eventually

IMAGE = "megamind.network/helloworld:latest"


async def test_a_task_placed_by_its_requirements_gets_its_job_fields(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        taskid = await api.add_task(
            IMAGE, requirements=Requirements(gpus=2, gpu_model="1060", ram=16000), command=["python", "x.py"],
            env={"EPOCHS": "3"}, workdir="/work", ports=[8888, (22, 2222)], limits=TaskLimits(memory=4096),
            priority=70,
        )
        command = await asyncio.to_thread(agent.command)
        assert command.taskid == taskid
        assert command.spec.command == ("python", "x.py") and command.spec.env == {"EPOCHS": "3"}
        assert command.spec.workdir == "/work"
        assert command.spec.ports == (PortRequest(8888), PortRequest(22, 2222))
        assert command.spec.limits == TaskLimits(memory=4096)
        task = await api.task(taskid)
    assert task.hwid == agent.hwid and not task.queued
    assert task.requirements == Requirements(gpus=2, gpu_model="1060", ram=16000)
    assert (task.command, task.env, task.workdir, task.priority) == (("python", "x.py"), {"EPOCHS": "3"}, "/work", 70)
    assert task.limits == TaskLimits(memory=4096)
    assert task.cancelled is False and task.placed_at is not None


async def test_the_original_addtask_still_gets_the_defaults(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        taskid = await api.add_task(IMAGE, agent.hwid)
        task = await api.task(taskid)
    assert (task.hwid, task.priority, task.command, task.workdir, task.env) == (
        agent.hwid, DEFAULT_PRIORITY, None, None, {})


async def test_requirements_no_executor_could_meet_are_refused(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        with pytest.raises(Unsatisfiable) as caught:
            await api.add_task(IMAGE, requirements={"gpus": 8})
    assert (caught.value.code, caught.value.status) == (20, 422)
    assert "gpus" in caught.value.message


def test_a_task_waits_in_the_queue_and_can_be_cancelled(live, key, agent):
    with Client(live.url, key) as api:
        first = api.add_task(IMAGE, requirements=Requirements(gpus=1))
        agent.start(first)
        waiting = api.add_task(IMAGE, requirements=Requirements(gpus=1), priority=90, queue_timeout=600)
        task = api.task(waiting)
        assert (task.state, task.queued, task.hwid, task.queue_position) == (TaskState.SETUP, True, None, 1)
        assert task.pending_reason and "busy" in task.pending_reason
        [queued] = api.queue()
        assert (queued.taskid, queued.priority, queued.queue_position) == (waiting, 90, 1)
        assert queued.queue_deadline == pytest.approx(queued.created_at + 600, abs=2)
        with pytest.raises(TaskQueued):
            api.restart_task(waiting)

        api.cancel(waiting)
        task = api.task(waiting)
        assert (task.state, task.cancelled, task.queued) == (TaskState.STOPPED, True, False)
        assert api.queue() == []
        api.cancel(waiting)  # an ended task: nothing changes, and it is ok


def test_a_queued_task_is_placed_once_an_executor_frees_up(live, key, agent):
    with Client(live.url, key) as api:
        first = api.add_task(IMAGE, requirements={"gpus": 1})
        agent.start(first)
        waiting = api.add_task(IMAGE, requirements={"gpus": 1})
        assert api.task(waiting).queued
        api.cancel(first)
        command = agent.command()  # the first's stop or removal, then the waiting one's start
        while command.taskid != waiting:
            agent.ack(command.id)
            command = agent.command()
        assert eventually(lambda: api.task(waiting).hwid) == agent.hwid
        assert api.task(first).cancelled is True


def test_hardware_lists_every_figure_and_filters(live, key, new_agent):
    cheap = new_agent(cost=0.2)
    dear = new_agent(dict(HARDWARE, gpus=["A100"], cpu_count=32, gpu_memory_mb=[40960]), cost=3.0)
    with Client(live.url, key) as api:
        page = api.hardware(status="any")
        assert [e.hwid for e in page] == [cheap.hwid, dear.hwid] and page.total == 2
        a100 = page.executors[1]
        assert (a100.cpu_count, a100.gpu_memory_mb, a100.status, a100.slots) == (32, [40960], "free", 1)
        assert [e.hwid for e in api.hardware(gpu_model="a100")] == [dear.hwid]
        assert [e.hwid for e in api.hardware(min_vram_mb=10000, status="free")] == [dear.hwid]
        assert [e.hwid for e in api.hardware(Requirements(max_cost=1.0))] == [cheap.hwid]
        assert [e.hwid for e in api.hardware(sort="rating", status="any", limit=1)] != []
        one = api.hardware(status="any", limit=1, offset=1)
        assert ([e.hwid for e in one], one.total) == ([dear.hwid], 2)
        taskid = api.add_task(IMAGE, cheap.hwid)
        cheap.start(taskid)
        assert eventually(lambda: [e.hwid for e in api.hardware(status="busy")]) == [cheap.hwid]
