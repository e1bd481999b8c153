"""What an agent keeps per task, and how it tells the API about it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from megamind.jobspec import PortMapping
from megamind.protocol import Message, Phase, PhaseReport, StateReport
from megamind.states import TaskState


@dataclass(eq=False)
class TaskHandle:
    taskid: str
    container_id: str | None = None
    # Operations on one task run one after another; on different tasks, side by side.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    busy: bool = False  # a command is being carried out: it reports its own outcome
    removed: bool = False  # the container is gone for good
    last_state: TaskState | None = None
    last_error: str = ""
    # The link session in which the task's end (with its last lines) was reported;
    # an exited container is "busy" in the inventory of any later session until then.
    concluded_in: int = -1
    # The engine said something (a death) while an operation held the task.
    missed_event: bool = False
    # When the current run's runtime limit is reached (``deadline.RuntimeLimit``), if it has one.
    deadline: asyncio.TimerHandle | None = None

    def cancel_deadline(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None


class Reporter:
    """States and phases of tasks, as messages to the API."""

    def __init__(self, send: Callable[[Message], Awaitable[bool]], handles: dict[str, TaskHandle]) -> None:
        self._send = send
        self._handles = handles

    async def state(self, taskid: str, state: TaskState, error_msg: str = "", exit_code: int | None = None,
                    ports: tuple[PortMapping, ...] = (), *, started_at: float | None = None,
                    finished_at: float | None = None) -> bool:
        """``started_at``/``finished_at``: the engine's times of the run, which it is billed by."""
        handle = self._handles.get(taskid)
        if handle is not None:
            handle.last_state, handle.last_error = state, error_msg
        return await self._send(StateReport(taskid, state, error_msg, exit_code, ports,
                                            started_at, finished_at, time.time()))

    async def phase(self, taskid: str, phase: Phase) -> None:
        await self._send(PhaseReport(taskid, phase))
