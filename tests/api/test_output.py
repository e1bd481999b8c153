"""A task's whole logs (read, tailed, followed), its progress and its results, through the real app."""

import asyncio
import dataclasses
import json
import os

import pytest

from megamind.api.keys import blobs_key
from megamind.api.output import results_key
from megamind.protocol import RESULTS_PATH, TOKEN_HEADER, Stream

LOGS = "/api/v1/task/{}/logs"
TEXT = "text/plain"


@pytest.fixture
def config(config):
    # Small bounds, so that tests can pass them.
    return dataclasses.replace(config, log_limit_bytes=4000, results_limit_bytes=64 * 1024)


async def get_text(api, path: str, **params) -> tuple[int, str, str]:
    async with api.client.get(path, params=params, headers={"api-key": api.key}) as resp:
        return resp.status, resp.content_type, await resp.text()


async def lines_of(api, taskid, **params) -> list[str]:
    status, content_type, text = await get_text(api, LOGS.format(taskid), **params)
    assert (status, content_type) == (200, TEXT), text
    assert text == "" or text.endswith("\n")
    return text.split("\n")[:-1]


async def eventually_lines(api, taskid, helpers, expected, **params):
    async def check():
        return await lines_of(api, taskid, **params) == expected
    await helpers.eventually(check)


# --- reading ------------------------------------------------------------------------------


