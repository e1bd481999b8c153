"""The executor agent: one link to the API, the engine's containers, and the truth.

The agent owns nothing the engine does not already know: every container carries
labels naming its task and executor, so a restarted agent re-adopts what runs
instead of starting twins, and reads each container's output again from where the
API's copy ends.  Its rooms:

- ``link``     the WebSocket: hello, welcome, commands in, messages out;
- ``runner``   carrying out commands (start, restart, remove, stop);
- ``watcher``  engine events and listings, turned into states; a task's end;
- ``shipper``  following each container's output and shipping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from typing import Any

import aiohttp

from megamind.config import AgentConfig
from megamind.executor.facade import AsyncDocker
from megamind.executor.follow import EngineLogs
from megamind.executor.gpu import Gpu
from megamind.executor.handle import Reporter, TaskHandle
from megamind.executor.identity import Identity
from megamind.executor.imagecache import ImageCache
from megamind.executor.images import ImageFetcher
from megamind.executor.link import ApiLink, RefusedByApi, Unregistered
from megamind.executor.runner import Runner
from megamind.executor.shipper import Shipper
from megamind.executor.spec import Limits
from megamind.executor.watcher import Watcher
from megamind.protocol import (
    PROTOCOL_VERSION,
    Command,
    Hello,
    Op,
    ProtocolError,
    Welcome,
)

__all__ = ["Agent", "RefusedByApi", "Unregistered"]

log = logging.getLogger(__name__)


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
        logs: EngineLogs | None = None,
        image_cache: ImageCache | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        self.image_cache = image_cache
        if image_cache is not None:
            image_cache.hwids.add(identity.hwid)
        self.hardware = hardware
        self.handles: dict[str, TaskHandle] = {}
        self._jobs: set[asyncio.Task] = set()
        self.link = ApiLink(http, identity, config.heartbeat_s, self._hello, self._on_welcome, self._on_command,
                            self._on_unreadable)
        self._logs = logs or EngineLogs(docker.runtime.api.api_version)
        self._owns_logs = logs is None
        self.shipper = Shipper(self._logs, self.link.send, config.log_flush_s)
        reporter = Reporter(self.link.send, self.handles)
        scratch = config.state_dir / "scratch"
        scratch.mkdir(parents=True, exist_ok=True)
        self.watcher = Watcher(
            docker, http, identity, scratch, self.handles, reporter, self.shipper,
            self.link.send, lambda: self.link.session, self._spawn, config.stop_timeout_s,
        )
        self.runner = Runner(
            config, docker, images or ImageFetcher(docker, http), http, identity, scratch, gpus,
            self.handles, reporter, self.shipper, self.link.send, self.watcher.refresh,
        )
        # Every limit of the owner's, the writable layer's size among them.
        self.runner.limits = Limits.of(config)

    @property
    def hwid(self) -> str:
        return self.identity.hwid

    @property
    def connected(self) -> asyncio.Event:
        return self.link.connected

    def feed_event(self, event: dict[str, Any] | None) -> None:
        self.watcher.feed_event(event)

    # --- lifecycle ---------------------------------------------------------------------

    async def run(self) -> None:
        """Serve until cancelled; on cancellation the containers are left running."""
        await self.watcher.adopt()
        loops = [
            asyncio.create_task(self.shipper.run(), name="ship-output"),
            asyncio.create_task(self.watcher.consume_events(self._resync), name="docker-events"),
            asyncio.create_task(self._resync_forever(), name="resync"),
        ]
        try:
            await self.link.stay_connected()
        finally:
            for handle in self.handles.values():
                handle.cancel_deadline()  # the next agent sets them again from the engine's times
            for task in loops + list(self._jobs):
                task.cancel()
            for task in loops + list(self._jobs):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await self.shipper.close()
            if self._owns_logs:
                await self._logs.close()

    async def _hello(self) -> Hello:
        return Hello(PROTOCOL_VERSION, self.hardware, self.config.cost, self.config.publish_address)

    async def _on_welcome(self, welcome: Welcome) -> None:
        """Output is read again from where the API's copy ends; then the inventory tells
        the API what this executor holds, and every end not yet reported is concluded."""
        self.watcher.results_limit = welcome.results_limit
        self.shipper.restart_from(
            welcome.cursors, {h.taskid: h.container_id for h in self.handles.values() if h.container_id}
        )
        await self.watcher.tell_inventory()

    def _on_command(self, command: Command) -> None:
        if self.image_cache is not None and command.op in (Op.START, Op.RESTART) and command.image:
            self.image_cache.touch(command.image)  # before its pull: no prune takes it meanwhile
        self._spawn(self._carry_out(command))

    async def _carry_out(self, command: Command) -> None:
        await self.runner.carry_out(command)
        if self.image_cache is not None and command.op is Op.REMOVE:
            self.image_cache.wake()  # its image may be unused now

    async def _on_unreadable(self, raw: str, error: ProtocolError) -> None:
        """A command this agent cannot read is its task's error, acknowledged so it stops coming."""
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        command_id = data.get("id") if isinstance(data, dict) else None
        taskid = data.get("taskid") if isinstance(data, dict) else None
        if not isinstance(command_id, int) or not isinstance(taskid, str) or not taskid:
            log.warning("unreadable message from the API ignored: %s", error)
            return
        log.warning("command %s for %s cannot be carried out: %s", command_id, taskid, error)
        await self.runner.refuse(command_id, taskid, f"agent cannot carry out this command: {error}")

    async def _resync(self) -> None:
        await self.watcher.resync(lambda: self.runner.operations_done)

    async def _resync_forever(self) -> None:
        # Slots of one host started together: each at its own moment, not all listing at once.
        await asyncio.sleep(random.uniform(0, self.config.resync_s))
        while True:
            await self._resync()
            await asyncio.sleep(self.config.resync_s)

    def _spawn(self, coro) -> None:
        job = asyncio.create_task(coro)
        self._jobs.add(job)
        job.add_done_callback(self._job_done)

    def _job_done(self, job: asyncio.Task) -> None:
        self._jobs.discard(job)
        if not job.cancelled() and job.exception() is not None:
            log.error("task handling failed", exc_info=job.exception())
