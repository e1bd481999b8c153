"""The agent channel, driven by a fake agent: states, reconnects, inventories, commands."""

import asyncio
import base64
import itertools

import aiohttp
import pytest

from megamind.protocol import (
    AGENT_PATH,
    PROTOCOL_VERSION,
    REGISTER_PATH,
    SPEEDTEST_PATH,
    TOKEN_HEADER,
    LogCursor,
    Stream,
)

POLICY_VIOLATION = 1008


# --- registration and the handshake ----------------------------------------------------


async def test_register_answers_hwid_and_token_once(client, owner, store):
    async with client.post(REGISTER_PATH, json={"hardware": {"ram": 1000}, "cost": 1.5},
                           headers={"api-key": owner.key}) as resp:
        assert resp.status == 201
        body = await resp.json()
    assert set(body) == {"hwid", "token"}
    assert len(body["hwid"]) == 16 and body["token"].startswith("mx_")
    record = await store.executors.get(body["hwid"])
    assert record.hardware["ram"] == 1000 and record.cost == 1.5
    assert (await store.executors.by_token(body["token"])).hwid == body["hwid"]
    # Stored hashed: the clear token is nowhere in the table.
    rows = await store.db.fetchall("SELECT * FROM executors")
    assert all(body["token"] not in str(tuple(r)) for r in rows)


async def test_register_needs_an_owner_key(client, agent, helpers):
    for headers in ({}, {"api-key": "mk_unknown"}, {TOKEN_HEADER: agent.token}, {"api-key": agent.token}):
        async with client.post(REGISTER_PATH, json={}, headers=headers) as resp:
            helpers.assert_error(resp.status, await resp.json(), 401, 4)


async def test_register_validates_its_body(client, owner, helpers):
    for body in ({"cost": -1}, {"hardware": {"ram": "lots"}}, {"hardware": {}, "extra": 1}):
        async with client.post(REGISTER_PATH, json=body, headers={"api-key": owner.key}) as resp:
            helpers.assert_error(resp.status, await resp.json(), 422, 3)


async def test_welcome_names_the_executor(agent, hub):
    assert hub.is_online(agent.hwid)
    assert [r.hwid for r in hub.online()] == [agent.hwid]


async def test_connect_needs_the_executor_token(client, agent, alice, helpers):
    for headers in ({}, {TOKEN_HEADER: "mx_unknown"}, {TOKEN_HEADER: alice.key}, {"api-key": alice.key}):
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await client.ws_connect(AGENT_PATH, headers=headers)
        assert info.value.status == 401
        async with client.get(AGENT_PATH, headers=headers) as resp:
            helpers.assert_error(resp.status, await resp.json(), 401, 4)


async def test_first_message_must_be_hello(client, owner, new_agent, hub):
    agent = await new_agent(owner, connect=False)
    async with client.ws_connect(AGENT_PATH, headers={TOKEN_HEADER: agent.token}) as ws:
        await ws.send_json({"type": "state", "taskid": "x", "state": 3})
        message = await ws.receive(timeout=3)
        assert message.type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == POLICY_VIOLATION
    assert not hub.is_online(agent.hwid)


@pytest.mark.parametrize("bad", [
    {"type": "bogus"},
    {"type": "state", "taskid": "x", "state": 1},  # agents report known states only
    {"type": "state", "taskid": "x", "state": 9},
    {"type": "state", "taskid": "x"},
    {"type": "logs", "taskid": "x", "since": {}, "cursor": {}, "entries": "not a list"},
    {"type": "logs", "taskid": "x", "lines": ["the old shape"]},
    {"type": "hello", "protocol": 2, "hardware": {}, "cost": 0},  # only the first message is a hello
    {"type": "ack", "id": "one"},
    [1, 2, 3],
    "just a string",
])
async def test_protocol_violations_close_the_link(agent, hub, bad):
    await agent.ws.send_json(bad)
    message = await agent.ws.receive(timeout=3)
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert agent.ws.close_code == POLICY_VIOLATION
    await agent.disconnect()
    # The agent may come back.
    await agent.connect()


async def test_invalid_json_closes_the_link(agent):
    await agent.ws.send_str("{not json")
    message = await agent.ws.receive(timeout=3)
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert agent.ws.close_code == POLICY_VIOLATION


async def test_a_second_connection_replaces_the_first(client, agent, hub, alice):
    old = agent.ws
    agent.ws = None
    await agent.connect()
    message = await old.receive(timeout=3)
    assert message.type == aiohttp.WSMsgType.CLOSE
    await old.close()
    await asyncio.sleep(0.05)
    # The old socket's end does not take the new link offline.
    assert hub.is_online(agent.hwid)
    status, body = await alice.addtask(agent.hwid)
    assert status == 200
    assert (await agent.command())["taskid"] == body["taskid"]


