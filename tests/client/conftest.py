"""The real application on 127.0.0.1, in a thread with its own event loop, and a fake agent.

The server runs apart from the test's loop so that the blocking Client can be called
straight from a test (also from inside a running loop, as in Jupyter). The fake agent
speaks the real protocol over the real WebSocket, from the server's loop.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Coroutine
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from megamind.api.app import create_app
from megamind.api.keys import store_key
from megamind.config import ServerConfig
from megamind.protocol import AGENT_PATH, REGISTER_PATH, TOKEN_HEADER

HARDWARE = {
    "gpus": ["nVidia 1060 6G", "nVidia 1060 6G"],
    "cpus": ["Intel i7 7700K 3.4 GHz"],
    "ram": 32000,
    "network": "100mbit",
    "calculated_perfomance_rating": 4.5,
}
TIMEOUT_S = 5.0


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

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(TIMEOUT_S)

    def start(self) -> None:
        self._thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        self.app = create_app(self.config)
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        self.run(self._runner.cleanup())
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
        live.run(self._connect(owner_key, hardware, cost))

    async def _connect(self, owner_key: str, hardware: dict, cost: float) -> None:
        self.http = aiohttp.ClientSession(self.live.url)
        async with self.http.post(REGISTER_PATH, json={"hardware": hardware, "cost": cost},
                                  headers={"api-key": owner_key}) as resp:
            assert resp.status == 201, await resp.text()
            registered = await resp.json()
        self.hwid = registered["hwid"]
        self.ws = await self.http.ws_connect(AGENT_PATH, headers={TOKEN_HEADER: registered["token"]})
        await self.ws.send_json({"type": "hello", "hardware": hardware, "cost": cost, "inventory": []})
        assert (await self.ws.receive_json(timeout=TIMEOUT_S))["type"] == "welcome"

    def command(self) -> dict:
        message = self.live.run(self.ws.receive_json(timeout=TIMEOUT_S))
        assert message["type"] == "command", message
        return message

    def send(self, message: dict) -> None:
        self.live.run(self.ws.send_json(message))

    def state(self, taskid: str, state: int, error_msg: str = "") -> None:
        self.send({"type": "state", "taskid": taskid, "state": state, "error_msg": error_msg})

    def logs(self, taskid: str, lines: list[str], reset: bool = False) -> None:
        self.send({"type": "logs", "taskid": taskid, "lines": lines, "reset": reset})

    def ack(self, command_id: int) -> None:
        self.send({"type": "ack", "id": command_id})

    def close(self) -> None:
        async def close():
            await self.ws.close()
            await self.http.close()
        if not self.http.closed:
            self.live.run(close())


@pytest.fixture
def live(tmp_path):
    server = LiveServer(ServerConfig(
        db_path=tmp_path / "db.sqlite", home=tmp_path, registry="registry.test:5000",
        log_flush_s=0.05, key_cache_ttl_s=0.5, rate_limit="none",
    ))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def key(live) -> str:
    return live.new_key("alice")


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


@pytest.fixture
def hardware() -> dict:
    return dict(HARDWARE)


@pytest.fixture
def limited_live(tmp_path):
    """A server that allows 2 calls per second per key."""
    server = LiveServer(ServerConfig(
        db_path=tmp_path / "limited.sqlite", home=tmp_path, registry="registry.test:5000", rate_limit="2/second",
    ))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings_env(tmp_path, monkeypatch):
    """A clean environment for settings: no MEGAMIND_* variables, the login file under tmp_path."""
    for name in ("MEGAMIND_API_URL", "MEGAMIND_API_KEY", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "conf" / "config.json"
    monkeypatch.setenv("MEGAMIND_CONFIG", str(path))
    return path

