"""The task's spec through the agent's rooms on a fake engine: ports reported with the
running state, refusals said plainly, limits that end a task named, the runtime limit enforced."""

import asyncio
import time

import aiohttp
from docker.errors import APIError

from megamind.config import AgentConfig
from megamind.executor.agent import Agent
from megamind.executor.gpu import Gpu
from megamind.executor.identity import Identity
from megamind.executor.spec import Limits
from megamind.jobspec import PortMapping, PortRequest, RunSpec, TaskLimits
from megamind.protocol import PROTOCOL_VERSION, Ack, Command, Hello, Op, StateReport
from megamind.states import TaskState

IMAGE = "127.0.0.1:5000/x:1"


def start(spec=RunSpec(), command_id=1, taskid="t1", op=Op.START):
    return Command(command_id, op, taskid, IMAGE, spec=spec)


def ends(rooms, taskid="t1"):
    return [m for m in rooms.of_type(StateReport) if m.taskid == taskid and m.state is not TaskState.RUNNING]


async def until(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "never happened"
        await asyncio.sleep(0.01)


def started_ago(rooms, seconds):
    """The fake engine's next start happens ``seconds`` in the past."""
    rooms.docker.clock = lambda: time.time() - seconds


# --- ports ------------------------------------------------------------------------------


async def test_running_is_reported_with_the_ports_as_the_engine_published_them(rooms):
    spec = RunSpec(ports=(PortRequest(8888), PortRequest(22, 2222)))
    await rooms.runner.carry_out(start(spec))
    assert rooms.docker.by_task("t1").kwargs["ports"] == {"8888/tcp": ("0.0.0.0", None), "22/tcp": ("0.0.0.0", 2222)}
    running = [m for m in rooms.of_type(StateReport) if m.state is TaskState.RUNNING]
    assert running == [StateReport("t1", TaskState.RUNNING, ports=(PortMapping(22, 2222), PortMapping(8888, 32768)))]
    assert rooms.sent[-1] == Ack(1)
    # A restart may bind another free port: what is reported is read again.
    rooms.sent.clear()
    await rooms.runner.carry_out(start(spec, command_id=2, op=Op.RESTART))
    assert rooms.of_type(StateReport) == [
        StateReport("t1", TaskState.RUNNING, ports=(PortMapping(22, 2222), PortMapping(8888, 32769)))]


async def test_ports_on_an_executor_with_network_none_end_the_task_at_once(rooms):
    rooms.runner.limits = Limits(network="none")
    await rooms.runner.carry_out(start(RunSpec(ports=(PortRequest(8888),))))
    assert rooms.of_type(StateReport) == [StateReport(
        "t1", TaskState.ERROR, "ports cannot be published: this executor runs tasks with --network none")]
    assert rooms.docker.by_task("t1") is None  # nothing pulled, nothing made
    assert rooms.sent[-1] == Ack(1)


async def test_a_host_port_in_use_is_the_tasks_plain_error(rooms):
    rooms.docker.start_error = APIError("500 Server Error", explanation=(
        "driver failed programming external connectivity on endpoint megamind-t1 (5014aabf): "
        "Bind for 0.0.0.0:2222 failed: port is already allocated"))
    await rooms.runner.carry_out(start(RunSpec(ports=(PortRequest(22, 2222),))))
    assert ends(rooms) == [StateReport("t1", TaskState.ERROR, "port 2222 is already in use on the executor")]


async def test_gpus_without_the_nvidia_runtime_are_the_owners_to_fix(rooms):
    rooms.runner.gpus = [Gpu(0, "GPU-5c8d2e1a", "NVIDIA GeForce GTX 1060 6GB", 6144, 1911)]
    rooms.docker.start_error = APIError(
        "500 Server Error", explanation='could not select device driver "nvidia" with capabilities: [[gpu]]')
    await rooms.runner.carry_out(start())
    assert rooms.docker.by_task("t1").kwargs["device_requests"][0]["DeviceIDs"] == ["GPU-5c8d2e1a"]
    [end] = ends(rooms)
    assert end.state is TaskState.ERROR
    assert end.error_msg.startswith("this executor has GPUs but the engine has no NVIDIA container runtime")
    assert end.error_msg.endswith("the owner must install nvidia-container-toolkit")


# --- limits the engine enforces -----------------------------------------------------------


async def test_an_oom_kill_is_named_with_the_memory_limit(rooms):
    rooms.runner.limits = Limits(memory_mb=1024)
    await rooms.runner.carry_out(start(RunSpec(limits=TaskLimits(memory=256))))
    rooms.docker.exit("t1", 137, oom_killed=True)
    await rooms.watcher.refresh_locked(rooms.handles["t1"])
    assert ends(rooms) == [StateReport("t1", TaskState.ERROR, "out of memory (limit 256 MB)", 137)]


async def test_sigxcpu_under_a_cpu_time_limit_is_named(rooms):
    await rooms.runner.carry_out(start(RunSpec(limits=TaskLimits(cputime=30))))
    rooms.docker.exit("t1", 152)
    await rooms.watcher.refresh_locked(rooms.handles["t1"])
    assert ends(rooms) == [StateReport("t1", TaskState.ERROR, "cpu time limit of 30 s reached", 152)]


# --- the runtime limit, enforced by the agent ------------------------------------------------


async def test_the_runtime_limit_stops_the_task_and_names_the_limit(rooms):
    started_ago(rooms, 0.9)  # a run of 1 s that has 0.1 s left
    await rooms.runner.carry_out(start(RunSpec(limits=TaskLimits(runtime=1))))
    rooms.docker.clock = time.time
    assert rooms.handles["t1"].deadline is not None
    assert rooms.docker.by_task("t1").status == "running"
    await until(lambda: ends(rooms))
    await rooms.settle()
    assert rooms.docker.stops == 1
    assert ends(rooms) == [StateReport("t1", TaskState.ERROR, "runtime limit of 1 s reached", 137)]
    assert rooms.handles["t1"].deadline is None


async def test_a_restart_starts_the_runtime_clock_again(rooms):
    started_ago(rooms, 0.7)
    await rooms.runner.carry_out(start(RunSpec(limits=TaskLimits(runtime=1))))
    rooms.docker.clock = time.time
    first = rooms.handles["t1"].deadline
    await rooms.runner.carry_out(start(RunSpec(limits=TaskLimits(runtime=1)), command_id=2, op=Op.RESTART))
    assert first.cancelled()
    await asyncio.sleep(0.5)  # past the first run's deadline: the second run's is 1 s from its start
    await rooms.settle()
    assert rooms.docker.stops == 0 and ends(rooms) == []
    await until(lambda: ends(rooms))
    assert ends(rooms) == [StateReport("t1", TaskState.ERROR, "runtime limit of 1 s reached", 137)]


async def test_an_adopted_task_past_its_runtime_is_stopped_at_once(rooms):
    await rooms.runner.carry_out(start(RunSpec(limits=TaskLimits(runtime=60))))
    # The agent restarts: its timers and followers are gone; the container ran on, past its limit.
    rooms.handles["t1"].cancel_deadline()
    rooms.handles.clear()
    rooms.shipper.forget("t1")
    rooms.docker.by_task("t1").started_at = "2024-03-05T07:08:09.000000000Z"
    rooms.session = 2
    await rooms.watcher.adopt()
    await rooms.watcher.tell_inventory()
    await until(lambda: ends(rooms))
    await rooms.settle()
    assert rooms.docker.stops == 1
    assert ends(rooms) == [StateReport("t1", TaskState.ERROR, "runtime limit of 60 s reached", 137)]


async def test_a_runtime_stop_not_reported_before_an_agent_restart_is_still_named(rooms):
    started_ago(rooms, 5)
    await rooms.runner.carry_out(start(RunSpec(limits=TaskLimits(runtime=2)), taskid="t1"))
    rooms.docker.clock = time.time
    rooms.link_up = False  # the API is away: the stop happens, its report does not arrive
    await until(lambda: rooms.docker.by_task("t1").status == "exited")
    await rooms.settle()
    rooms.handles.clear()  # a new agent, a new link
    rooms.link_up, rooms.session = True, 2
    await rooms.watcher.adopt()
    await rooms.watcher.tell_inventory()
    await rooms.settle()
    assert ends(rooms) == [StateReport("t1", TaskState.ERROR, "runtime limit of 2 s reached", 137)]


async def test_the_runtime_timer_goes_with_the_task(rooms):
    spec = RunSpec(limits=TaskLimits(runtime=60))
    await rooms.runner.carry_out(start(spec, taskid="t1"))
    await rooms.runner.carry_out(start(spec, command_id=2, taskid="t2"))
    removed, exited = rooms.handles["t1"], rooms.handles["t2"]
    timers = removed.deadline, exited.deadline
    await rooms.runner.carry_out(Command(3, Op.REMOVE, "t1"))
    rooms.docker.exit("t2", 0)
    await rooms.watcher.refresh_locked(exited)
    assert all(timer.cancelled() for timer in timers)
    assert removed.deadline is None and exited.deadline is None
    assert ends(rooms, "t2") == [StateReport("t2", TaskState.STOPPED, "", 0)]


async def test_a_task_without_limits_or_ports_is_reported_running_without_a_look(rooms):
    looks = []
    real_inspect = rooms.docker.inspect

    async def counting_inspect(container_id):
        looks.append(container_id)
        return await real_inspect(container_id)

    rooms.docker.inspect = counting_inspect
    await rooms.runner.carry_out(start(RunSpec(command=("true",), env={"A": "1"})))
    assert looks == []
    assert rooms.handles["t1"].deadline is None


# --- the hello -----------------------------------------------------------------------------


async def test_the_hello_carries_the_publish_address(rooms, tmp_path):
    config = AgentConfig(state_dir=tmp_path, publish_address="127.0.0.1", cost=0.5)
    async with aiohttp.ClientSession() as http:
        agent = Agent(config, rooms.docker, http, Identity("http://127.0.0.1:9", "hw", "token"), {"ram": 1},
                      [], rooms.images, rooms.logs)
        assert await agent._hello() == Hello(PROTOCOL_VERSION, {"ram": 1}, 0.5, "127.0.0.1")