async def test_speedtest(client, agent, alice, helpers):
    async with client.get(SPEEDTEST_PATH, params={"bytes": "1000"}, headers={TOKEN_HEADER: agent.token}) as resp:
        assert resp.status == 200
        assert len(await resp.read()) == 1000
    for value in ("0", "-5", "lots", str(10**9)):
        async with client.get(SPEEDTEST_PATH, params={"bytes": value}, headers={TOKEN_HEADER: agent.token}) as resp:
            helpers.assert_error(resp.status, await resp.json(), 422, 3)
    async with client.get(SPEEDTEST_PATH, headers={"api-key": alice.key}) as resp:
        helpers.assert_error(resp.status, await resp.json(), 401, 4)


# --- states --------------------------------------------------------------------------


async def test_reported_states_show_in_the_list(alice, agent):
    status, body = await alice.addtask(agent.hwid)
    taskid = body["taskid"]
    command = await agent.command()
    await agent.ack(command["id"])
    assert (await alice.task(taskid))["state"] == 2
    await agent.state(taskid, 3)
    await alice.wait_state(taskid, 3)
    await agent.state(taskid, 5, "exited with code 3")
    task = await alice.wait_state(taskid, 5)
    assert task["error_msg"] == "exited with code 3"


async def test_pull_error_reported(alice, agent):
    status, body = await alice.addtask(agent.hwid, image="megamind.network/doesnotexist")
    command = await agent.command()
    await agent.ack(command["id"])
    await agent.state(body["taskid"], 5, "pull failed: manifest unknown")
    await alice.wait_state(body["taskid"], 5, "pull failed: manifest unknown")
    # The executor is free again.
    assert [i["hwid"] for i in (await alice.gethwlist())[1]] == [agent.hwid]


async def test_disconnect_turns_running_into_unknown_and_finished_stays(alice, agent):
    stopped, _ = await alice.start_task(agent)
    await agent.state(stopped, 4)
    await alice.wait_state(stopped, 4)
    running, _ = await alice.start_task(agent)

    await agent.disconnect()
    assert (await alice.task(running))["state"] == 1
    assert (await alice.task(stopped))["state"] == 4

    # Back with an inventory that shows the container running: running again.
    await agent.connect(inventory=[{"taskid": running, "status": "running", "exit_code": None},
                                   {"taskid": stopped, "status": "exited", "exit_code": 0}])
    assert (await alice.task(running))["state"] == 3
    assert (await alice.task(stopped))["state"] == 4


async def test_setup_task_shows_unknown_while_offline(alice, agent):
    status, body = await alice.addtask(agent.hwid)
    await agent.disconnect()
    assert (await alice.task(body["taskid"]))["state"] == 1


