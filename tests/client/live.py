"""The real application on 127.0.0.1, in a thread with its own event loop, and a fake agent.

The server runs apart from the test's loop so that the blocking Client (and the CLI on
it) can be called straight from a test, also from inside a running loop, as in Jupyter.
The fake agent speaks protocol 2 (megamind.protocol's typed messages) over the real
WebSocket, from the server's loop.  tests/client and the CLI tests share it, fixtures
included.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import tarfile
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from megamind.api.app import create_app
from megamind.api.keys import hub_key, store_key
from megamind.config import ServerConfig
from megamind.protocol import (
    AGENT_PATH,
    API_MESSAGES,
    FILES_PATH,
    PROTOCOL_VERSION,
    REGISTER_PATH,
    RESULTS_PATH,
    TOKEN_HEADER,
    Ack,
    Command,
    Hello,
    Inventory,
    Message,
    StateReport,
    Stream,
    Welcome,
    decode,
)
from megamind.states import TaskState
from megamind.testing import SAMPLE_HARDWARE, ScriptedOutput

HARDWARE = SAMPLE_HARDWARE
IMAGE = "megamind.network/helloworld:latest"
TIMEOUT_S = 5.0


def server_config(tmp_path, **overrides: Any) -> ServerConfig:
    settings = dict(db_path=tmp_path / "db.sqlite", home=tmp_path, registry="registry.test:5000",
                    log_flush_s=0.05, key_cache_ttl_s=0.5, rate_limit="none")
    return ServerConfig(**{**settings, **overrides})


def eventually(check: Callable[[], Any], timeout: float = TIMEOUT_S) -> Any:
    """Call ``check`` until it answers something truthy (the platform is asynchronous)."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {result!r})")
        time.sleep(0.02)
    return result


class LiveServer:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="live-server", daemon=True)
        self.app: web.Application | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._names = (f"account{i}" for i in itertools.count())

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = TIMEOUT_S) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        self.app = create_app(self.config)
        # A follow=1 answer still open must not hold the shutdown for aiohttp's 60 s default:
        # past the wait of `stop`, the store would stay open and its threads keep pytest alive.
        self._runner = web.AppRunner(self.app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        self.run(self._runner.cleanup(), timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()

    def new_key(self, name: str | None = None) -> str:
        _, key = self.run(self.app[store_key].accounts.create(name or next(self._names)))
        return key


class FakeAgent:
    """An executor that does what the test says, on the server's loop."""

    def __init__(self, live: LiveServer, owner_key: str, hardware: dict, cost: float) -> None:
        self.live = live
        self.hwid = ""
        self.token = ""
        self.output = ScriptedOutput()
        live.run(self._connect(owner_key, hardware, cost))
        eventually(lambda: live.app[hub_key].is_online(self.hwid))

    async def _connect(self, owner_key: str, hardware: dict, cost: float) -> None:
        self.http = aiohttp.ClientSession(self.live.url)
        try:
            await self._register(owner_key, hardware, cost)
        except BaseException:
            # A refused registration must not leave the session to the garbage collector,
            # whose warning would fail whichever test runs then.
            await self.http.close()
            raise

    async def _register(self, owner_key: str, hardware: dict, cost: float) -> None:
        async with self.http.post(REGISTER_PATH, json={"hardware": hardware, "cost": cost},
                                  headers={"api-key": owner_key}) as resp:
            assert resp.status == 201, await resp.text()
            registered = await resp.json()
        self.hwid, self.token = registered["hwid"], registered["token"]
        self.ws = await self.http.ws_connect(AGENT_PATH, headers={TOKEN_HEADER: self.token})
        await self.ws.send_str(Hello(PROTOCOL_VERSION, hardware, cost).encode())
        welcome = decode(await self.ws.receive_str(timeout=TIMEOUT_S), API_MESSAGES)
        assert isinstance(welcome, Welcome) and welcome.hwid == self.hwid, welcome
        self.output.cursors = dict(welcome.cursors)
        await self.ws.send_str(Inventory(containers=()).encode())

    def command(self) -> Command:
        message = decode(self.live.run(self.ws.receive_str(timeout=TIMEOUT_S)), API_MESSAGES)
        assert isinstance(message, Command), message
        return message

    def send(self, message: Message) -> None:
        self.live.run(self.ws.send_str(message.encode()))

    def state(self, taskid: str, state: int, error_msg: str = "") -> None:
        self.send(StateReport(taskid, TaskState(state), error_msg))

    def logs(self, taskid: str, lines: list[str], stream: Stream = Stream.STDOUT) -> None:
        """One batch of lines continuing this agent's cursor for the task."""
        self.send(self.output.batch(taskid, lines, stream))

    def ack(self, command_id: int) -> None:
        self.send(Ack(command_id))

    def start(self, taskid: str) -> Command:
        """Take the task's start command, carry it out and report the task running."""
        command = self.command()
        assert command.taskid == taskid, command
        self.ack(command.id)
        self.state(taskid, TaskState.RUNNING)
        return command

    def put_results(self, taskid: str, archive: bytes) -> None:
        """What the task left under /megamind/output/, as the agent ships it when the task ends."""
        async def put():
            async with self.http.put(RESULTS_PATH.format(taskid=taskid), data=io.BytesIO(archive),
                                     headers={TOKEN_HEADER: self.token,
                                              "Content-Type": "application/gzip"}) as resp:
                assert resp.status < 300, await resp.text()
        self.live.run(put())

    def get_file(self, file_id: str, taskid: str) -> bytes:
        """An input file of a task on this executor, as the agent fetches it before the start."""
        async def get():
            async with self.http.get(FILES_PATH.format(file_id=file_id), params={"taskid": taskid},
                                     headers={TOKEN_HEADER: self.token}) as resp:
                assert resp.status == 200, await resp.text()
                return await resp.read()
        return self.live.run(get())

    def close(self) -> None:
        async def close():
            await self.ws.close()
            await self.http.close()
        if not self.http.closed:
            self.live.run(close())


def targz(files: dict[str, bytes]) -> bytes:
    """A results archive as an agent makes it: the files at their paths, gzipped."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def live(tmp_path):
    server = LiveServer(server_config(tmp_path))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def new_agent(live):
    agents: list[FakeAgent] = []

    def make(hardware: dict | None = None, cost: float = 0.5) -> FakeAgent:
        agent = FakeAgent(live, live.new_key(), HARDWARE if hardware is None else hardware, cost)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()


@pytest.fixture
def agent(new_agent) -> FakeAgent:
    return new_agent()
