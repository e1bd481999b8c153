"""Carrying out the API's commands: start, restart, remove and stop task containers.

A command id once carried out is never carried out again (a restart is recorded
before it happens; a start or a remove, which are idempotent, when done).  A remove
counts only once the container is gone: until then it is retried, and not
acknowledged, so the API keeps the executor reserved for the task being removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp

from megamind.config import AgentConfig
from megamind.executor import transfer
from megamind.executor.facade import AsyncDocker
from megamind.executor.gpu import Gpu
from megamind.executor.handle import Reporter, TaskHandle
from megamind.executor.identity import AppliedCommands, Identity
from megamind.executor.images import ImageFetcher
from megamind.executor.outcome import engine_words, start_failure
from megamind.executor.runtime import ENGINE_ERRORS, Created, PullError
from megamind.executor.shipper import Shipper
from megamind.executor.spec import Limits, TaskRefused, container_name, create_kwargs
from megamind.protocol import Ack, Command, Message, Op, Phase
from megamind.states import TaskState

log = logging.getLogger(__name__)

REMOVE_RETRY_DELAYS_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Runner:
    def __init__(
        self,
        config: AgentConfig,
        docker: AsyncDocker,
        images: ImageFetcher,
        http: aiohttp.ClientSession,
        identity: Identity,
        scratch: Path,
        gpus: list[Gpu],
        handles: dict[str, TaskHandle],
        reporter: Reporter,
        shipper: Shipper,
        send: Callable[[Message], Awaitable[bool]],
        refresh: Callable[[TaskHandle], Awaitable[None]],
    ) -> None:
        self.config = config
        self.docker = docker
        self.images = images
        self.http = http
        self.identity = identity
        self.scratch = scratch  # where input files wait between the API and the container
        self.gpus = gpus
        self.handles = handles
        self.reporter = reporter
        self.shipper = shipper
        self._send = send
        self._refresh = refresh
        self.limits = Limits.checked(
            config.network, config.allow_host_network,
            memory_mb=config.memory_mb, cpus=config.cpus, pids_limit=config.pids_limit,
        )
        self.applied = AppliedCommands(config.state_dir)
        self.operations_done = 0

    async def _ack(self, command_id: int) -> None:
        await asyncio.to_thread(self.applied.add, command_id)
        await self._send(Ack(command_id))

    async def refuse(self, command_id: int, taskid: str, reason: str) -> None:
        """A command that cannot be carried out at all: its task's error, acknowledged."""
        await self.reporter.state(taskid, TaskState.ERROR, reason)
        await self._ack(command_id)

    async def carry_out(self, command: Command) -> None:
        handle = self.handles.get(command.taskid)
        if handle is None:
            handle = self.handles[command.taskid] = TaskHandle(command.taskid)
        async with handle.lock:
            if command.id in self.applied:
                # Carried out before a break lost its acknowledgement: never again,
                # just say how things stand.
                if command.op is not Op.REMOVE and not handle.removed:
                    with contextlib.suppress(*ENGINE_ERRORS):
                        await self._refresh(handle)
                await self._send(Ack(command.id))
                return
            if handle.removed or self.handles.get(command.taskid) is not handle:
                # Removed while this command waited for the task: nothing left to act on.
                await self._ack(command.id)
                return
            if command.op is Op.REMOVE:
                await self._remove(handle)
                await self._ack(command.id)
                return
            if command.op is Op.RESTART:
                # On disk before the restart happens: a crash right after must not repeat it.
                await asyncio.to_thread(self.applied.add, command.id)
            handle.busy, handle.missed_event = True, False
            try:
                started = await self._apply(handle, command)
            except Exception as exc:
                # One task's trouble stays that task's: report it and carry on.
                log.exception("command %s (%s of %s) failed", command.id, command.op.value, command.taskid)
                await self.reporter.state(command.taskid, TaskState.ERROR, f"agent failed to {command.op.value}: {exc}")
                started = False
            finally:
                handle.busy = False
                self.operations_done += 1
            if started and not handle.missed_event and not _looked_at_when_running(command):
                # The engine answered the start: running. A death that follows is an event.
                self.shipper.follow(handle.taskid, handle.container_id)
                await self.reporter.state(command.taskid, TaskState.RUNNING)
            elif started:
                try:
                    await self._refresh(handle)
                except ENGINE_ERRORS as exc:
                    log.warning("could not inspect %s after %s: %s", command.taskid, command.op.value, exc)
        await self._ack(command.id)

    async def _apply(self, handle: TaskHandle, command: Command) -> bool:
        """Carry out one command; True when the container's state is to be reported after it
        (running after a start, unless the engine said something meanwhile: then inspected)."""
        if command.op is Op.START:
            return await self._start(handle, command)
        if command.op is Op.RESTART:
            return await self._restart(handle, command)
        if command.op is Op.STOP:
            await self.docker.stop(handle.container_id or container_name(handle.taskid), self.config.stop_timeout_s)
            handle.missed_event = True  # what it exited with is read after the stop
            return True
        raise AssertionError(f"unhandled op {command.op}")

    async def _start(self, handle: TaskHandle, command: Command) -> bool:
        try:
            kwargs = create_kwargs(
                taskid=handle.taskid,
                hwid=self.identity.hwid,
                image=command.image,
                public_image=command.public_image or command.image,
                params=command.params,
                limits=self.limits,
                gpus=self.gpus,
                extra_labels=self.config.labels,
                spec=command.spec,
                publish_address=self.config.publish_address,
            )
        except TaskRefused as exc:
            await self.reporter.state(handle.taskid, TaskState.ERROR, str(exc))
            return False
        # The pull is explicit, always; but the container is created while the registry is
        # asked, from whatever the engine has under the reference, and made again only if
        # the engine had nothing yet or the pull moved the tag to another image.
        await self.reporter.phase(handle.taskid, Phase.PULLING)
        pull = asyncio.ensure_future(self._pull(handle, command))
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
            await self.reporter.phase(handle.taskid, Phase.CREATING)
            try:
                handle.container_id = (await self.docker.create(kwargs)).id
            except ENGINE_ERRORS as exc:
                await self._failed(handle, command, "create", exc)
                return False
        if command.inputs and not await self._put_inputs(handle, command):
            return False
        await self.reporter.phase(handle.taskid, Phase.STARTING)
        try:
            await self.docker.start(handle.container_id)
        except ENGINE_ERRORS as exc:
            await self._failed(handle, command, "start", exc)
            return False
        return True

    async def _failed(self, handle: TaskHandle, command: Command, operation: str, exc: Exception) -> None:
        """The engine refused to make or run the container: the task's error, as plainly as known."""
        reason = start_failure(exc, command.spec, bool(self.gpus)) or f"{operation} failed: {engine_words(exc)}"
        await self.reporter.state(handle.taskid, TaskState.ERROR, reason)

    async def _put_inputs(self, handle: TaskHandle, command: Command) -> bool:
        """The task's input files under /megamind/input/, before it starts."""
        workdir = Path(tempfile.mkdtemp(prefix=f"inputs-{handle.taskid}-", dir=self.scratch))
        try:
            files = await transfer.fetch_inputs(
                self.http, self.identity.api_url, self.identity.token, handle.taskid, list(command.inputs), workdir
            )
            await self.docker.put_inputs(handle.container_id, files)
            return True
        except (transfer.TransferError, *ENGINE_ERRORS) as exc:
            await self.reporter.state(handle.taskid, TaskState.ERROR, f"inputs failed: {engine_words(exc)}")
            return False
        finally:
            await asyncio.to_thread(shutil.rmtree, workdir, True)

    async def _pull(self, handle: TaskHandle, command: Command) -> str | None:
        """The explicit pull (``ImageFetcher``) with the command's pull token: the image id, or
        None with the task's error reported."""
        fetch = self.images.fetch(command.image, command.pull_token, command.public_image)
        try:
            return await asyncio.wait_for(fetch, self.config.pull_timeout_s)
        except asyncio.TimeoutError:
            reason = f"no answer within {self.config.pull_timeout_s:g}s"
        except PullError as exc:
            reason = str(exc)
        except ENGINE_ERRORS as exc:
            reason = engine_words(exc)
        await self.reporter.state(handle.taskid, TaskState.ERROR, f"pull failed: {reason}")
        return None

    async def _restart(self, handle: TaskHandle, command: Command) -> bool:
        existing = await self.docker.inspect(handle.container_id or container_name(handle.taskid))
        if existing is None:
            return await self._start(handle, command)
        handle.container_id = existing.id
        await self.reporter.phase(handle.taskid, Phase.RESTARTING)
        try:
            await self.docker.restart(existing.id, self.config.stop_timeout_s)
        except ENGINE_ERRORS as exc:
            await self._failed(handle, command, "restart", exc)
            return False
        return True

    async def _remove(self, handle: TaskHandle) -> None:
        """Kill and remove the container, retrying until the engine says it is gone."""
        attempt = 0
        while True:
            try:
                await self.docker.remove(handle.container_id or container_name(handle.taskid))
                break
            except ENGINE_ERRORS as exc:
                delay = REMOVE_RETRY_DELAYS_S[min(attempt, len(REMOVE_RETRY_DELAYS_S) - 1)]
                log.warning("remove of %s failed (%s); retrying in %gs", handle.taskid, engine_words(exc), delay)
                attempt += 1
                await asyncio.sleep(delay)
        handle.removed = True
        handle.cancel_deadline()
        self.shipper.forget(handle.taskid)
        self.handles.pop(handle.taskid, None)


def _looked_at_when_running(command: Command) -> bool:
    """Whether a started task is inspected before it is reported running: its published
    ports are known only then (a restart may bind others), and its runtime limit counts
    from the engine's start time.  A plain start is reported at once: bursts stay cheap."""
    return command.op is Op.RESTART or bool(command.spec.ports or command.spec.limits.runtime)
