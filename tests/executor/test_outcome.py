"""How a container's end, or the engine's refusal to start it, reads to the task's customer."""

import pytest
from docker.errors import APIError

from megamind.executor.outcome import (
    engine_time,
    run_seconds,
    runtime_deadline,
    start_failure,
    task_outcome,
)
from megamind.executor.runtime import ContainerInfo, published_ports
from megamind.executor.spec import LABEL_CPUTIME, LABEL_MEMORY, LABEL_RUNTIME
from megamind.jobspec import PortMapping, PortRequest, RunSpec
from megamind.states import TaskState

from .fakes import engine_stamp

STARTED = "2024-03-05T07:08:09.250000000Z"
STARTED_S = 1709622489.25


def exited(code, *, lasted=5.0, oom=False, **labels):
    return ContainerInfo("t1", "c1", "exited", code, engine_stamp(STARTED_S + lasted), STARTED, oom,
                         {k: str(v) for k, v in labels.items()})


LIMITS = {LABEL_MEMORY: 4096, LABEL_CPUTIME: 3600, LABEL_RUNTIME: 7200}


def test_engine_times():
    assert engine_time(STARTED) == pytest.approx(STARTED_S)
    assert engine_time("0001-01-01T00:00:00Z") is None  # the engine's "never"
    assert engine_time("") is None
    assert run_seconds(exited(0, lasted=12.5)) == pytest.approx(12.5)
    assert run_seconds(ContainerInfo("t1", "c1", "created", 0, "0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z")) is None


@pytest.mark.parametrize(("info", "outcome"), [
    (exited(0, **LIMITS), (TaskState.STOPPED, "")),
    (exited(3, **LIMITS), (TaskState.ERROR, "exited with code 3")),
    (exited(137, oom=True, **LIMITS), (TaskState.ERROR, "out of memory (limit 4096 MB)")),
    (exited(137, oom=True), (TaskState.ERROR, "out of memory")),  # the host's OOM, no limit of ours
    (exited(0, oom=True, **LIMITS), (TaskState.STOPPED, "")),  # a child was killed; the task ended well
    (exited(152, **LIMITS), (TaskState.ERROR, "cpu time limit of 3600 s reached")),
    (exited(152), (TaskState.ERROR, "exited with code 152")),  # no CPU time limit: its own exit code
    (exited(143, lasted=7200.06, **LIMITS), (TaskState.ERROR, "runtime limit of 7200 s reached")),
    (exited(0, lasted=7201, **LIMITS), (TaskState.ERROR, "runtime limit of 7200 s reached")),  # ended well on SIGTERM
    (exited(143, lasted=7199.9, **LIMITS), (TaskState.ERROR, "exited with code 143")),  # stopped by someone else
    (exited(137, lasted=99999), (TaskState.ERROR, "exited with code 137")),
    (exited(137, lasted=7300, oom=True, **LIMITS), (TaskState.ERROR, "out of memory (limit 4096 MB)")),
])
def test_a_limit_explains_an_exit_that_bears_its_mark(info, outcome):
    assert task_outcome(info) == outcome


def test_states_other_than_exited_are_as_before():
    running = ContainerInfo("t1", "c1", "running", 0, "", STARTED, False, {LABEL_RUNTIME: "1"})
    assert task_outcome(running) == (TaskState.RUNNING, "")
    assert task_outcome(ContainerInfo("t1", "c1", "created", 128)) == (TaskState.ERROR, "container left created")


def test_the_runtime_deadline_counts_from_the_engines_start_of_this_run():
    running = ContainerInfo("t1", "c1", "running", 0, "", STARTED, False, {LABEL_RUNTIME: "60"})
    assert runtime_deadline(running) == pytest.approx(STARTED_S + 60)
    assert runtime_deadline(ContainerInfo("t1", "c1", "running", 0, "", STARTED)) is None
    assert runtime_deadline(ContainerInfo("t1", "c1", "created", 0, "", "0001-01-01T00:00:00Z", False,
                                          {LABEL_RUNTIME: "60"})) is None


# --- refusals of a start ----------------------------------------------------------------

GPU_REFUSAL = APIError("500 Server Error",
                       explanation='could not select device driver "nvidia" with capabilities: [[gpu]]')
PORT_ALLOCATED = APIError("500 Server Error", explanation=(
    "driver failed programming external connectivity on endpoint megamind-t1 (5014aabf): "
    "Bind for 127.0.0.1:45678 failed: port is already allocated"))
ADDRESS_IN_USE = APIError("500 Server Error", explanation=(
    "driver failed programming external connectivity on endpoint megamind-t1 (080426d5): "
    "Error starting userland proxy: listen tcp4 0.0.0.0:2222: bind: address already in use"))
PORTS = RunSpec(ports=(PortRequest(22, 2222), PortRequest(8888)))


def test_an_engine_without_the_nvidia_runtime_is_named_for_what_the_owner_must_do():
    assert start_failure(GPU_REFUSAL, RunSpec(), has_gpus=True) == (
        'this executor has GPUs but the engine has no NVIDIA container runtime (could not select device '
        'driver "nvidia" with capabilities: [[gpu]]); the owner must install nvidia-container-toolkit')
    assert start_failure(GPU_REFUSAL, RunSpec(), has_gpus=False) is None


def test_a_host_port_in_use_is_named():
    assert start_failure(PORT_ALLOCATED, PORTS, has_gpus=False) == "port 45678 is already in use on the executor"
    assert start_failure(ADDRESS_IN_USE, PORTS, has_gpus=False) == "port 2222 is already in use on the executor"
    unnamed = APIError("500", explanation="port is already allocated")
    assert start_failure(unnamed, RunSpec(ports=(PortRequest(22, 2222),)), False) == (
        "port 2222 is already in use on the executor")
    assert start_failure(unnamed, RunSpec(ports=(PortRequest(22, 2222), PortRequest(80, 8080))), False) == (
        "a port this task asks for is already in use on the executor")


def test_other_refusals_are_left_to_the_caller():
    assert start_failure(APIError("500", explanation="no such image"), PORTS, True) is None
    assert start_failure(PORT_ALLOCATED, RunSpec(), False) is None  # no ports asked: not ours to explain


# --- published ports as the engine lists them -------------------------------------------


def test_published_ports_from_the_engines_inspect():
    engine_ports = {
        "8888/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}, {"HostIp": "::", "HostPort": "32768"}],
        "22/tcp": [{"HostIp": "127.0.0.1", "HostPort": "2222"}],
        "9000/tcp": None,  # exposed by the image, not published
        "53/udp": [{"HostIp": "0.0.0.0", "HostPort": "5353"}],
    }
    assert published_ports(engine_ports) == (PortMapping(22, 2222), PortMapping(8888, 32768))
    assert published_ports(None) == published_ports({}) == ()
