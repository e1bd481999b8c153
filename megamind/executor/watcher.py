"""Watching the engine: what its events and listings say becomes the tasks' states.

A container seen running is followed and reported running.  A container seen stopped
is concluded: its follower reads to the end, its results are collected, its last
lines are shipped, and only then is its end reported, so that whoever sees a task
finished finds its whole output there.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from megamind.containerstates import container_status
from megamind.executor import transfer
from megamind.executor.deadline import RuntimeLimit
from megamind.executor.facade import AsyncDocker
from megamind.executor.handle import Reporter, TaskHandle
from megamind.executor.identity import Identity
from megamind.executor.outcome import engine_time, task_outcome
from megamind.executor.runtime import ENGINE_ERRORS, ContainerInfo
from megamind.executor.shipper import Shipper
from megamind.executor.spec import LABEL_TASK, container_name
from megamind.protocol import ContainerReport, ContainerStatus, Inventory, Message
from megamind.states import TaskState

log = logging.getLogger(__name__)

RESULTS_TIMEOUT_S = 600.0


class Watcher:
    def __init__(
        self,
        docker: AsyncDocker,
        http: aiohttp.ClientSession,
        identity: Identity,
        scratch: Path,
        handles: dict[str, TaskHandle],
        reporter: Reporter,
        shipper: Shipper,
        send: Callable[[Message], Awaitable[bool]],
        session: Callable[[], int],
        spawn: Callable[[Awaitable[None]], None],
        stop_timeout_s: int,
    ) -> None:
        self.docker = docker
        self.http = http
        self.identity = identity
        self.scratch = scratch
        self.handles = handles
        self.reporter = reporter
        self.shipper = shipper
        self._send = send
        self._session = session
        self._spawn = spawn
        self.results_limit = 0  # set by each welcome
        self._results_sent: set[tuple[str, str]] = set()  # (container id, finished at) uploaded
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.runtime_limit = RuntimeLimit(docker, handles, stop_timeout_s, self.refresh, spawn)

    # --- one task ------------------------------------------------------------------------

    async def refresh(self, handle: TaskHandle) -> None:
        """Look at the container and tell the API what is true now (the caller holds the lock)."""
        info = await self.docker.inspect(handle.container_id or container_name(handle.taskid))
        if info is None:
            handle.cancel_deadline()
            # A task in error keeps its reason: the container a failed start made and
            # removed (a refused pull) is gone by design, and says nothing new.
            if not handle.removed and handle.last_state is not TaskState.ERROR:
                await self.reporter.state(handle.taskid, TaskState.ERROR, "container vanished")
            self.shipper.forget(handle.taskid)
            self.handles.pop(handle.taskid, None)
            return
        handle.container_id = info.id
        status = container_status(info.status)
        if status is ContainerStatus.RUNNING:
            self.shipper.follow(handle.taskid, info.id)
            self.runtime_limit.arm(handle, info)
            await self.reporter.state(handle.taskid, TaskState.RUNNING, ports=info.ports,
                                      started_at=engine_time(info.started_at))
            return
        handle.cancel_deadline()
        await self._conclude(handle, info, status)

    async def _conclude(self, handle: TaskHandle, info: ContainerInfo, status: ContainerStatus) -> None:
        state, error_msg = task_outcome(info)
        while True:
            session = self._session()
            if not self.shipper.following(handle.taskid):
                # It may have stopped before anyone followed it (a death during its start):
                # what it printed is read now, from where the copy ends.
                self.shipper.follow(handle.taskid, info.id)
            await self.shipper.drained(handle.taskid)
            if status is ContainerStatus.EXITED:
                await self._ship_results(handle.taskid, info)
            # A new session began meanwhile: its output is read again from the API's
            # cursor, and the end must wait for that reading, not the one before it.
            if self._session() != session:
                continue
            if not await self.shipper.flush(handle.taskid):
                return
            if self._session() != session:
                continue
            if await self.reporter.state(handle.taskid, state, error_msg, info.exit_code,
                                         started_at=engine_time(info.started_at),
                                         finished_at=engine_time(info.finished_at)):
                handle.concluded_in = session
            return

    async def _ship_results(self, taskid: str, info: ContainerInfo) -> None:
        """What the task left under /megamind/output/, once per run of its container."""
        run = (info.id, info.finished_at)
        if run in self._results_sent or not self.results_limit:
            return
        workdir = Path(tempfile.mkdtemp(prefix=f"results-{taskid}-", dir=self.scratch))
        try:
            archive = workdir / "results.tar.gz"
            collected = await self.docker.results_archive(info.id, archive, self.results_limit)
            if collected is not None:
                await asyncio.wait_for(
                    transfer.upload_results(self.http, self.identity.api_url, self.identity.token, taskid,
                                            archive, collected.truncated),
                    RESULTS_TIMEOUT_S,
                )
            self._results_sent.add(run)
        except (transfer.TransferError, asyncio.TimeoutError, *ENGINE_ERRORS) as exc:
            log.warning("results of %s not shipped: %s", taskid, exc)
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def refresh_locked(self, handle: TaskHandle) -> None:
        async with handle.lock:
            if not handle.removed and self.handles.get(handle.taskid) is handle:
                await self.refresh(handle)

    # --- every task ----------------------------------------------------------------------

    async def adopt(self) -> None:
        """Containers of this executor that outlived the agent become its tasks again."""
        for info in await self.docker.containers(self.identity.hwid):
            if info.taskid and info.taskid not in self.handles:
                self.handles[info.taskid] = TaskHandle(info.taskid, info.id)
        log.info("re-adopted %d container(s)", len(self.handles))

    async def inventory(self) -> tuple[Inventory, list[TaskHandle]]:
        """Every container this executor has, as the API is to know it, and the tasks
        to look at after it is sent.

        A stopped container whose end was not reported in this session is busy: its
        last lines are still to be shipped, and its state follows them, once it is
        looked at.  So is a running one that nobody follows (the engine came back).
        """
        session = self._session()
        reports: dict[str, ContainerReport] = {}
        to_look_at: list[TaskHandle] = []
        for info in await self.docker.containers(self.identity.hwid):
            if not info.taskid:
                continue
            handle = self.handles.get(info.taskid)
            if handle is None:
                handle = self.handles[info.taskid] = TaskHandle(info.taskid, info.id)
            status = container_status(info.status)
            if not handle.busy:
                if status is ContainerStatus.RUNNING:
                    if not self.shipper.following(info.taskid):
                        to_look_at.append(handle)
                elif handle.concluded_in != session:
                    status = ContainerStatus.BUSY
                    to_look_at.append(handle)
            else:
                status = ContainerStatus.BUSY
            reports[info.taskid] = ContainerReport(info.taskid, status, info.exit_code, engine_time(info.started_at))
        for taskid, handle in self.handles.items():
            if handle.busy and taskid not in reports:
                reports[taskid] = ContainerReport(taskid, ContainerStatus.BUSY)
        return Inventory(tuple(reports.values()), time.time()), to_look_at

    async def tell_inventory(self) -> None:
        await self._tell(*await self.inventory())

    async def _tell(self, inventory: Inventory, to_look_at: list[TaskHandle]) -> None:
        """Send the inventory, then look at each task it could not vouch for."""
        await self._send(inventory)
        for handle in to_look_at:
            self._spawn(self.refresh_locked(handle))

    async def resync(self, operations_done: Callable[[], int]) -> None:
        before = operations_done()
        try:
            listed = await self.inventory()
        except ENGINE_ERRORS as exc:
            log.warning("engine not answering: %s", exc)
            return
        if operations_done() != before:
            # A command finished while the engine was being listed: the snapshot may show
            # the world before it and would undo its report. The next resync will do.
            return
        await self._tell(*listed)

    # --- engine events -------------------------------------------------------------------

    def feed_event(self, event: dict[str, Any] | None) -> None:
        """An engine event about this executor's containers (None: the engine is back, resync)."""
        self._events.put_nowait(event)

    async def consume_events(self, resync: Callable[[], Awaitable[None]]) -> None:
        while True:
            event = await self._events.get()
            try:
                if event is None:
                    await resync()
                    continue
                action = event.get("Action") or event.get("status") or ""
                taskid = (event.get("Actor", {}).get("Attributes") or {}).get(LABEL_TASK)
                if action not in ("start", "die", "destroy", "oom") or not taskid:
                    continue
                handle = self.handles.get(taskid)
                if handle is None:
                    continue
                if handle.busy:
                    # The operation reports its outcome; a death meanwhile is looked at after it.
                    handle.missed_event = handle.missed_event or action != "start"
                    continue
                if action == "start" and handle.last_state == TaskState.RUNNING:
                    continue  # our own start, reported already
                self._spawn(self.refresh_locked(handle))
            except Exception:
                log.exception("docker event %r not handled", event)
