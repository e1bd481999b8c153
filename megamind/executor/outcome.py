"""Why a task ended, or would not start, in words a person can act on.

The one mapping from what the engine says of a container (its exit code, its OOM
flag, its start and finish times, and the limits on its labels) to the task's state
and error message; and from the engine's refusals of a start to plain messages.
Pure functions: the watcher and the runner hand them what the engine said.
"""

from __future__ import annotations

import re

from docker.errors import APIError

from megamind.containerstates import container_status, task_state_of
from megamind.executor.follow import parse_timestamp_ns
from megamind.executor.runtime import ContainerInfo
from megamind.executor.spec import LABEL_CPUTIME, LABEL_MEMORY, LABEL_RUNTIME
from megamind.jobspec import RunSpec, cputime_limit_reached, out_of_memory, runtime_limit_reached
from megamind.protocol import ContainerStatus
from megamind.states import TaskState

# 128 + SIGXCPU: the kernel's signal at RLIMIT_CPU, as the container's init reports it.
CPUTIME_EXIT_CODE = 152


def engine_time(stamp: str) -> float | None:
    """The engine's RFC 3339 time as Unix seconds; None for its "never" (year 1) or nothing."""
    try:
        ns = parse_timestamp_ns(stamp)
    except ValueError:
        return None
    return ns / 1e9 if ns > 0 else None


def label_int(info: ContainerInfo, label: str) -> int | None:
    text = info.labels.get(label, "")
    return int(text) if text.isdigit() and int(text) > 0 else None


def run_seconds(info: ContainerInfo) -> float | None:
    """How long the container's last run lasted, by the engine's clock; None if unknown."""
    started, finished = engine_time(info.started_at), engine_time(info.finished_at)
    if started is None or finished is None or finished < started:
        return None
    return finished - started


def runtime_deadline(info: ContainerInfo) -> float | None:
    """When the running container's runtime limit is reached (Unix seconds), if it has one.

    Counted from the engine's start of this run: it holds across agent restarts and
    while the API is away, and starts again with each restart of the container.
    """
    runtime, started = label_int(info, LABEL_RUNTIME), engine_time(info.started_at)
    if runtime is None or started is None:
        return None
    return started + runtime


def task_outcome(info: ContainerInfo) -> tuple[TaskState, str]:
    """The task's state and error message from its container as the engine describes it.

    A limit explains an exit only when the exit bears its mark: the OOM flag with a
    failure (a task that survived the killing of a child and exited 0 succeeded), the
    exit of SIGXCPU under a CPU time limit, a run that lasted the runtime limit (the
    agent stopped it then, or was away when it should have; whatever the exit code,
    since a task may end well on the stop's SIGTERM).
    """
    status = container_status(info.status)
    state, error_msg = task_state_of(status, info.exit_code)
    if status is not ContainerStatus.EXITED:
        return state, error_msg
    if info.oom_killed and info.exit_code:
        return TaskState.ERROR, out_of_memory(label_int(info, LABEL_MEMORY))
    cputime = label_int(info, LABEL_CPUTIME)
    if cputime is not None and info.exit_code == CPUTIME_EXIT_CODE:
        return TaskState.ERROR, cputime_limit_reached(cputime)
    runtime, lasted = label_int(info, LABEL_RUNTIME), run_seconds(info)
    if runtime is not None and lasted is not None and lasted >= runtime:
        return TaskState.ERROR, runtime_limit_reached(runtime)
    return state, error_msg


# The engine answers both refusals below with a bare 500: its words are all that tells
# them apart, so they are read here, once, only to add what the owner or customer can do.
_NO_GPU_RUNTIME = "could not select device driver"
_PORT_TAKEN = ("port is already allocated", "address already in use")
_PORT_IN_TEXT = re.compile(r"(?:Bind for|listen tcp[46]?) \S*:(\d+)")


def engine_words(exc: Exception) -> str:
    if isinstance(exc, APIError):
        return exc.explanation or str(exc)
    return str(exc)


def start_failure(exc: Exception, spec: RunSpec, has_gpus: bool) -> str | None:
    """A plain message for a create or start the engine refused for a known reason, else None."""
    words = engine_words(exc)
    if has_gpus and _NO_GPU_RUNTIME in words:
        return (f"this executor has GPUs but the engine has no NVIDIA container runtime ({words}); "
                "the owner must install nvidia-container-toolkit")
    if spec.ports and any(marker in words for marker in _PORT_TAKEN):
        found = _PORT_IN_TEXT.search(words)
        asked = [p.host for p in spec.ports if p.host]
        if found is not None:
            port = found.group(1)
        elif len(asked) == 1:
            port = str(asked[0])
        else:
            return "a port this task asks for is already in use on the executor"
        return f"port {port} is already in use on the executor"
    return None
