"""The task's spec on the real engine: containers made as the agent makes them
(``create_kwargs`` through ``DockerRuntime``), proved by the engine's inspect and by
how they end.

The image is a static busybox FROM scratch (no internet).  Containers run on network
"none" unless they publish a port, then on 127.0.0.1 only; each carries the label
``megamind.test=<this run>`` and is removed by it.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import docker
import pytest
from docker.errors import APIError

from megamind.executor.deadline import RuntimeLimit
from megamind.executor.facade import AsyncDocker
from megamind.executor.gpu import Gpu
from megamind.executor.handle import TaskHandle
from megamind.executor.outcome import start_failure, task_outcome
from megamind.executor.runtime import ContainerInfo, DockerRuntime
from megamind.executor.spec import Limits, create_kwargs
from megamind.jobspec import PortRequest, RunSpec, TaskLimits
from megamind.states import TaskState
from megamind.taskenv import TASK_ENV

from .conftest import TEST_LABEL, read_from

MiB = 1024 * 1024
NO_NETWORK = Limits(network="none")


@pytest.fixture
def make(runtime, busybox_image, run_label):
    """Create a task's container as the agent does; removed after the test."""
    made = []

    def create(spec: RunSpec, limits: Limits = NO_NETWORK, gpus: list[Gpu] | None = None) -> str:
        taskid = f"{run_label}-{uuid.uuid4().hex[:8]}"
        kwargs = create_kwargs(taskid=taskid, hwid=f"hw-{run_label}", image=busybox_image, public_image="megamind.network/t",
                               params="", limits=limits, gpus=gpus or [], extra_labels={TEST_LABEL: run_label},
                               spec=spec, publish_address="127.0.0.1")
        container_id = runtime.create(kwargs).id
        made.append(container_id)
        return container_id

    yield create
    for container_id in made:
        runtime.remove(container_id)


def run_to_end(engine, runtime: DockerRuntime, container_id: str, timeout: float = 20) -> ContainerInfo:
    runtime.start(container_id)
    engine.api.wait(container_id, timeout=timeout)
    return runtime.inspect(container_id)


def sh(script: str) -> tuple[str, ...]:
    return ("/bin/sh", "-c", script)


def test_command_env_and_workdir_are_what_the_process_sees(engine, runtime, make):
    spec = RunSpec(command=sh('echo "$EPOCHS|$(pwd)|$' + TASK_ENV + '"'), env={"EPOCHS": "3"}, workdir="/work/dir")
    container_id = make(spec)
    info = run_to_end(engine, runtime, container_id)
    taskid = info.taskid
    assert engine.api.logs(container_id).decode().strip() == f"3|/work/dir|{taskid}"
    assert task_outcome(info) == (TaskState.STOPPED, "")


def test_a_memory_limit_ends_in_an_oom_kill_named_with_it(engine, runtime, make):
    container_id = make(RunSpec(command=sh("x=a; while :; do x=$x$x; done"), limits=TaskLimits(memory=8)),
                        Limits(network="none", memory_mb=64))
    host_config = engine.api.inspect_container(container_id)["HostConfig"]
    assert host_config["Memory"] == host_config["MemorySwap"] == 8 * MiB  # the task's, smaller than the owner's
    info = run_to_end(engine, runtime, container_id)
    assert info.oom_killed and info.exit_code == 137
    assert task_outcome(info) == (TaskState.ERROR, "out of memory (limit 8 MB)")


def test_a_cpu_time_limit_ends_in_sigxcpu_named_with_it(engine, runtime, make):
    container_id = make(RunSpec(command=sh("while :; do :; done"), limits=TaskLimits(cputime=1)))
    ulimits = engine.api.inspect_container(container_id)["HostConfig"]["Ulimits"]
    assert ulimits == [{"Name": "cpu", "Soft": 1, "Hard": 2}]
    info = run_to_end(engine, runtime, container_id)
    assert info.exit_code == 152
    assert task_outcome(info) == (TaskState.ERROR, "cpu time limit of 1 s reached")


def test_the_smaller_cpu_share_is_set(engine, runtime, make):
    container_id = make(RunSpec(command=("true",), limits=TaskLimits(cpus=0.5)), Limits(network="none", cpus=1.5))
    assert engine.api.inspect_container(container_id)["HostConfig"]["NanoCpus"] == 500_000_000
    container_id = make(RunSpec(command=("true",), limits=TaskLimits(cpus=4)), Limits(network="none", cpus=1.5))
    assert engine.api.inspect_container(container_id)["HostConfig"]["NanoCpus"] == 1_500_000_000




def test_a_port_is_published_on_the_publish_address_and_reachable_there(engine, runtime, make):
    spec = RunSpec(command=sh("while :; do echo hello | nc -l -p 8080; done"), ports=(PortRequest(8080),))
    container_id = make(spec, Limits(network="bridge"))
    runtime.start(container_id)
    info = runtime.inspect(container_id)
    [mapping] = info.ports
    assert mapping.container == 8080 and mapping.host > 0
    bindings = engine.api.inspect_container(container_id)["NetworkSettings"]["Ports"]["8080/tcp"]
    assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}  # not every address of this host
    assert read_from(mapping.host) == b"hello\n"


def test_a_host_port_in_use_fails_the_start_plainly(engine, runtime, make):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        spec = RunSpec(command=("sleep", "30"), ports=(PortRequest(8080, port),))
        container_id = make(spec, Limits(network="bridge"))
        with pytest.raises(APIError) as refused:
            runtime.start(container_id)
    assert start_failure(refused.value, spec, has_gpus=False) == f"port {port} is already in use on the executor"


def test_gpus_on_an_engine_without_the_nvidia_runtime_fail_the_start_plainly(engine, runtime, make):
    gpus = [Gpu(0, "GPU-5c8d2e1a-7f3b-4c9e-a1d4-0b6e9f2c3a71", "NVIDIA GeForce GTX 1060 6GB", 6144, 1911)]
    container_id = make(RunSpec(command=("true",)), gpus=gpus)
    with pytest.raises(APIError) as refused:
        runtime.start(container_id)
    message = start_failure(refused.value, RunSpec(), has_gpus=True)
    assert message == ('this executor has GPUs but the engine has no NVIDIA container runtime (could not select '
                       'device driver "nvidia" with capabilities: [[gpu]]); the owner must install '
                       'nvidia-container-toolkit')


async def test_the_runtime_limit_stops_the_container_and_its_end_names_it(make):
    container_id = make(RunSpec(command=("sleep", "30"), limits=TaskLimits(runtime=1)))
    facade = AsyncDocker(DockerRuntime(docker.from_env(version="auto", timeout=60)), 2)
    handle = TaskHandle("t", container_id)
    looked_at = asyncio.Event()
    jobs = []

    async def refresh(_: TaskHandle) -> None:
        looked_at.set()

    limit = RuntimeLimit(facade, {"t": handle}, 1, refresh, lambda coro: jobs.append(asyncio.ensure_future(coro)))
    try:
        await facade.start(container_id)
        limit.arm(handle, await facade.inspect(container_id))
        started = time.monotonic()
        await asyncio.wait_for(looked_at.wait(), 10)
        assert 0.9 < time.monotonic() - started < 5
        info = await facade.inspect(container_id)
        assert info.status == "exited"
        assert task_outcome(info) == (TaskState.ERROR, "runtime limit of 1 s reached")
        await asyncio.gather(*jobs)
    finally:
        handle.cancel_deadline()
        facade.close()
