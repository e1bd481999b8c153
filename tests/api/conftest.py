"""The real application on 127.0.0.1, customers with api-keys, and a fake agent.

The fake agent speaks megamind/protocol.py over the real WebSocket: it registers with
an owner's api-key, says hello, is welcomed, tells its inventory, and then receives
commands and sends state, logs, ack and inventory messages, exactly as an executor would.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from megamind.api.app import create_app
from megamind.api.keys import hub_key, store_key
from megamind.config import ServerConfig
from megamind.protocol import (
    AGENT_PATH,
    PROTOCOL_VERSION,
    REGISTER_PATH,
    TOKEN_HEADER,
    LogCursor,
    Stream,
)
from megamind.testing import SAMPLE_HARDWARE, ScriptedOutput

REGISTRY = "registry.test:5000"
HARDWARE = SAMPLE_HARDWARE
IMAGE = "megamind.network/helloworld:latest"
WAIT_S = 3.0


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = WAIT_S) -> Any:
    """Poll ``check`` until it returns something truthy; the agent channel is asynchronous."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.01)


class Api:
    """One customer: every call answers (status, parsed JSON body)."""

    def __init__(self, client, name: str, key: str) -> None:
        self.client, self.name, self.key = client, name, key

    async def call(self, method: str, path: str, **kwargs) -> tuple[int, Any]:
        headers = {"api-key": self.key, **kwargs.pop("headers", {})}
        async with self.client.request(method, path, headers=headers, **kwargs) as resp:
            assert resp.content_type == "application/json", await resp.text()
            return resp.status, await resp.json()

    async def gethwlist(self):
        return await self.call("GET", "/api/v1/gethwlist")

    async def addtask(self, hwid: str, image: str = IMAGE, params: str = "", **extra):
        return await self.call("POST", "/api/v1/addtask", json={"image": image, "params": params, "hwid": hwid, **extra})

    async def deltask(self, taskid: str):
        return await self.call("DELETE", f"/api/v1/deltask/{taskid}")

    async def gettasklist(self):
        return await self.call("GET", "/api/v1/gettasklist")

    async def restarttask(self, taskid: str):
        return await self.call("POST", f"/api/v1/restarttask/{taskid}")

    async def gettasklogs(self, taskid: str):
        return await self.call("GET", f"/api/v1/gettasklogs/{taskid}")

    async def task(self, taskid: str) -> dict | None:
        status, tasks = await self.gettasklist()
        assert status == 200
        return next((t for t in tasks if t["taskid"] == taskid), None)

    async def wait_state(self, taskid: str, state: int, error_msg: str | None = None) -> dict:
        async def check():
            task = await self.task(taskid)
            if task and task["state"] == state and (error_msg is None or task["error_msg"] == error_msg):
                return task
            return None
        return await eventually(check)

    async def start_task(self, agent: "FakeAgent", params: str = "", image: str = IMAGE) -> tuple[str, dict]:
        """addtask, and the fake agent takes the start command, acks it and reports running."""
        status, body = await self.addtask(agent.hwid, image=image, params=params)
        assert status == 200, body
        command = await agent.command()
        assert command["op"] == "start" and command["taskid"] == body["taskid"]
        await agent.ack(command["id"])
        await agent.state(body["taskid"], 3)
        await self.wait_state(body["taskid"], 3)
        return body["taskid"], command


