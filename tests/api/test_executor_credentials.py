"""Executor credentials: an owner removes an executor (its token and link go at once), an
admin revokes one from another process, registration is rate-limited and capped, claims
are bounded, and an inventory can make the API store nothing for ids it never gave."""

import asyncio
import dataclasses
import time

import aiohttp
import pytest

from megamind.api import hub as hub_module
from megamind.api.app import REMOVAL_CHECK_S
from megamind.protocol import (
    AGENT_PATH,
    MAX_INVENTORY,
    PROTOCOL_VERSION,
    REGISTER_PATH,
    SPEEDTEST_PATH,
    TOKEN_HEADER,
)

POLICY_VIOLATION = 1008


@pytest.fixture
def config(config, request):
    """The shared config; a test may change fields with indirect parametrisation."""
    return dataclasses.replace(config, rate_limit="none", **getattr(request, "param", {}))


async def remove(api, hwid: str):
    return await api.call("DELETE", f"/api/v1/executors/{hwid}")


async def closed_by_server(agent) -> int:
    """Wait for the server's close frame; the close code it carries."""
    message = await agent.ws.receive(timeout=3)
    assert message.type == aiohttp.WSMsgType.CLOSE, message
    return message.data


async def assert_token_refused(client, token: str, helpers) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        await client.ws_connect(AGENT_PATH, headers={TOKEN_HEADER: token})
    assert info.value.status == 401
    async with client.get(SPEEDTEST_PATH, params={"bytes": "10"}, headers={TOKEN_HEADER: token}) as resp:
        message = helpers.assert_error(resp.status, await resp.json(), 401, 4)
    assert "revoked" in message


async def count(store, sql: str, *args) -> int:
    return (await store.db.fetchone(sql, args))[0]


# --- the owner removes an executor ---------------------------------------------------------


async def test_removal_closes_the_link_and_the_token_stops_working(client, owner, agent, hub, store, helpers):
    status, body = await remove(owner, agent.hwid)
    assert (status, body) == (200, {"code": 0, "message": "ok"})
    assert await closed_by_server(agent) == POLICY_VIOLATION
    assert not hub.is_online(agent.hwid)
    await assert_token_refused(client, agent.token, helpers)
    row = await store.db.fetchone("SELECT online, removed_at FROM executors WHERE hwid = ?", (agent.hwid,))
    assert row["online"] == 0 and row["removed_at"] is not None  # the row stays, for its tasks' history


async def test_only_the_owner_removes_and_only_once(owner, alice, agent, hub, helpers):
    for api, hwid in ((alice, agent.hwid), (owner, "nosuchexecutor")):
        status, body = await remove(api, hwid)
        helpers.assert_error(status, body, 404, 8)
    assert hub.is_online(agent.hwid)  # another account's call changed nothing
    assert (await remove(owner, agent.hwid))[0] == 200
    status, body = await remove(owner, agent.hwid)
    helpers.assert_error(status, body, 404, 8)


async def test_a_removed_executor_is_in_no_listing_and_gets_no_task(client, owner, alice, new_agent, helpers):
    kept, removed = await new_agent(owner, cost=0.5), await new_agent(owner, cost=0.1)
    assert (await remove(owner, removed.hwid))[0] == 200
    await closed_by_server(removed)

    assert [h["hwid"] for h in (await alice.gethwlist())[1]] == [kept.hwid]
    _, page = await alice.call("GET", "/api/v1/hardware", params={"status": "any"})
    assert [h["hwid"] for h in page["executors"]] == [kept.hwid]
    _, mine = await owner.call("GET", "/api/v1/executors")
    assert [e["hwid"] for e in mine] == [kept.hwid]

    status, body = await alice.addtask(removed.hwid)
    helpers.assert_error(status, body, 404, 8)
    # Placement takes the dearer executor that is left, never the cheaper removed one.
    status, body = await alice.call("POST", "/api/v1/addtask", json={"image": helpers.IMAGE})
    assert status == 200
    assert (await kept.command())["taskid"] == body["taskid"]
    # With the one that is left busy, a new task waits for it (not for the removed one)...
    status, body = await alice.call("POST", "/api/v1/addtask", json={"image": helpers.IMAGE})
    assert status == 200
    _, detail = await alice.call("GET", f"/api/v1/task/{body['taskid']}")
    assert detail["hwid"] is None and detail["pending_reason"] == "1 executor fits; busy"
    # ...and a task only the removed executor could ever hold is refused outright.
    status, body = await alice.call("POST", "/api/v1/addtask",
                                    json={"image": helpers.IMAGE, "requirements": {"max_cost": 0.2}})
    helpers.assert_error(status, body, 422, 20)