async def test_the_whole_log_of_each_stream_oldest_first(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    assert await lines_of(alice, taskid) == []
    out = [f"out {i}" for i in range(100)] + ["", "ünïcode ✓"]
    for i in range(0, len(out), 7):
        await agent.logs(taskid, out[i:i + 7], stream=Stream.STDOUT)
        await agent.logs(taskid, [f"err {i}"], stream=Stream.STDERR)
    await eventually_lines(alice, taskid, helpers, out)
    assert await lines_of(alice, taskid, stream="stdout") == out
    assert await lines_of(alice, taskid, stream="stderr") == [f"err {i}" for i in range(0, len(out), 7)]
    assert await lines_of(alice, taskid, tail="3") == out[-3:]
    assert await lines_of(alice, taskid, tail="0") == []
    assert await lines_of(alice, taskid, tail="1000") == out
    assert await lines_of(alice, taskid, tail="9" * 40) == out  # more than any log holds
    assert await lines_of(alice, taskid, follow="0") == out
    # gettasklogs stays the last 20 stdout lines.
    status, body = await alice.gettasklogs(taskid)
    assert status == 200 and set(body) == {"taskid", "logs_b64"}


async def test_a_stream_past_its_bound_says_how_many_lines_went(alice, agent, helpers, config):
    taskid, _ = await alice.start_task(agent)
    lines = [f"line {i:05}" for i in range(1000)]  # 11 bytes each: 11,000 bytes, the bound is 4,000
    for i in range(0, 1000, 100):
        await agent.logs(taskid, lines[i:i + 100])

    async def trimmed():
        await agent.store.logs.flush()
        got = await lines_of(alice, taskid)
        return got if got and got[0].startswith("[megamind: ") else None
    got = await helpers.eventually(trimmed)
    dropped = int(got[0].split()[1])
    assert got[0] == f"[megamind: {dropped} earlier lines dropped]"
    assert got[1:] == lines[dropped:] and len(got[1:]) * 11 <= config.log_limit_bytes
    assert await lines_of(alice, taskid, tail="2") == lines[-2:]


@pytest.mark.parametrize("params", [
    {"stream": "stdin"}, {"stream": ""}, {"tail": "-1"}, {"tail": "abc"}, {"tail": "1.5"}, {"tail": ""},
    {"follow": "yes"}, {"follow": "2"}, {"follow": "True"},
])
async def test_bad_parameters_are_a_422_in_json(alice, agent, helpers, params):
    taskid, _ = await alice.start_task(agent)
    status, body = await alice.call("GET", LOGS.format(taskid), params=params)
    message = helpers.assert_error(status, body, 422, 3)
    assert next(iter(params)) in message


async def test_another_accounts_task_is_not_found(alice, new_account, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    bob = await new_account("bob")
    for who, task in ((bob, taskid), (alice, "nosuchtask")):
        for path in (LOGS.format(task), f"/api/v1/task/{task}/results"):
            status, body = await who.call("GET", path)
            helpers.assert_error(status, body, 404, 7)


# --- following ----------------------------------------------------------------------------


class Follower:
    """A follow=1 request, read line by line as the server sends them."""

    def __init__(self, api, taskid, **params) -> None:
        self.api, self.taskid, self.params = api, taskid, {"follow": "1", **params}
        self.lines: asyncio.Queue = asyncio.Queue()
        self.task: asyncio.Task | None = None

    async def __aenter__(self) -> "Follower":
        self.response = await self.api.client.get(
            LOGS.format(self.taskid), params=self.params, headers={"api-key": self.api.key})
        assert (self.response.status, self.response.content_type) == (200, TEXT)
        self.task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for raw in self.response.content:
            await self.lines.put(raw.decode().rstrip("\n"))
        await self.lines.put(None)  # the end

    async def next(self, timeout: float = 3.0):
        return await asyncio.wait_for(self.lines.get(), timeout)

    async def ended(self, timeout: float = 3.0) -> None:
        await asyncio.wait_for(self.task, timeout)

    async def __aexit__(self, *exc) -> None:
        self.task.cancel()
        self.response.close()


async def test_follow_sends_what_exists_then_each_new_line_and_ends_when_the_task_ends(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.logs(taskid, ["old 1", "old 2", "old 3"])
    await agent.logs(taskid, ["on stderr"], stream=Stream.STDERR)
    await eventually_lines(alice, taskid, helpers, ["on stderr"], stream="stderr")
    loop = asyncio.get_running_loop()
    async with Follower(alice, taskid, tail="2") as follower:
        assert [await follower.next(), await follower.next()] == ["old 2", "old 3"]
        for i in range(5):
            sent = loop.time()
            await agent.logs(taskid, [f"new {i}"])
            assert await follower.next() == f"new {i}"
            assert loop.time() - sent < 0.5  # streamed as it arrives, not at the end
        await agent.logs(taskid, ["stderr is not this stream"], stream=Stream.STDERR)
        await agent.logs(taskid, ["last words"])
        await agent.state(taskid, 4)
        assert await follower.next() == "last words"
        assert await follower.next() is None
        await follower.ended()


async def test_follow_of_a_finished_task_ends_at_once(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.logs(taskid, ["done"])
    await agent.state(taskid, 5, "exited with code 1")
    await alice.wait_state(taskid, 5)
    started = asyncio.get_running_loop().time()
    async with Follower(alice, taskid) as follower:
        assert await follower.next() == "done"
        assert await follower.next() is None
    assert asyncio.get_running_loop().time() - started < 0.5


async def test_follow_waits_while_the_executor_is_away_and_ends_when_the_task_is_deleted(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.logs(taskid, ["before"])
    async with Follower(alice, taskid) as follower:
        assert await follower.next() == "before"
        await agent.disconnect()
        assert (await alice.task(taskid))["state"] == 1  # unknown, not ended
        with pytest.raises(asyncio.TimeoutError):
            await follower.next(timeout=1.5)
        await alice.deltask(taskid)
        assert await follower.next() is None


async def test_follow_of_stderr_from_the_start(alice, agent):
    taskid, _ = await alice.start_task(agent)
    async with Follower(alice, taskid, stream="stderr") as follower:
        await agent.logs(taskid, ["out"], stream=Stream.STDOUT)
        await agent.logs(taskid, ["err"], stream=Stream.STDERR)
        assert await follower.next() == "err"
        await agent.state(taskid, 4)
        assert await follower.next() is None


# --- progress -----------------------------------------------------------------------------


async def test_progress_lines_set_the_detail_and_a_restart_clears_it(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)

    async def progress():
        return (await alice.call("GET", f"/api/v1/task/{taskid}"))[1]["progress"]
    assert await progress() is None
    await agent.logs(taskid, ["MEGAMIND_PROGRESS=12.5", "working", "MEGAMIND_PROGRESS=40", "MEGAMIND_PROGRESS=400"])

    async def forty():
        return await progress() == 40.0
    await helpers.eventually(forty)
    await agent.logs(taskid, ["MEGAMIND_PROGRESS=55"], stream=Stream.STDERR)  # stdout only
    await agent.logs(taskid, ["MEGAMIND_PROGRESS=41"])

    async def forty_one():
        return await progress() == 41.0
    await helpers.eventually(forty_one)
    assert "MEGAMIND_PROGRESS=40" in await lines_of(alice, taskid)  # an ordinary line too
    assert (await alice.restarttask(taskid))[0] == 200
    assert await progress() is None


# --- results ------------------------------------------------------------------------------


async def put_results(agent, taskid, body, headers=None, **kwargs):
    headers = {TOKEN_HEADER: agent.token, **(headers or {})}
    async with agent.client.put(RESULTS_PATH.format(taskid=taskid), data=body, headers=headers, **kwargs) as resp:
        return resp.status, await resp.read()


async def get_results(api, taskid):
    async with api.client.get(f"/api/v1/task/{taskid}/results", headers={"api-key": api.key}) as resp:
        return resp.status, resp.headers, await resp.read()


async def test_results_round_trip_byte_for_byte(alice, agent, helpers, client):
    taskid, _ = await alice.start_task(agent)
    status, headers, body = await get_results(alice, taskid)
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert "no results yet" in helpers.assert_error(status, json.loads(body), 404, 19)

    archive = os.urandom(50_000)
    assert await put_results(agent, taskid, archive, {"X-Megamind-Results-Truncated": "3"}) == (204, b"")
    status, headers, body = await get_results(alice, taskid)
    assert status == 200 and body == archive
    assert headers["Content-Type"] == "application/gzip"
    assert headers["Content-Disposition"] == f'attachment; filename="{taskid}-results.tar.gz"'
    _, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert detail["results"]["size"] == len(archive) and detail["results"]["truncated"] == 3

    # A restart's results replace the first ones, whole.
    second = os.urandom(1000)
    assert (await put_results(agent, taskid, second))[0] == 204
    assert (await get_results(alice, taskid))[2] == second
    _, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert (detail["results"]["size"], detail["results"]["truncated"]) == (1000, 0)

    # deltask takes them along.
    await alice.deltask(taskid)
    assert await client.app[blobs_key].size(results_key(taskid)) is None


async def test_results_past_the_bound_are_refused_and_keep_the_previous(alice, agent, config):
    taskid, _ = await alice.start_task(agent)
    assert (await put_results(agent, taskid, b"first"))[0] == 204
    too_big = os.urandom(config.results_limit_bytes + 1)
    assert (await put_results(agent, taskid, too_big))[0] == 413  # refused on its Content-Length

    async def stream():  # no Content-Length: refused once it passes the bound
        for i in range(0, len(too_big), 8192):
            yield too_big[i:i + 8192]
    assert (await put_results(agent, taskid, stream()))[0] == 413
    assert (await get_results(alice, taskid))[2] == b"first"


async def test_results_only_from_the_executor_of_a_live_task(alice, owner, agent, new_agent, helpers):
    taskid, _ = await alice.start_task(agent)
    other = await new_agent(owner)
    assert (await put_results(other, taskid, b"x"))[0] == 404
    assert (await put_results(agent, "nosuchtask", b"x"))[0] == 404
    status, _ = await put_results(agent, taskid, b"x", {TOKEN_HEADER: "mx_nope"})
    assert status == 401
    for bad in ("-1", "many", "1.5"):
        assert (await put_results(agent, taskid, b"x", {"X-Megamind-Results-Truncated": bad}))[0] == 422
    async with agent.client.put(RESULTS_PATH.format(taskid=taskid), data=b"x", headers={"api-key": alice.key}) as r:
        assert r.status == 401  # a customer key is no executor token
    await alice.deltask(taskid)
    assert (await put_results(agent, taskid, b"x"))[0] == 404


async def test_an_ended_task_without_results_says_it_left_none(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.state(taskid, 4)
    await alice.wait_state(taskid, 4)
    status, _, body = await get_results(alice, taskid)
    assert "left no files in /megamind/output/" in helpers.assert_error(status, json.loads(body), 404, 19)