async def test_container_exited_while_away(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.disconnect()
    await agent.connect(inventory=[{"taskid": taskid, "status": "exited", "exit_code": 3}])
    task = await alice.task(taskid)
    assert (task["state"], task["error_msg"]) == (5, "exited with code 3")


async def test_vanished_container(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.disconnect()
    await agent.connect(inventory=[])
    task = await alice.task(taskid)
    assert (task["state"], task["error_msg"]) == (5, "container vanished")
    assert [i["hwid"] for i in (await alice.gethwlist())[1]] == [agent.hwid]


async def test_inventory_message_reconciles_too(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.inventory([])
    await alice.wait_state(taskid, 5, "container vanished")


async def test_unacknowledged_start_is_not_judged_vanished(alice, agent):
    status, body = await alice.addtask(agent.hwid)
    command = await agent.command()  # received, never acknowledged
    await agent.disconnect()
    await agent.connect(inventory=[])
    assert (await alice.task(body["taskid"]))["state"] == 2
    again = await agent.command()
    assert again == command


async def test_container_of_deleted_task_is_removed(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await alice.deltask(taskid)
    remove = await agent.command()
    assert (remove["op"], remove["taskid"]) == ("remove", taskid)
    await agent.ack(remove["id"])  # ...but the container survived
    await agent.disconnect()

    await agent.connect(inventory=[{"taskid": taskid, "status": "running", "exit_code": None}])
    again = await agent.command()
    assert (again["op"], again["taskid"]) == ("remove", taskid)
    assert again["id"] != remove["id"]
    assert (await alice.gettasklist())[1] == []


async def test_unknown_container_is_removed(agent):
    await agent.disconnect()
    await agent.connect(inventory=[{"taskid": "neverissued", "status": "exited", "exit_code": 0}])
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("remove", "neverissued")


async def test_orphan_in_a_live_inventory_message_is_removed(agent):
    await agent.inventory([{"taskid": "stray", "status": "running", "exit_code": None}])
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("remove", "stray")


async def test_reports_of_another_executors_task_are_ignored(alice, owner, new_agent, helpers):
    a, b = await new_agent(owner), await new_agent(owner)
    taskid, _ = await alice.start_task(a)
    await b.state(taskid, 5, "forged")
    await b.logs(taskid, ["forged"])
    await b.inventory([])  # says nothing about a's task
    await a.logs(taskid, ["genuine"])

    async def genuine():
        body = (await alice.gettasklogs(taskid))[1]
        return base64.b64decode(body["logs_b64"]).decode() or None
    assert await helpers.eventually(genuine) == "genuine\n"
    task = await alice.task(taskid)
    assert (task["state"], task["error_msg"]) == (3, "")


async def test_logs_of_a_deleted_task_are_dropped(alice, agent, store):
    taskid, _ = await alice.start_task(agent)
    await alice.deltask(taskid)
    await agent.logs(taskid, ["late"])
    await agent.inventory([])  # processed after the logs message
    await asyncio.sleep(0.1)
    await store.logs.flush()
    assert await store.logs.tail(taskid) == []
    assert (await store.logs.cursors([taskid])).get(taskid, LogCursor()) == LogCursor()


async def test_a_deleted_task_holds_its_executor_until_its_container_is_gone(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    await alice.deltask(taskid)
    remove = await agent.command()
    assert (remove["op"], remove["taskid"]) == ("remove", taskid)
    await agent.state(taskid, 3)  # the container still runs: the remove has not worked yet
    status, body = await alice.addtask(agent.hwid)
    helpers.assert_error(status, body, 409, 9)
    assert (await alice.gethwlist())[1] == []
    await agent.ack(remove["id"])  # now it is gone
    status, body = await alice.addtask(agent.hwid)
    assert status == 200, body


async def test_a_deleted_task_whose_container_is_not_in_the_inventory_lets_go(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.disconnect()
    await alice.deltask(taskid)
    await agent.connect(inventory=[])  # the container went while the agent was away
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("remove", taskid)
    assert len((await alice.gethwlist())[1]) == 1


async def test_an_agent_of_another_protocol_version_is_told_why(client, owner, new_agent, hub):
    agent = await new_agent(owner, connect=False)
    async with client.ws_connect(AGENT_PATH, headers={TOKEN_HEADER: agent.token}) as ws:
        await ws.send_json({"type": "hello", "protocol": 1, "hardware": {}, "cost": 0, "inventory": []})
        refused = await ws.receive_json(timeout=3)
        assert refused["type"] == "refused" and f"protocol {PROTOCOL_VERSION}" in refused["message"]
        assert (await ws.receive(timeout=3)).type == aiohttp.WSMsgType.CLOSE
        assert ws.close_code == POLICY_VIOLATION
    assert not hub.is_online(agent.hwid)


async def test_an_executor_is_online_only_once_it_told_its_inventory(client, owner, new_agent, hub, alice, helpers):
    agent = await new_agent(owner, connect=False)
    async with client.ws_connect(AGENT_PATH, headers={TOKEN_HEADER: agent.token}) as ws:
        await ws.send_json({"type": "hello", "protocol": PROTOCOL_VERSION, "hardware": {}, "cost": 0})
        assert (await ws.receive_json(timeout=3))["type"] == "welcome"
        await asyncio.sleep(0.05)
        assert not hub.is_online(agent.hwid)
        await ws.send_json({"type": "inventory", "containers": []})
        await helpers.eventually(lambda: _true(hub.is_online(agent.hwid)))


async def test_the_welcome_says_where_each_tasks_output_ends(alice, agent, store):
    taskid, _ = await alice.start_task(agent)
    await agent.logs(taskid, ["one", "two"])
    await agent.logs(taskid, ["err"], stream=Stream.STDERR)
    expected = agent.output.cursors[taskid]
    await agent.disconnect()
    await store.logs.flush()
    welcome = await agent.connect(inventory=[{"taskid": taskid, "status": "running", "exit_code": None}])
    assert LogCursor.from_wire(welcome["cursors"][taskid]) == expected
    assert welcome["results_limit"] > 0


async def test_a_batch_that_does_not_continue_the_stored_output_is_not_kept(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.logs(taskid, ["first"])
    kept = agent.output.cursors[taskid]
    await agent.logs(taskid, ["second"])
    agent.output.cursors[taskid] = kept  # a stale link sends "second" again from where "first" ended
    await agent.logs(taskid, ["second"])
    await agent.logs(taskid, ["third"])  # continues the stale one: not kept either
    agent.output.cursors[taskid] = LogCursor()  # a batch from before everything
    await agent.logs(taskid, ["zeroth"])
    await agent.inventory([{"taskid": taskid, "status": "running", "exit_code": None}])

    async def logs():
        body = (await alice.gettasklogs(taskid))[1]
        return base64.b64decode(body["logs_b64"]).decode()
    await helpers.eventually(logs)
    await asyncio.sleep(0.1)  # every batch above has been handled
    assert await logs() == "first\nsecond\n"


async def _true(value):
    return value


# --- commands while away -------------------------------------------------------------


async def test_deltask_while_the_agent_is_offline(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.disconnect()
    assert await alice.deltask(taskid) == (200, {"code": 0, "message": "ok"})
    assert (await alice.gettasklist())[1] == []

    await agent.connect(inventory=[{"taskid": taskid, "status": "running", "exit_code": None}])
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("remove", taskid)
    await agent.no_command()  # one remove, not two


async def test_deltask_before_the_start_was_delivered(alice, agent):
    await agent.disconnect()
    # The executor went offline between gethwlist and deltask: the start never left.
    status, body = await alice.addtask(agent.hwid)
    assert status == 409
    await agent.connect()
    status, body = await alice.addtask(agent.hwid)
    start = await agent.command()
    await agent.disconnect()
    assert (await alice.deltask(body["taskid"]))[0] == 200
    await agent.connect(inventory=[])
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("remove", body["taskid"])
    assert command["id"] != start["id"]
    await agent.no_command()  # the pending start was cancelled


async def test_unacknowledged_commands_are_resent_with_the_same_id(alice, agent):
    status, body = await alice.addtask(agent.hwid, params="p")
    first = await agent.command()
    await agent.disconnect()

    await agent.connect(inventory=[{"taskid": body["taskid"], "status": "busy", "exit_code": None}])
    resent = await agent.command()
    assert resent == first
    await agent.no_command()

    await agent.ack(resent["id"])
    await agent.disconnect()
    await agent.connect(inventory=[{"taskid": body["taskid"], "status": "running", "exit_code": None}])
    await agent.no_command()
    assert (await alice.task(body["taskid"]))["state"] == 3


async def test_commands_are_sent_in_order_on_reconnect(alice, owner, agent):
    tasks = []
    for _ in range(4):  # one after another on the one executor, each ended
        taskid, _ = await alice.start_task(agent)
        await agent.state(taskid, 4)
        await alice.wait_state(taskid, 4)
        tasks.append(taskid)
    await alice.restarttask(tasks[0])
    restart = await agent.command()
    await agent.disconnect()
    # Issued while it is offline, in an order that is neither the tasks' nor their ids' (the
    # inventory's below), either way round: the order the agent must get them in.
    others = {tuple(order) for base in (tasks, sorted(tasks)) for order in (base, base[::-1])}
    issued = next(list(order) for order in itertools.permutations(tasks) if order not in others)
    for taskid in issued:
        assert (await alice.deltask(taskid))[0] == 200
    await agent.connect(inventory=[{"taskid": t, "status": "exited", "exit_code": 0} for t in sorted(tasks)])
    # The restart was cancelled by the delete of its task; each remove comes once, in order.
    commands = [await agent.command() for _ in issued]
    assert [(c["op"], c["taskid"]) for c in commands] == [("remove", t) for t in issued]
    ids = [c["id"] for c in commands]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) and ids[0] > restart["id"]
    await agent.no_command()


async def test_each_command_is_sent_once_per_connection(alice, agent):
    status, body = await alice.addtask(agent.hwid)
    command = await agent.command()
    # An inventory while the start is pending must not send it again.
    await agent.inventory([])
    await agent.no_command()
    assert (await alice.task(body["taskid"]))["state"] == 2
    await agent.ack(command["id"])


async def test_unexpected_error_on_the_channel_closes_it_cleanly(alice, agent, store, monkeypatch):
    taskid, _ = await alice.start_task(agent)

    async def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(store.tasks, "set_states", broken)
    await agent.state(taskid, 4)
    message = await agent.ws.receive(timeout=3)
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert agent.ws.close_code == aiohttp.WSCloseCode.INTERNAL_ERROR
    await agent.disconnect()

    monkeypatch.undo()
    await agent.connect(inventory=[{"taskid": taskid, "status": "exited", "exit_code": 0}])
    assert (await alice.task(taskid))["state"] == 4