async def test_the_task_running_there_ends_in_error_and_is_charged_up_to_then(owner, alice, agent, store):
    taskid, _ = await alice.start_task(agent)
    await asyncio.sleep(0.2)  # a run of some length, to be charged
    before = time.time()
    assert (await remove(owner, agent.hwid))[0] == 200
    task = await alice.task(taskid)
    assert (task["state"], task["error_msg"]) == (5, hub_module.REMOVED_BY_OWNER)
    _, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert detail["pending_command"] is None
    assert before <= detail["finished_at"] <= time.time()
    assert 0.2 <= detail["billed_seconds"] <= detail["finished_at"] - detail["started_at"] + 0.01
    assert await closed_by_server(agent) == POLICY_VIOLATION
    assert await count(store, "SELECT count(*) FROM tasks WHERE hwid = ? AND holds_executor = 1", agent.hwid) == 0


async def test_an_offline_executor_removed_is_not_charged_for_its_silence(owner, alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.disconnect()
    gone = time.time()
    await asyncio.sleep(0.5)
    assert (await remove(owner, agent.hwid))[0] == 200
    _, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert (detail["state"], detail["error_msg"]) == (5, hub_module.REMOVED_BY_OWNER)
    assert detail["finished_at"] <= gone + 0.1  # when it was last seen, not when it was removed


async def test_an_executor_removed_while_it_says_hello_never_comes_online(client, owner, new_agent, hub, store):
    agent = await new_agent(owner, connect=False)
    async with client.ws_connect(AGENT_PATH, headers={TOKEN_HEADER: agent.token}) as ws:
        await ws.send_json({"type": "hello", "protocol": PROTOCOL_VERSION, "hardware": {}, "cost": 0.5})
        assert (await ws.receive_json(timeout=3))["type"] == "welcome"
        await store.executors.remove(agent.hwid)  # as `megamind admin revoke-executor` does
        await ws.send_json({"type": "inventory", "containers": []})
        message = await ws.receive(timeout=3)
        assert message.type == aiohttp.WSMsgType.CLOSE and ws.close_code == POLICY_VIOLATION
    assert not hub.is_online(agent.hwid)
    assert await count(store, "SELECT online FROM executors WHERE hwid = ?", agent.hwid) == 0


# --- an admin revokes one, from another process ------------------------------------------


async def test_an_admins_revocation_closes_the_link_and_ends_the_task_within_seconds(
        client, alice, agent, hub, store, helpers):
    taskid, _ = await alice.start_task(agent)
    await store.executors.remove(agent.hwid)  # the store only: the hub learns of it by itself
    await assert_token_refused(client, agent.token, helpers)  # at once
    message = await agent.ws.receive(timeout=REMOVAL_CHECK_S + 3)
    assert (message.type, message.data, message.extra) == (aiohttp.WSMsgType.CLOSE, POLICY_VIOLATION,
                                                           "executor removed")
    assert not hub.is_online(agent.hwid)
    task = await alice.wait_state(taskid, 5)
    assert task["error_msg"] == hub_module.REVOKED
    assert await count(store, "SELECT online FROM executors WHERE hwid = ?", agent.hwid) == 0


# --- registration ---------------------------------------------------------------------------


async def register(client, key: str, hardware=None, cost: float = 0.5):
    body = {"hardware": {} if hardware is None else hardware, "cost": cost}
    async with client.post(REGISTER_PATH, json=body, headers={"api-key": key}) as resp:
        return resp.status, await resp.json(), resp.headers


@pytest.mark.parametrize("config", [{"register_rate_limit": "3/minute"}], indirect=True)
async def test_registration_is_rate_limited_per_key(client, owner, new_account, store, helpers):
    for _ in range(3):
        assert (await register(client, owner.key))[0] == 201
    status, body, headers = await register(client, owner.key)
    message = helpers.assert_error(status, body, 429, 14)
    assert "registrations" in message and int(headers["Retry-After"]) >= 1
    # Counted per key, and apart from the customer calls (rate_limit is "none" here).
    other = await new_account()
    assert (await register(client, other.key))[0] == 201
    assert (await owner.call("GET", "/api/v1/executors"))[0] == 200
    assert len(await store.executors.for_account((await store.accounts.by_api_key(owner.key)).account.id)) == 3


@pytest.mark.parametrize("config", [{"max_executors_per_account": 2}], indirect=True)
async def test_an_account_holds_at_most_the_cap_and_removed_ones_do_not_count(client, owner, new_account, helpers):
    hwids = [(await register(client, owner.key))[1]["hwid"] for _ in range(2)]
    status, body, _ = await register(client, owner.key)
    message = helpers.assert_error(status, body, 403, 5)
    assert "2" in message and "remove one" in message
    assert (await register(client, (await new_account()).key))[0] == 201  # per account
    assert (await remove(owner, hwids[0]))[0] == 200
    assert (await register(client, owner.key))[0] == 201


@pytest.mark.parametrize("config", [{"max_executors_per_account": None, "register_rate_limit": "none"}],
                         indirect=True)
async def test_no_cap_and_no_limit_when_the_server_says_so(client, owner):
    for _ in range(40):
        assert (await register(client, owner.key))[0] == 201


ABSURD = [
    {"gpus": ["H100"] * 65},
    {"cpus": ["Xeon"] * 257},
    {"cpu_count": 4097},
    {"ram": 64 * 1024 * 1024 + 1},
    {"gpus": ["H100"], "gpu_memory_mb": [1024 * 1024 + 1]},
    {"gpus": ["H100"], "gpu_memory_mb": [80000, 80000]},  # more memory sizes than GPUs
    {"gpus": ["x" * 257]},
    {"cpus": ["Xeon\x1b[2J"]},  # a control sequence for the owner's terminal
    {"network": "n" * 65},
    {"calculated_perfomance_rating": -1},
    {"calculated_perfomance_rating": 1e300},
    {"slots": 1025},
]


@pytest.mark.parametrize("hardware", ABSURD)
async def test_absurd_hardware_is_refused_on_registration(client, owner, store, hardware, helpers):
    status, body, _ = await register(client, owner.key, hardware)
    helpers.assert_error(status, body, 422, 3)
    assert await count(store, "SELECT count(*) FROM executors") == 0


async def test_an_absurd_price_is_refused_on_registration(client, owner, helpers):
    status, body, _ = await register(client, owner.key, cost=1e300)
    helpers.assert_error(status, body, 422, 3)


@pytest.mark.parametrize("hardware, cost", [*((h, 0.5) for h in ABSURD), ({}, 1e300)])
async def test_absurd_claims_are_refused_on_hello(client, owner, new_agent, hub, store, hardware, cost, helpers):
    agent = await new_agent(owner, connect=False)
    async with client.ws_connect(AGENT_PATH, headers={TOKEN_HEADER: agent.token}) as ws:
        await ws.send_json({"type": "hello", "protocol": PROTOCOL_VERSION, "hardware": hardware, "cost": cost})
        refused = await ws.receive_json(timeout=3)
        assert refused["type"] == "refused" and "refuses this executor's hello" in refused["message"]
        message = await ws.receive(timeout=3)
        assert message.type == aiohttp.WSMsgType.CLOSE and ws.close_code == POLICY_VIOLATION
    assert not hub.is_online(agent.hwid)
    kept = (await store.executors.get(agent.hwid)).hardware  # as registered: nothing of the hello
    assert {name: kept[name] for name in helpers.HARDWARE} == helpers.HARDWARE


# --- inventories ----------------------------------------------------------------------------


async def test_an_inventory_past_the_bound_closes_the_link(agent, store, helpers):
    await agent.inventory([helpers.container(f"t{i}") for i in range(MAX_INVENTORY + 1)])
    assert await closed_by_server(agent) == POLICY_VIOLATION
    assert await count(store, "SELECT count(*) FROM commands") == 0


async def test_ids_never_given_to_the_executor_are_told_once_and_never_stored(agent, store, helpers):
    strays = [f"stray{i}" for i in range(1000)]
    inventory = [helpers.container(t, "exited", 0) for t in strays]
    await agent.inventory(inventory)
    told = [await agent.command() for _ in strays]
    assert {c["taskid"] for c in told} == set(strays)
    assert all(c["op"] == "remove" and c["id"] < 0 for c in told)
    assert len({c["id"] for c in told}) == len(told)
    await agent.inventory(inventory)  # named again: nothing more
    await agent.no_command()
    assert await count(store, "SELECT count(*) FROM commands") == 0
    await agent.ack(told[0]["id"], wait=False)  # an ack of one changes nothing either
    await agent.inventory(inventory[:1])
    await agent.no_command()
    # A new link is told again, once.
    await agent.disconnect()
    await agent.connect(inventory=inventory[:2])
    assert {(await agent.command())["taskid"] for _ in range(2)} == set(strays[:2])
    assert await count(store, "SELECT count(*) FROM commands") == 0


async def test_a_task_the_executor_was_given_gets_one_pending_remove_at_most(alice, agent, store, helpers):
    taskid, _ = await alice.start_task(agent)
    await alice.deltask(taskid)
    first = await agent.command()
    await agent.ack(first["id"])  # said to be gone... but it is named again, and again
    for _ in range(3):
        await agent.inventory([helpers.container(taskid), helpers.container(taskid)])
    again = await agent.command()
    assert (again["op"], again["taskid"]) == ("remove", taskid) and again["id"] > 0
    await agent.no_command()
    pending = "SELECT count(*) FROM commands WHERE hwid = ? AND taskid = ? AND done = 0"
    assert await count(store, pending, agent.hwid, taskid) == 1
