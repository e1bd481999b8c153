"""The real agent against a scripted API: commands applied exactly once across a broken link.

The API side here is a small aiohttp server speaking megamind/protocol.py, so a test
can break the connection at the worst moment: after a command was sent and before
its acknowledgement came back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import aiohttp
import pytest
from aiohttp import web

from megamind.config import AgentConfig
from megamind.executor.agent import Agent
from megamind.executor.events import EngineEvents
from megamind.executor.facade import AsyncDocker
from megamind.executor.identity import Identity
from megamind.executor.runtime import DockerRuntime
from megamind.protocol import AGENT_PATH, Welcome

from .conftest import TEST_LABEL, containers_of


class ScriptedApi:
    """Records what the agent says; lets the test send commands and drop the link."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.hellos = 0
        self.ws: web.WebSocketResponse | None = None
        self.connected = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=5)
        await ws.prepare(request)
        hello = await ws.receive_json()
        assert hello["type"] == "hello"
        self.hellos += 1
        await ws.send_str(Welcome(request.headers["executor-token"], {}, 1024 * 1024).encode())
        self.ws = ws
        self.connected.set()
        async for message in ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.messages.append(message.json())
        return ws

    async def wait_for(self, predicate, timeout: float = 20.0, count: int = 1) -> dict:
        """The first message of which ``predicate`` holds, once ``count`` of them have come."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            matching = [message for message in self.messages if predicate(message)]
            if len(matching) >= count:
                return matching[0]
            await asyncio.sleep(0.02)
        raise AssertionError(f"agent never said that {count} times; it said {self.messages[-10:]}")

    def acked(self, command_id: int):
        return lambda m: m["type"] == "ack" and m["id"] == command_id

    def state(self, taskid: str, state: int):
        return lambda m: m["type"] == "state" and m["taskid"] == taskid and m["state"] == state


@pytest.fixture
async def scripted(aiohttp_server):
    api = ScriptedApi()
    app = web.Application()
    app.router.add_get(AGENT_PATH, api.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    return api, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def agent(scripted, tmp_path, run_id, engine, registry, test_image):
    api, url = scripted
    hwid = "scripted" + uuid.uuid4().hex[:8]
    config = AgentConfig(api_url=url, state_dir=tmp_path, network="none", labels={TEST_LABEL: run_id},
                         log_flush_s=0.1)
    runtime = DockerRuntime()
    docker = AsyncDocker(runtime, threads=4)
    events = EngineEvents(runtime, asyncio.get_running_loop())
    events.start()
    async with aiohttp.ClientSession() as http:
        agent = Agent(config, docker, http, Identity(url, hwid, hwid), {"cpus": ["test"]}, [])
        events.attach(agent)
        running = asyncio.create_task(agent.run())
        await asyncio.wait_for(api.connected.wait(), 10)
        yield agent, api, f"{registry.address}/megatest:latest"
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    events.stop()
    docker.close()
    for container in engine.containers.list(all=True, filters={"label": f"network.megamind.hwid={hwid}"}):
        container.remove(force=True)


def start_command(command_id: int, taskid: str, image: str, params: str) -> dict:
    return {"type": "command", "id": command_id, "op": "start", "taskid": taskid,
            "image": image, "public_image": "megamind.network/megatest:latest", "params": params}


async def test_a_restart_resent_after_a_broken_link_is_applied_once(agent, engine):
    _, api, image = agent
    taskid = "t" + uuid.uuid4().hex
    await api.ws.send_json(start_command(1, taskid, image, "sleep 60"))
    await api.wait_for(api.state(taskid, 3))
    await api.wait_for(api.acked(1))
    (container,) = containers_of(engine, taskid)
    since = time.time()

    restart = {**start_command(2, taskid, image, "sleep 60"), "op": "restart"}
    await api.ws.send_json(restart)
    await api.ws.close()  # the link breaks before any acknowledgement
    api.connected.clear()
    await asyncio.wait_for(api.connected.wait(), 10)
    assert api.hellos == 2
    await api.ws.send_json(restart)  # the API resends what was never acknowledged
    await api.wait_for(api.acked(2))
    await api.wait_for(api.state(taskid, 3))

    events = engine.events(since=int(since), until=int(time.time()) + 1, decode=True,
                           filters={"container": container.id, "event": "restart"})
    assert len(list(events)) == 1
    (same,) = containers_of(engine, taskid)
    assert same.id == container.id


async def test_a_start_resent_never_makes_a_twin(agent, engine):
    _, api, image = agent
    taskid = "t" + uuid.uuid4().hex
    command = start_command(7, taskid, image, "sleep 60")
    await api.ws.send_json(command)
    await api.ws.send_json(command)
    await api.wait_for(api.state(taskid, 3))
    await api.wait_for(api.acked(7), count=2)  # each copy acknowledged once carried out
    assert len(containers_of(engine, taskid)) == 1


async def test_a_command_that_fails_stays_with_its_task(agent, engine):
    _, api, image = agent
    broken = "t" + uuid.uuid4().hex
    await api.ws.send_json({"type": "command", "id": 20, "op": "start", "taskid": broken})  # no image
    failed = await api.wait_for(lambda m: m["type"] == "state" and m["taskid"] == broken)
    assert failed["state"] == 5 and "cannot carry out" in failed["error_msg"] and "image" in failed["error_msg"]
    await api.wait_for(api.acked(20))  # acknowledged: it will not come back forever

    healthy = "t" + uuid.uuid4().hex
    await api.ws.send_json(start_command(21, healthy, image, "echo fine"))
    await api.wait_for(api.state(healthy, 4))
    logs = await api.wait_for(lambda m: m["type"] == "logs" and m["taskid"] == healthy and m["entries"])
    assert [text for _, _, text in logs["entries"]] == ["fine"]
    assert api.hellos == 1  # the unreadable command did not cost the link


async def test_a_start_resent_after_it_finished_does_not_run_the_task_again(agent, engine):
    _, api, image = agent
    taskid = "t" + uuid.uuid4().hex
    command = start_command(30, taskid, image, "echo once")
    await api.ws.send_json(command)
    await api.wait_for(api.state(taskid, 4))
    await api.wait_for(api.acked(30))
    (container,) = containers_of(engine, taskid)
    first_start = container.attrs["State"]["StartedAt"]

    api.messages.clear()
    await api.ws.send_json(command)  # its acknowledgement was "lost": the API sends it again
    await api.wait_for(api.acked(30))
    (same,) = containers_of(engine, taskid)
    assert same.attrs["State"]["StartedAt"] == first_start
    assert same.status == "exited"


async def test_a_stop_command_stops_the_container_and_reports_its_exit(agent, engine):
    _, api, image = agent
    taskid = "t" + uuid.uuid4().hex
    await api.ws.send_json(start_command(40, taskid, image, "sleep 60"))
    await api.wait_for(api.state(taskid, 3))
    await api.ws.send_json({"type": "command", "id": 41, "op": "stop", "taskid": taskid})
    await api.wait_for(api.acked(41))
    stopped = await api.wait_for(lambda m: m["type"] == "state" and m["taskid"] == taskid and m["state"] != 3)
    assert stopped["state"] in (4, 5)
    (container,) = containers_of(engine, taskid)
    assert container.status == "exited"  # stopped, not removed
