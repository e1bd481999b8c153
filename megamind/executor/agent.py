"""The executor agent: one connection to the API, the engine's containers, and the truth.

The agent owns nothing the engine does not already know: every container carries
labels naming its task and executor, so a restarted agent re-adopts what runs
instead of starting twins.  A command id once carried out is never carried out again
(a restart is recorded before it happens; a start or a remove, which are idempotent,
when done); operations on one task run one after another, operations on different
tasks run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from docker.errors import APIError

from megamind.config import AgentConfig
from megamind.executor.facade import AsyncDocker
from megamind.executor.gpu import Gpu
from megamind.executor.identity import AppliedCommands, Identity
from megamind.executor.images import ImageFetcher
from megamind.executor.logtail import TaskLogTail
from megamind.executor.runtime import ENGINE_ERRORS, ContainerInfo, Created, PullError
from megamind.executor.spec import LABEL_TASK, Limits, container_name, create_kwargs
from megamind.protocol import (
    AGENT_PATH,
    OP_REMOVE,
    OP_RESTART,
    OP_START,
    OP_STOP,
    PROTOCOL_VERSION,
    STATUS_BUSY,
    STATUS_EXITED,
    STATUS_RUNNING,
    TAIL_LINES,
    TOKEN_HEADER,
    ContainerReport,
)
from megamind.states import TaskState, state_of_exit

log = logging.getLogger(__name__)

RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0)
CONNECT_TIMEOUT_S = 10.0
# After a container stops, its last lines are still read for this long.
FINAL_LOG_WINDOW_S = 1.5
LOG_POLL_CONCURRENCY = 4
# The longest a quiet task goes unpolled: with the flush and the send, a line still
# reaches the API within a second of being printed.
QUIET_LOG_POLL_S = 0.6
_RUNNING_STATUSES = {"running", "paused", "restarting"}
_EXITED_STATUSES = {"exited", "dead"}


class Unregistered(Exception):
    """The API does not know this agent's token."""


@dataclass(eq=False)
class TaskHandle:
    taskid: str
    container_id: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    busy: bool = False
    removed: bool = False
    logs: TaskLogTail = field(default_factory=TaskLogTail)
    watch_logs_until: float = 0.0
    last_state: TaskState | None = None
    last_error: str = ""
    next_log_poll: float = 0.0
    log_poll_every: float = 0.0
    # The engine said something (a death) while an operation held the task.
    missed_event: bool = False

    def watch_logs(self, running: bool) -> None:
        self.watch_logs_until = math.inf if running else time.monotonic() + FINAL_LOG_WINDOW_S
        self.next_log_poll = 0.0  # look now: something just changed


def report_of(info: ContainerInfo) -> tuple[TaskState, str]:
    if info.status in _RUNNING_STATUSES:
        return TaskState.RUNNING, ""
    if info.status in _EXITED_STATUSES:
        return state_of_exit(info.exit_code or 0)
    return TaskState.ERROR, f"container left {info.status}"


