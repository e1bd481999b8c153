"""Task states as the contract numbers them, and what a customer is shown."""

from __future__ import annotations

from enum import IntEnum


class TaskState(IntEnum):
    UNKNOWN = 1
    SETUP = 2
    RUNNING = 3
    STOPPED = 4
    ERROR = 5

    @property
    def holds_executor(self) -> bool:
        """A task in setup or running occupies its executor."""
        return self in (TaskState.SETUP, TaskState.RUNNING)

    @property
    def finished(self) -> bool:
        return self in (TaskState.STOPPED, TaskState.ERROR)


def visible_state(stored: TaskState, executor_online: bool) -> TaskState:
    """The state a customer sees.

    The store keeps the last state the agent reported.  While the agent is away,
    a task that was live can no longer be vouched for, so it shows as unknown;
    a finished task stays finished, since nothing can change it without the agent.
    """
    if not executor_online and stored.holds_executor:
        return TaskState.UNKNOWN
    return stored


def state_of_exit(exit_code: int) -> tuple[TaskState, str]:
    if exit_code == 0:
        return TaskState.STOPPED, ""
    return TaskState.ERROR, f"exited with code {exit_code}"
