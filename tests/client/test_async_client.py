"""AsyncClient against the real application (in a thread) and a fake agent."""

import asyncio
import time

import pytest
from aiohttp import web

from megamind.client import (
    AsyncClient,
    ExecutorBusy,
    ExecutorNotFound,
    HardwareItem,
    ImageNotAllowed,
    RateLimited,
    TaskNotFound,
    TaskState,
    TransportError,
    Unauthorized,
    Unavailable,
    ValidationFailed,
    WaitTimeout,
)

IMAGE = "megamind.network/helloworld:latest"


async def test_the_six_calls(live, key, agent, hardware):
    async with AsyncClient(live.url, key) as api:
        [item] = await api.hw_list()
        assert item == HardwareItem(agent.hwid, hardware["gpus"], hardware["cpus"], 32000, "100mbit", 4.5, 0.5)

        taskid = await api.add_task(IMAGE, agent.hwid, params='{"x": 1}')
        assert isinstance(taskid, str) and taskid
        assert await api.hw_list() == []  # held by the task
        [task] = await api.task_list()
        assert (task.taskid, task.state, task.image, task.params) == (taskid, TaskState.SETUP, IMAGE, '{"x": 1}')

        command = await asyncio.to_thread(agent.command)
        assert (command.op, command.taskid, command.inputs) == ("start", taskid, ())
        await asyncio.to_thread(agent.state, taskid, 3)
        await asyncio.to_thread(agent.logs, taskid, ["one", "twö"])
        await asyncio.to_thread(agent.ack, command.id)
        assert (await api.wait_task(taskid, timeout=5, interval=0.05)).state == TaskState.RUNNING
        for _ in range(100):
            if (logs := await api.task_logs(taskid)).lines:
                break
            await asyncio.sleep(0.02)
        assert logs.lines == ["one", "twö"] and logs.text == "one\ntwö\n"

        assert await api.restart_task(taskid) is None
        assert (await api.task(taskid)).pending_command == "restart"
        assert await api.delete_task(taskid) is None
        assert await api.task_list() == []