def inventory_status(info: ContainerInfo) -> str:
    if info.status in _RUNNING_STATUSES:
        return STATUS_RUNNING
    if info.status in _EXITED_STATUSES:
        return STATUS_EXITED
    return info.status


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        docker: AsyncDocker,
        http: aiohttp.ClientSession,
        identity: Identity,
        hardware: dict[str, Any],
        gpus: list[Gpu],
        images: ImageFetcher | None = None,
    ) -> None:
        self.config = config
        self.docker = docker
        self.http = http
        self.images = images or ImageFetcher(docker, http)
        self.identity = identity
        self.hardware = hardware
        self.gpus = gpus
        self.limits = Limits.checked(
            config.network, config.allow_host_network,
            memory_mb=config.memory_mb, cpus=config.cpus, pids_limit=config.pids_limit,
        )
        self.applied = AppliedCommands(config.state_dir)
        self.handles: dict[str, TaskHandle] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._jobs: set[asyncio.Task] = set()
        self._operations_done = 0
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.connected = asyncio.Event()

    @property
    def hwid(self) -> str:
        return self.identity.hwid

    # --- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until cancelled; on cancellation the containers are left running."""
        await self._adopt()
        loops = [
            asyncio.create_task(self._poll_logs_forever(), name="poll-logs"),
            asyncio.create_task(self._consume_events(), name="docker-events"),
            asyncio.create_task(self._resync_forever(), name="resync"),
        ]
        try:
            await self._stay_connected()
        finally:
            for task in loops + list(self._jobs):
                task.cancel()
            for task in loops + list(self._jobs):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _stay_connected(self) -> None:
        attempt = 0
        url = self.identity.api_url.rstrip("/") + AGENT_PATH
        while True:
            try:
                # A link that accepts bytes but never answers must not hold the agent forever.
                ws = await asyncio.wait_for(
                    self.http.ws_connect(
                        url,
                        headers={TOKEN_HEADER: self.identity.token},
                        heartbeat=self.config.heartbeat_s,
                        max_msg_size=4 * 1024 * 1024,
                    ),
                    timeout=CONNECT_TIMEOUT_S,
                )
                async with ws:
                    attempt = 0
                    await self._session(ws)
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 401:
                    raise Unregistered("the API does not know this executor's token") from None
                log.warning("API refused the connection: %s", exc)
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                log.info("API unreachable (%s); retrying", exc.__class__.__name__)
            except ENGINE_ERRORS as exc:
                # No inventory without the engine: say nothing rather than something false.
                log.warning("engine not answering (%s); retrying", exc.__class__.__name__)
            finally:
                self._ws = None
                self.connected.clear()
            await asyncio.sleep(RECONNECT_DELAYS_S[min(attempt, len(RECONNECT_DELAYS_S) - 1)])
            attempt += 1

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        inventory = await self._inventory()
        await ws.send_json({
            "type": "hello",
            "protocol": PROTOCOL_VERSION,
            "hardware": self.hardware,
            "cost": self.config.cost,
            "inventory": inventory,
        })
        self._ws = ws
        for handle in self.handles.values():
            handle.logs.resend_all()
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = message.json()
            if data.get("type") == "welcome":
                await self._resend_failures()
                self.connected.set()
                log.info("connected to %s as %s", self.identity.api_url, self.hwid)
            elif data.get("type") == "command":
                self._spawn(self._on_command(data))

    async def _resend_failures(self) -> None:
        """A failure with no container left behind is in no inventory: say it again,
        in case it was reported while the link was down."""
        for handle in list(self.handles.values()):
            if handle.container_id is None and handle.last_state == TaskState.ERROR and not handle.busy:
                await self._report(handle.taskid, TaskState.ERROR, handle.last_error)

    async def _send(self, message: dict[str, Any]) -> bool:
        ws = self._ws
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_json(message)
            return True
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            return False

    def _spawn(self, coro) -> None:
        job = asyncio.create_task(coro)
        self._jobs.add(job)
        job.add_done_callback(self._job_done)

    def _job_done(self, job: asyncio.Task) -> None:
        self._jobs.discard(job)
        if not job.cancelled() and job.exception() is not None:
            log.error("task handling failed", exc_info=job.exception())

    # --- containers ----------------------------------------------------------------------

    async def _adopt(self) -> None:
        for info in await self.docker.containers(self.hwid):
            if info.taskid and info.taskid not in self.handles:
                handle = TaskHandle(info.taskid, info.id)
                # A few polls at least: the tail so far; on and on only while it runs.
                handle.watch_logs(running=info.status in _RUNNING_STATUSES)
                self.handles[info.taskid] = handle
        log.info("re-adopted %d container(s)", len(self.handles))

    async def _inventory(self) -> list[dict[str, Any]]:
        infos = await self.docker.containers(self.hwid)
        reports: dict[str, ContainerReport] = {}
        for info in infos:
            if not info.taskid:
                continue
            handle = self.handles.get(info.taskid)
            if handle is None:
                handle = self.handles[info.taskid] = TaskHandle(info.taskid, info.id)
                handle.watch_logs(running=info.status in _RUNNING_STATUSES)
            status = STATUS_BUSY if handle.busy else inventory_status(info)
            reports[info.taskid] = ContainerReport(info.taskid, status, info.exit_code)
        for taskid, handle in self.handles.items():
            if handle.busy and taskid not in reports:
                reports[taskid] = ContainerReport(taskid, STATUS_BUSY)
        return [r.to_message() for r in reports.values()]

    async def _report(self, taskid: str, state: TaskState, error_msg: str = "") -> None:
        handle = self.handles.get(taskid)
        if handle is not None:
            handle.last_state, handle.last_error = state, error_msg
        await self._send({"type": "state", "taskid": taskid, "state": int(state), "error_msg": error_msg})

    async def _phase(self, taskid: str, phase: str) -> None:
        await self._send({"type": "phase", "taskid": taskid, "phase": phase})

    async def _refresh(self, handle: TaskHandle) -> None:
        """Look at the container and tell the API what is true now."""
        info = await self.docker.inspect(handle.container_id or container_name(handle.taskid))
        if info is None:
            if not handle.removed:
                await self._report(handle.taskid, TaskState.ERROR, "container vanished")
            self.handles.pop(handle.taskid, None)
            return
        handle.container_id = info.id
        state, error_msg = report_of(info)
        handle.watch_logs(running=state == TaskState.RUNNING)
        await self._report(handle.taskid, state, error_msg)

    # --- commands ------------------------------------------------------------------------

    async def _on_command(self, command: dict[str, Any]) -> None:
        command_id, op, taskid = int(command["id"]), command["op"], str(command["taskid"])
        handle = self.handles.get(taskid)
        if handle is None:
            handle = self.handles[taskid] = TaskHandle(taskid)
        async with handle.lock:
            if command_id in self.applied:
                # Carried out before a break lost its acknowledgement: never again,
                # just say how things stand.
                if op != OP_REMOVE and not handle.removed:
                    with contextlib.suppress(*ENGINE_ERRORS):
                        await self._refresh(handle)
                await self._send({"type": "ack", "id": command_id})
                return
            if handle.removed or self.handles.get(taskid) is not handle:
                # Removed while this command waited for the task: nothing left to act on.
                await asyncio.to_thread(self.applied.add, command_id)
                await self._send({"type": "ack", "id": command_id})
                return
            if op == OP_RESTART:
                # On disk before the restart happens: a crash right after must not repeat it.
                await asyncio.to_thread(self.applied.add, command_id)
            handle.busy, handle.missed_event = True, False
            try:
                started = await self._apply(handle, op, command)
            except Exception as exc:
                # One task's trouble stays that task's: report it and carry on.
                log.exception("command %s (%s of %s) failed", command_id, op, taskid)
                if op != OP_REMOVE:
                    await self._report(taskid, TaskState.ERROR, f"agent failed to {op}: {exc}")
                started = False
            finally:
                handle.busy = False
                self._operations_done += 1
            if started and not handle.missed_event:
                # The engine answered the start: running. A death that follows is an event.
                handle.watch_logs(running=True)
                await self._report(taskid, TaskState.RUNNING)
            elif started:
                try:
                    await self._refresh(handle)
                except ENGINE_ERRORS as exc:
                    log.warning("could not inspect %s after %s: %s", taskid, op, exc)
        await asyncio.to_thread(self.applied.add, command_id)
        await self._send({"type": "ack", "id": command_id})

    async def _apply(self, handle: TaskHandle, op: str, command: dict[str, Any]) -> bool:
        """Carry out one command; True when the container's state is to be reported after it
        (running after a start, unless the engine said something meanwhile: then inspected)."""
        if op == OP_START:
            return await self._start(handle, command)
        if op == OP_RESTART:
            return await self._restart(handle, command)
        if op == OP_REMOVE:
            await self._remove(handle)
            return False
        if op == OP_STOP:
            await self.docker.stop(handle.container_id or container_name(handle.taskid), self.config.stop_timeout_s)
            handle.missed_event = True  # what it exited with is read after the stop
            return True
        log.warning("unknown command %r ignored", op)
        return False

    async def _start(self, handle: TaskHandle, command: dict[str, Any]) -> bool:
        image = command["image"]
        kwargs = create_kwargs(
            taskid=handle.taskid,
            hwid=self.hwid,
            image=image,
            public_image=command.get("public_image", image),
            params=command.get("params", ""),
            limits=self.limits,
            gpus=self.gpus,
            extra_labels=self.config.labels,
        )
        # The pull is explicit, always; but the container is created while the registry is
        # asked, from whatever the engine has under the reference, and made again only if
        # the engine had nothing yet or the pull moved the tag to another image.
        await self._phase(handle.taskid, "pulling")
        pull = asyncio.ensure_future(self._pull(handle, image))
        early: Created | None = None
        try:
            with contextlib.suppress(*ENGINE_ERRORS):
                early = await self.docker.create(kwargs)
            pulled = await pull
        finally:
            pull.cancel()  # only matters if we got here by an exception: nobody else awaits it
        if pulled is None:
            if early is not None:
                await self.docker.remove(early.id)
            return False
        if early is not None and early.image_id == pulled:
            handle.container_id = early.id
        else:
            if early is not None:
                await self.docker.remove(early.id)
            await self._phase(handle.taskid, "creating")
            try:
                handle.container_id = (await self.docker.create(kwargs)).id
            except ENGINE_ERRORS as exc:
                await self._report(handle.taskid, TaskState.ERROR, f"create failed: {_explain(exc)}")
                return False
        await self._phase(handle.taskid, "starting")
        try:
            await self.docker.start(handle.container_id)
        except ENGINE_ERRORS as exc:
            await self._report(handle.taskid, TaskState.ERROR, f"start failed: {_explain(exc)}")
            return False
        return True

    async def _pull(self, handle: TaskHandle, image: str) -> str | None:
        """The explicit pull (``ImageFetcher``): the image id, or None with the task's error reported."""
        try:
            return await asyncio.wait_for(self.images.fetch(image), self.config.pull_timeout_s)
        except asyncio.TimeoutError:
            reason = f"no answer within {self.config.pull_timeout_s:g}s"
        except PullError as exc:
            reason = str(exc)
        except ENGINE_ERRORS as exc:
            reason = _explain(exc)
        await self._report(handle.taskid, TaskState.ERROR, f"pull failed: {reason}")
        return None

    async def _restart(self, handle: TaskHandle, command: dict[str, Any]) -> bool:
        existing = await self.docker.inspect(handle.container_id or container_name(handle.taskid))
        if existing is None:
            return await self._start(handle, command)
        handle.container_id = existing.id
        await self._phase(handle.taskid, "restarting")
        try:
            await self.docker.restart(existing.id, self.config.stop_timeout_s)
        except ENGINE_ERRORS as exc:
            await self._report(handle.taskid, TaskState.ERROR, f"restart failed: {_explain(exc)}")
            return False
        return True

    async def _remove(self, handle: TaskHandle) -> None:
        handle.removed = True
        await self.docker.remove(handle.container_id or container_name(handle.taskid))
        self.handles.pop(handle.taskid, None)

    # --- what the engine says --------------------------------------------------------------

    def feed_event(self, event: dict[str, Any] | None) -> None:
        """An engine event about this executor's containers (None: the engine is back, resync)."""
        self._events.put_nowait(event)

    async def _consume_events(self) -> None:
        while True:
            event = await self._events.get()
            try:
                if event is None:
                    await self._resync()
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
                self._spawn(self._refresh_locked(handle))
            except Exception:
                log.exception("docker event %r not handled", event)

    async def _refresh_locked(self, handle: TaskHandle) -> None:
        async with handle.lock:
            if not handle.removed:
                await self._refresh(handle)

    async def _resync(self) -> None:
        operations_before = self._operations_done
        try:
            inventory = await self._inventory()
        except ENGINE_ERRORS as exc:
            log.warning("engine not answering: %s", exc)
            return
        if self._operations_done != operations_before:
            # A command finished while the engine was being listed: the snapshot may show
            # the world before it and would undo its report. The next resync will do.
            return
        await self._send({"type": "inventory", "inventory": inventory})

    async def _resync_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.resync_s)
            await self._resync()

    # --- logs ------------------------------------------------------------------------------

    async def _poll_logs_forever(self) -> None:
        limit = asyncio.Semaphore(LOG_POLL_CONCURRENCY)

        async def poll(handle: TaskHandle) -> None:
            async with limit:
                lines = await self.docker.log_tail(
                    handle.container_id or container_name(handle.taskid), TAIL_LINES, handle.logs.last_ns
                )
            # A task that prints is asked again next round; a quiet one less often, so
            # that many idle tasks do not keep the engine busy.
            quieter = max(self.config.log_flush_s, handle.log_poll_every * 2)
            handle.log_poll_every = self.config.log_flush_s if lines else min(quieter, QUIET_LOG_POLL_S)
            handle.next_log_poll = time.monotonic() + handle.log_poll_every
            if lines:
                handle.logs.add(lines)

        while True:
            await asyncio.sleep(self.config.log_flush_s)
            now = time.monotonic()
            watched = [
                h for h in self.handles.values()
                if h.watch_logs_until > now and h.container_id and h.next_log_poll <= now
            ]
            if watched:
                results = await asyncio.gather(*(poll(h) for h in watched), return_exceptions=True)
                for result in results:
                    if isinstance(result, Exception) and not isinstance(result, ENGINE_ERRORS):
                        log.error("log poll failed", exc_info=result)
            if self._ws is None:
                continue
            for handle in list(self.handles.values()):
                batch = handle.logs.take()
                if batch is None:
                    continue
                lines, reset = batch
                if not await self._send({"type": "logs", "taskid": handle.taskid, "lines": lines, "reset": reset}):
                    handle.logs.resend_all()
                    break


def _explain(exc: Exception) -> str:
    if isinstance(exc, APIError):
        return exc.explanation or str(exc)
    return str(exc)
