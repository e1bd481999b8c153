"""What a container's engine status means: in an agent's inventory, and for the task."""

from __future__ import annotations

from megamind.protocol import ContainerStatus
from megamind.states import TaskState

_ENGINE_RUNNING = frozenset({"running", "paused", "restarting"})
_ENGINE_EXITED = frozenset({"exited", "dead"})


def container_status(engine_status: str) -> ContainerStatus:
    """The engine's word for a container (running, exited, dead, created, ...) as ours."""
    if engine_status in _ENGINE_RUNNING:
        return ContainerStatus.RUNNING
    if engine_status in _ENGINE_EXITED:
        return ContainerStatus.EXITED
    return ContainerStatus.CREATED


def task_state_of(status: ContainerStatus, exit_code: int | None) -> tuple[TaskState, str]:
    """The one mapping from a container's status to the task's state and error message."""
    if status is ContainerStatus.RUNNING:
        return TaskState.RUNNING, ""
    if status is ContainerStatus.EXITED:
        if not exit_code:
            return TaskState.STOPPED, ""
        return TaskState.ERROR, f"exited with code {exit_code}"
    if status is ContainerStatus.BUSY:
        raise ValueError("a busy container has no state yet")
    return TaskState.ERROR, f"container left {status.value}"
