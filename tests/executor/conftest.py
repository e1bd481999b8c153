"""The agent's rooms wired to fakes: an engine facade, an image fetcher, a log source."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from megamind.config import AgentConfig
from megamind.executor.handle import Reporter, TaskHandle
from megamind.executor.identity import Identity
from megamind.executor.runner import Runner
from megamind.executor.shipper import Shipper
from megamind.executor.watcher import Watcher
from megamind.protocol import Message

from .fakes import FakeDocker, FakeImages, FakeLogs


class Rooms:
    def __init__(self, tmp_path, http) -> None:
        self.sent: list[Message] = []
        self.link_up = True
        self.session = 1
        self.handles: dict[str, TaskHandle] = {}
        self.jobs: list[asyncio.Task] = []
        self.docker = FakeDocker()
        self.images = FakeImages(self.docker)
        self.logs = FakeLogs(self.docker)
        config = AgentConfig(state_dir=tmp_path, log_flush_s=0.01)
        identity = Identity("http://127.0.0.1:9", "hw", "token")
        self.shipper = Shipper(self.logs, self.send, config.log_flush_s)
        reporter = Reporter(self.send, self.handles)
        self.watcher = Watcher(self.docker, http, identity, tmp_path, self.handles, reporter, self.shipper,
                               self.send, lambda: self.session, self.spawn, config.stop_timeout_s)
        self.watcher.results_limit = 1024
        self.runner = Runner(config, self.docker, self.images, http, identity, tmp_path, [], self.handles, reporter,
                             self.shipper, self.send, self.watcher.refresh)

    async def send(self, message: Message) -> bool:
        if not self.link_up:
            return False
        self.sent.append(message)
        return True

    def spawn(self, coro) -> None:
        self.jobs.append(asyncio.create_task(coro))

    def of_type(self, kind: type) -> list:
        return [m for m in self.sent if isinstance(m, kind)]

    async def settle(self) -> None:
        while self.jobs:
            await self.jobs.pop(0)


@pytest.fixture
async def rooms(tmp_path):
    async with aiohttp.ClientSession() as http:
        rooms = Rooms(tmp_path, http)
        shipping = asyncio.create_task(rooms.shipper.run())
        yield rooms
        shipping.cancel()
        await rooms.shipper.close()
        for handle in rooms.handles.values():
            handle.cancel_deadline()
        for job in rooms.jobs:
            job.cancel()
