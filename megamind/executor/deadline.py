"""The runtime limit: the agent stops a task's container when its run has lasted it.

One timer per running task that has the limit (``TaskHandle.deadline``), armed each
time the task is seen running, from the engine's start time of the run and the limit
on the container's label: so it holds while the API is away, is set again by an
agent that restarted, and counts from zero after each restart of the container.
The stop is an ordinary stop; the task's end then reads as the runtime limit because
its run lasted it (``outcome.task_outcome``), whoever reports it, whenever.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from megamind.containerstates import container_status
from megamind.executor.facade import AsyncDocker
from megamind.executor.handle import TaskHandle
from megamind.executor.outcome import runtime_deadline
from megamind.executor.runtime import ENGINE_ERRORS, ContainerInfo
from megamind.executor.spec import container_name
from megamind.protocol import ContainerStatus

log = logging.getLogger(__name__)

# The timer fires this much after the deadline, so that the run, as the engine's own
# times measure it, has surely lasted the limit when it is stopped.
MARGIN_S = 0.05
# A stop the engine did not carry out is tried again after this long.
RETRY_S = 5.0


class RuntimeLimit:
    def __init__(
        self,
        docker: AsyncDocker,
        handles: dict[str, TaskHandle],
        stop_timeout_s: int,
        refresh: Callable[[TaskHandle], Awaitable[None]],
        spawn: Callable[[Awaitable[None]], None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._docker = docker
        self._handles = handles
        self._stop_timeout_s = stop_timeout_s
        self._refresh = refresh
        self._spawn = spawn
        self._clock = clock  # the wall clock: the engine's start times are on it

    def arm(self, handle: TaskHandle, info: ContainerInfo) -> None:
        """Set the timer of the run ``info`` describes (a running container), or none."""
        handle.cancel_deadline()
        deadline = runtime_deadline(info)
        if deadline is None:
            return
        delay = max(0.0, deadline - self._clock()) + MARGIN_S
        handle.deadline = asyncio.get_running_loop().call_later(delay, self._reached, handle, info.started_at)

    def _reached(self, handle: TaskHandle, started_at: str) -> None:
        handle.deadline = None
        self._spawn(self._enforce(handle, started_at))

    async def _enforce(self, handle: TaskHandle, started_at: str) -> None:
        """Stop the run that started at ``started_at``, if it still runs, and report its end."""
        async with handle.lock:
            if handle.removed or self._handles.get(handle.taskid) is not handle:
                return
            try:
                info = await self._docker.inspect(handle.container_id or container_name(handle.taskid))
                if (info is None or container_status(info.status) is not ContainerStatus.RUNNING
                        or info.started_at != started_at):
                    return  # it ended or started again meanwhile: that is looked at on its own
                log.info("runtime limit of %s reached: stopping it", handle.taskid)
                # Busy, as under a command: the stop's death event is not looked at twice.
                handle.busy, handle.missed_event = True, False
                try:
                    await self._docker.stop(info.id, self._stop_timeout_s)
                finally:
                    handle.busy, handle.missed_event = False, False
                await self._refresh(handle)
            except ENGINE_ERRORS as exc:
                log.warning("runtime limit of %s: engine failed (%s); trying again in %gs",
                            handle.taskid, exc, RETRY_S)
                handle.deadline = asyncio.get_running_loop().call_later(RETRY_S, self._reached, handle, started_at)
