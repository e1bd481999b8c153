"""The agent's rooms wired to fakes: an engine facade, an image fetcher, a log source."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import shutil
import socket
import time
import uuid

import aiohttp
import docker
import pytest

from megamind.config import AgentConfig
from megamind.executor.handle import Reporter, TaskHandle
from megamind.executor.identity import Identity
from megamind.executor.runner import Runner
from megamind.executor.runtime import DockerRuntime
from megamind.executor.shipper import Shipper
from megamind.executor.watcher import Watcher
from megamind.protocol import Message, StateReport

from .fakes import FakeDocker, FakeImages, FakeLogs


class Rooms:
    def __init__(self, tmp_path, http) -> None:
        self.sent: list[Message] = []
        self.sent_as_is: list[Message] = []
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
        self.sent_as_is.append(message)
        # What was said, without the clocks it was said by (``sent_as_is`` keeps them).
        if isinstance(message, StateReport):
            message = dataclasses.replace(message, started_at=None, finished_at=None, sent_at=None)
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


# --- the real engine, for the modules that test against it ----------------------------------

TEST_LABEL = "megamind.test"
BUSYBOX_DOCKERFILE = 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'


@pytest.fixture(scope="module")
def run_label(request) -> str:
    """The module's own label value: its containers are removed by it."""
    return f"{request.module.__name__.rsplit('.', 1)[-1]}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def engine(run_label):
    client = docker.from_env(version="auto")
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker engine: {exc}. Run the tests with scripts/test, which starts dockerd.")
    yield client
    for container in client.containers.list(all=True, filters={"label": f"{TEST_LABEL}={run_label}"}):
        with contextlib.suppress(docker.errors.APIError):
            container.remove(force=True)
    client.close()


@pytest.fixture(scope="module")
def busybox_image(engine, run_label, tmp_path_factory):
    """A local-only image with no CMD: a static busybox FROM scratch, never pushed."""
    context = tmp_path_factory.mktemp("busybox")
    shutil.copy(shutil.which("busybox") or "/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    tag = f"megamind-test:{run_label}"
    engine.images.build(path=str(context), tag=tag, rm=True)
    yield tag
    with contextlib.suppress(docker.errors.APIError):
        engine.images.remove(tag, force=True)


@pytest.fixture(scope="module")
def runtime(engine):
    """The agent's blocking engine layer on the real engine."""
    runtime = DockerRuntime(docker.from_env(version="auto", timeout=60))
    yield runtime
    runtime.close()


def read_from(port: int, timeout: float = 10) -> bytes:
    """What a task's server says on 127.0.0.1:port, once it listens behind the engine's proxy
    (loopback only, never a container's address)."""
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            data = conn.recv(64)
            if data:
                return data
        assert time.monotonic() < deadline, f"nothing answered on 127.0.0.1:{port}"
        time.sleep(0.05)