async def test_extension_calls(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        taskid = await api.add_task(IMAGE, agent.hwid)
        task = await api.task(taskid)
        assert (task.state, task.hwid, task.executor_online, task.pending_command) == (
            TaskState.SETUP, agent.hwid, True, "start")
        assert (task.progress, task.results) == (None, None)
        assert task.created_at <= time.time()
        assert await api.executors() == []  # alice owns no executor
        with pytest.raises(Unavailable) as caught:  # the configured registry.test does not resolve
            await api.images()
        assert caught.value.code == 15 and caught.value.status == 503
        spec = await api.openapi()
        assert "/api/v1/gethwlist" in spec["paths"]


async def test_errors_are_typed_with_code_message_and_status(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        with pytest.raises(TaskNotFound) as caught:
            await api.task_logs("nosuchtask")
        assert (caught.value.code, caught.value.status) == (7, 404)
        assert "nosuchtask" in caught.value.message
        with pytest.raises(ExecutorNotFound):
            await api.add_task(IMAGE, "nosuchhwid")
        with pytest.raises(ImageNotAllowed) as caught:
            await api.add_task("docker.io/library/busybox", agent.hwid)
        assert caught.value.code == 16
        with pytest.raises(ValidationFailed):
            await api.add_task(IMAGE, agent.hwid, params="x" * 70_000)
        await api.add_task(IMAGE, agent.hwid)
        with pytest.raises(ExecutorBusy) as caught:
            await api.add_task(IMAGE, agent.hwid)
        assert (caught.value.code, caught.value.status) == (9, 409)
        for call in (api.restart_task, api.delete_task, api.task):
            with pytest.raises(TaskNotFound):
                await call("nosuchtask")
        with pytest.raises(TaskNotFound):  # odd characters stay inside one path segment
            await api.task("../gettasklist")


async def test_a_wrong_or_missing_key_is_unauthorized(live):
    async with AsyncClient(live.url, "mk_wrong") as api:
        with pytest.raises(Unauthorized) as caught:
            await api.task_list()
        assert (caught.value.code, caught.value.status) == (4, 401)
    async with AsyncClient(live.url, "") as api:
        with pytest.raises(Unauthorized, match="missing"):
            await api.hw_list()


async def test_rate_limits_carry_retry_after(limited_live):
    key = limited_live.new_key()
    async with AsyncClient(limited_live.url, key) as api:
        with pytest.raises(RateLimited) as caught:
            for _ in range(5):
                await api.task_list()
        assert caught.value.retry_after >= 1


async def test_waiting_loops_wait_out_the_rate_limit(limited_live):
    key = limited_live.new_key()
    async with AsyncClient(limited_live.url, key) as api:
        for _ in range(2):
            await api.task_list()
        started = time.monotonic()
        with pytest.raises(TaskNotFound):  # the answer after the wait, not RateLimited
            await api.wait_task("nosuchtask")
        assert time.monotonic() - started >= 0.5


async def test_an_unreachable_api_is_a_transport_error():
    async with AsyncClient("http://127.0.0.1:9", "mk_k", timeout=2) as api:
        with pytest.raises(TransportError, match="cannot reach the Megamind API at http://127.0.0.1:9: Connection"):
            await api.hw_list()


async def test_something_else_answering_is_a_transport_error(aiohttp_server):
    app = web.Application()

    async def html(request):
        return web.Response(text="<html>proxy error</html>", status=502, content_type="text/html")

    async def odd(request):
        return web.json_response({"unexpected": True}, status=500)

    async def shape(request):
        return web.json_response([{"hwid": "h"}])
    app.router.add_get("/api/v1/gettasklist", html)
    app.router.add_get("/api/v1/gethwlist", shape)
    app.router.add_get("/api/v1/executors", odd)
    server = await aiohttp_server(app)
    async with AsyncClient(f"http://127.0.0.1:{server.port}", "mk_k") as api:
        with pytest.raises(TransportError, match="HTTP 502 that is not JSON"):
            await api.task_list()
        with pytest.raises(TransportError, match="unexpected body"):
            await api.executors()
        with pytest.raises(TransportError, match="unexpected shape"):
            await api.hw_list()


async def test_a_slow_api_is_a_transport_error(aiohttp_server):
    app = web.Application()

    async def slow(request):
        await asyncio.sleep(0.5)
        return web.json_response([])
    app.router.add_get("/api/v1/gettasklist", slow)
    server = await aiohttp_server(app)
    async with AsyncClient(f"http://127.0.0.1:{server.port}", "mk_k", timeout=0.1) as api:
        with pytest.raises(TransportError, match="did not answer"):
            await api.task_list()


async def test_wait_task_times_out_with_the_task_as_it_stands(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        taskid = await api.add_task(IMAGE, agent.hwid)
        with pytest.raises(WaitTimeout) as caught:
            await api.wait_task(taskid, timeout=0.2, interval=0.05)
        assert caught.value.task.state == TaskState.SETUP
        assert "still setup after 0.2 s" in str(caught.value)


async def test_watch_task_yields_each_change(live, key, agent):
    async with AsyncClient(live.url, key) as api:
        taskid = await api.add_task(IMAGE, agent.hwid)
        seen = []
        async for task in api.watch_task(taskid, interval=0.05):
            seen.append((task.state_name, task.error_msg))
            if len(seen) == 1:
                await asyncio.to_thread(agent.state, taskid, 3)
            elif len(seen) == 2:
                await asyncio.to_thread(agent.state, taskid, 5, "exited with code 3")
            else:
                break
        assert seen == [("setup", ""), ("running", ""), ("error", "exited with code 3")]


async def test_a_client_shares_a_session_given_to_it(live, key):
    import aiohttp

    async with aiohttp.ClientSession() as session:
        api = AsyncClient(live.url, key, session=session)
        assert await api.task_list() == []
        await api.close()
        assert not session.closed  # not the client's to close


async def test_defaults_come_from_the_environment(live, key, settings_env, monkeypatch):
    monkeypatch.setenv("MEGAMIND_API_URL", live.url + "/api/")
    monkeypatch.setenv("MEGAMIND_API_KEY", key)
    async with AsyncClient() as api:
        assert api.api_url == live.url
        assert await api.task_list() == []


async def wait_for(check, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)