class FakeAgent:
    def __init__(self, client, hwid: str, token: str) -> None:
        self.client, self.hwid, self.token = client, hwid, token
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.output = ScriptedOutput()  # each task's output as the API has it
        self.welcome: dict | None = None

    @property
    def hub(self):
        return self.client.app[hub_key]

    @property
    def store(self):
        return self.client.app[store_key]

    async def connect(self, inventory=(), hardware=None, cost: float = 0.5, protocol: int = PROTOCOL_VERSION) -> dict:
        """hello, welcome, inventory: online.  Log cursors continue from the welcome's."""
        assert self.ws is None or self.ws.closed
        self.ws = await self.client.ws_connect(AGENT_PATH, headers={TOKEN_HEADER: self.token})
        await self.ws.send_json({
            "type": "hello",
            "protocol": protocol,
            "hardware": HARDWARE if hardware is None else hardware,
            "cost": cost,
        })
        welcome = await self.receive()
        assert welcome["type"] == "welcome" and welcome["hwid"] == self.hwid, welcome
        self.welcome = welcome
        self.output.cursors = {t: LogCursor.from_wire(c) for t, c in welcome["cursors"].items()}
        await self.inventory(inventory)
        await eventually(lambda: _true(self.hub.is_online(self.hwid)))
        return welcome

    async def receive(self, timeout: float = WAIT_S) -> dict:
        message = await self.ws.receive(timeout=timeout)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        return message.json()

    async def command(self, timeout: float = WAIT_S) -> dict:
        message = await self.receive(timeout)
        assert message["type"] == "command", message
        assert set(message) >= {"id", "op", "taskid"}
        return message

    async def no_command(self, wait: float = 0.3) -> None:
        try:
            message = await self.ws.receive(timeout=wait)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"unexpected message {message!r}")

    async def send(self, message: dict) -> None:
        await self.ws.send_json(message)

    async def state(self, taskid: str, state: int, error_msg: str = "") -> None:
        await self.send({"type": "state", "taskid": taskid, "state": state, "error_msg": error_msg})

    async def logs(self, taskid: str, lines: list[str], stream: Stream = Stream.STDOUT) -> None:
        """A batch of lines continuing this agent's cursor for the task, each a nanosecond apart."""
        await self.send(self.output.batch(taskid, lines, stream).to_wire())

    async def ack(self, command_id: int, wait: bool = True) -> None:
        await self.send({"type": "ack", "id": command_id})
        if wait:
            async def acked():
                return all(c.id != command_id for c in await self.store.tasks.pending_commands(self.hwid))
            await eventually(acked)

    async def inventory(self, items) -> None:
        await self.send({"type": "inventory", "containers": [dict(i) for i in items]})

    async def disconnect(self) -> None:
        """Close the socket and wait until the API has noticed."""
        if self.ws is not None and not self.ws.closed:
            await self.ws.close()

        async def gone():
            return not self.hub.is_online(self.hwid)
        await eventually(gone)


async def _true(value):
    return value


def container(taskid: str, status: str = "running", exit_code: int | None = None) -> dict:
    return {"taskid": taskid, "status": status, "exit_code": exit_code}


@pytest.fixture
def config(tmp_path) -> ServerConfig:
    return ServerConfig(
        db_path=tmp_path / "db.sqlite",
        home=tmp_path,
        registry=REGISTRY,
        log_flush_s=0.05,
        key_cache_ttl_s=0.5,
    )


@pytest.fixture
async def client(aiohttp_client, config):
    return await aiohttp_client(create_app(config))


@pytest.fixture
def store(client):
    return client.app[store_key]


@pytest.fixture
def hub(client):
    return client.app[hub_key]


@pytest.fixture
def new_account(client) -> Callable[..., Awaitable[Api]]:
    names = (f"account{i}" for i in itertools.count())

    async def make(name: str | None = None) -> Api:
        name = name or next(names)
        _, key = await client.app[store_key].accounts.create(name)
        return Api(client, name, key)

    return make


@pytest.fixture
async def new_agent(client):
    agents: list[FakeAgent] = []

    async def make(owner: Api, connect: bool = True, hardware=None, cost: float = 0.5, inventory=()) -> FakeAgent:
        body = {"hardware": HARDWARE if hardware is None else hardware, "cost": cost}
        async with client.post(REGISTER_PATH, json=body, headers={"api-key": owner.key}) as resp:
            assert resp.status == 201, await resp.text()
            registered = await resp.json()
        assert set(registered) == {"hwid", "token"}
        agent = FakeAgent(client, registered["hwid"], registered["token"])
        agents.append(agent)
        if connect:
            await agent.connect(inventory=inventory, hardware=hardware, cost=cost)
        return agent

    yield make
    for agent in agents:
        if agent.ws is not None and not agent.ws.closed:
            await agent.ws.close()


@pytest.fixture
async def alice(new_account) -> Api:
    return await new_account("alice")


@pytest.fixture
async def owner(new_account) -> Api:
    return await new_account("owner")


@pytest.fixture
async def agent(new_agent, owner) -> FakeAgent:
    return await new_agent(owner)


def assert_error(status: int, body: Any, expected_status: int, code: int) -> str:
    """Every failing call: the status, and exactly {code: non-zero int, message: non-empty str}."""
    assert status == expected_status, body
    assert isinstance(body, dict) and set(body) == {"code", "message"}, body
    assert isinstance(body["code"], int) and not isinstance(body["code"], bool)
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"].strip()
    return body["message"]


# Tests import nothing from here (the import mode is importlib): helpers come as fixtures.
@pytest.fixture
def helpers():
    class Helpers:
        REGISTRY = REGISTRY
        HARDWARE = HARDWARE
        IMAGE = IMAGE
        eventually = staticmethod(eventually)
        container = staticmethod(container)
        assert_error = staticmethod(assert_error)
    return Helpers
