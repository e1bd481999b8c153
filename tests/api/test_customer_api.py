"""The six customer calls through the real application, shapes exactly as the contract."""

import asyncio
import base64

import pytest

from megamind.protocol import Stream

HW_KEYS = {"hwid", "gpus", "cpus", "ram", "network", "calculated_perfomance_rating", "cost"}
TASK_KEYS = {"taskid", "ip", "image", "params", "state", "error_msg"}
DIGEST = "sha256:" + "0123456789abcdef" * 4


def decode_logs(body):
    return base64.b64decode(body["logs_b64"], validate=True).decode("utf-8")


# --- gethwlist -----------------------------------------------------------------------


async def test_gethwlist_shape(alice, agent, helpers):
    status, body = await alice.gethwlist()
    assert status == 200
    assert isinstance(body, list) and len(body) == 1
    item = body[0]
    assert set(item) == HW_KEYS
    assert item == {
        "hwid": agent.hwid,
        "gpus": ["nVidia 1060 6G", "nVidia 1060 6G"],
        "cpus": ["Intel i7 7700K 3.4 GHz"],
        "ram": 32000,
        "network": "100mbit",
        "calculated_perfomance_rating": 4.5,
        "cost": 0.5,
    }
    assert isinstance(item["hwid"], str) and len(item["hwid"]) == 16
    assert isinstance(item["ram"], int)
    assert isinstance(item["calculated_perfomance_rating"], float)
    assert isinstance(item["cost"], float)
    assert all(isinstance(g, str) for g in item["gpus"] + item["cpus"])


async def test_gethwlist_numbers_are_floats_even_when_whole(alice, owner, new_agent, helpers):
    hardware = {**helpers.HARDWARE, "calculated_perfomance_rating": 5, "gpus": []}
    await new_agent(owner, hardware=hardware, cost=1)
    status, [item] = await alice.gethwlist()
    assert status == 200
    assert item["gpus"] == []
    assert isinstance(item["calculated_perfomance_rating"], float) and item["calculated_perfomance_rating"] == 5.0
    assert isinstance(item["cost"], float) and item["cost"] == 1.0


async def test_gethwlist_reflects_the_hello_hardware(alice, owner, new_agent, helpers):
    agent = await new_agent(owner, hardware={"cpus": ["old cpu"]}, cost=0.1)
    await agent.disconnect()
    await agent.connect(hardware={**helpers.HARDWARE, "ram": 64000}, cost=2.5)
    status, [item] = await alice.gethwlist()
    assert (item["ram"], item["cost"], item["cpus"]) == (64000, 2.5, helpers.HARDWARE["cpus"])


async def test_gethwlist_lists_only_online_and_free(alice, owner, new_agent):
    free = await new_agent(owner)
    busy = await new_agent(owner)
    offline = await new_agent(owner, connect=False)
    gone = await new_agent(owner)
    await alice.start_task(busy)
    await gone.disconnect()

    status, body = await alice.gethwlist()
    assert status == 200
    assert [item["hwid"] for item in body] == [free.hwid]
    assert offline.hwid not in {item["hwid"] for item in body}


async def test_gethwlist_empty_is_an_array(alice):
    assert await alice.gethwlist() == (200, [])


async def test_executor_is_free_again_after_its_task_finished(alice, agent):
    taskid, _ = await alice.start_task(agent)
    assert (await alice.gethwlist())[1] == []
    await agent.state(taskid, 4)
    await alice.wait_state(taskid, 4)
    assert [i["hwid"] for i in (await alice.gethwlist())[1]] == [agent.hwid]


# --- addtask -------------------------------------------------------------------------


async def test_addtask_answer_and_the_command_the_agent_gets(alice, agent, helpers):
    params = '{ "param1": "value1" }\n-x \'quoted\' $HOME ünïcode'
    status, body = await alice.addtask(agent.hwid, image="megamind.network/helloworld", params=params)
    assert status == 200
    assert set(body) == {"taskid"}
    assert isinstance(body["taskid"], str) and len(body["taskid"]) >= 20

    command = await agent.command()
    assert command == {
        "type": "command",
        "id": command["id"],
        "op": "start",
        "taskid": body["taskid"],
        "image": f"{helpers.REGISTRY}/helloworld:latest",
        "public_image": "megamind.network/helloworld:latest",
        "params": params,
        "inputs": [],
        # A client that sends only the contract's fields runs the image as built, with no limit.
        "spec": {"command": None, "env": {}, "workdir": None, "ports": [], "limits": {}},
        # Minted as it was sent: tests/api/test_registry_auth.py says what it grants.
        "pull_token": command["pull_token"],
    }
    assert isinstance(command["id"], int)

    status, tasks = await alice.gettasklist()
    assert status == 200
    assert tasks == [{
        "taskid": body["taskid"],
        "ip": "127.0.0.1",
        "image": "megamind.network/helloworld:latest",
        "params": params,
        "state": 2,
        "error_msg": "",
    }]


async def test_addtask_params_may_be_empty_or_left_out(alice, owner, new_agent):
    first, second = await new_agent(owner), await new_agent(owner)
    status, body = await alice.addtask(first.hwid, params="")
    assert status == 200
    assert (await first.command())["params"] == ""
    status, body = await alice.call(
        "POST", "/api/v1/addtask", json={"image": "megamind.network/helloworld:v2", "hwid": second.hwid}
    )
    assert status == 200
    command = await second.command()
    assert command["params"] == ""
    assert command["public_image"] == "megamind.network/helloworld:v2"


async def test_addtask_task_ids_differ(alice, owner, new_agent):
    ids = set()
    for _ in range(3):
        agent = await new_agent(owner)
        status, body = await alice.addtask(agent.hwid)
        assert status == 200
        ids.add(body["taskid"])
    assert len(ids) == 3


async def test_addtask_unknown_hwid(alice, helpers):
    status, body = await alice.addtask("nosuchexecutor00")
    message = helpers.assert_error(status, body, 404, 8)
    assert "nosuchexecutor00" in message


async def test_addtask_offline_executor(alice, owner, new_agent, helpers):
    never = await new_agent(owner, connect=False)
    status, body = await alice.addtask(never.hwid)
    assert never.hwid in helpers.assert_error(status, body, 409, 10)

    was_here = await new_agent(owner)
    await was_here.disconnect()
    status, body = await alice.addtask(was_here.hwid)
    helpers.assert_error(status, body, 409, 10)
    assert (await alice.gettasklist())[1] == []


async def test_addtask_busy_executor(alice, new_account, agent, helpers):
    await alice.start_task(agent)
    bob = await new_account("bob")
    status, body = await bob.addtask(agent.hwid)
    assert agent.hwid in helpers.assert_error(status, body, 409, 9)
    status, body = await alice.addtask(agent.hwid)
    helpers.assert_error(status, body, 409, 9)
    assert (await bob.gettasklist())[1] == []


async def test_addtask_busy_while_in_setup(alice, agent, helpers):
    status, _ = await alice.addtask(agent.hwid)
    assert status == 200
    status, body = await alice.addtask(agent.hwid)
    helpers.assert_error(status, body, 409, 9)


async def test_two_concurrent_addtask_one_executor(alice, new_account, agent, helpers):
    bob = await new_account("bob")
    results = await asyncio.gather(alice.addtask(agent.hwid), bob.addtask(agent.hwid))
    statuses = sorted(status for status, _ in results)
    assert statuses == [200, 409]
    for status, body in results:
        if status == 409:
            helpers.assert_error(status, body, 409, 9)
        else:
            winner = body["taskid"]
    command = await agent.command()
    assert command["taskid"] == winner
    await agent.no_command()
    listed = (await alice.gettasklist())[1] + (await bob.gettasklist())[1]
    assert [t["taskid"] for t in listed] == [winner]


async def test_many_concurrent_addtask_one_executor(alice, agent):
    results = await asyncio.gather(*(alice.addtask(agent.hwid) for _ in range(10)))
    assert sorted(status for status, _ in results) == [200] + [409] * 9
    assert len((await alice.gettasklist())[1]) == 1


@pytest.mark.parametrize("image", [
    "docker.io/x",
    "docker.io/library/ubuntu:latest",
    "ubuntu",
    "megamind.network/UPPER",
    "megamind.network/x;rm -rf",
    "megamind.network/x;rm -rf /",
    "megamind.network/../x",
    "megamind.network/x\n",
    "megamind.network.evil.com/x",
    "",
    "megamind.network/" + "a" * 283,  # 300 characters
])
async def test_addtask_refuses_other_images(alice, agent, helpers, image):
    status, body = await alice.addtask(agent.hwid, image=image)
    message = helpers.assert_error(status, body, 422, 16)
    assert "image" in message
    await agent.no_command(0.05)
    assert (await alice.gettasklist())[1] == []


async def test_addtask_digest_form(alice, agent, helpers):
    status, body = await alice.addtask(agent.hwid, image=f"megamind.network/helloworld@{DIGEST}")
    assert status == 200
    command = await agent.command()
    assert command["image"] == f"{helpers.REGISTRY}/helloworld@{DIGEST}"
    assert command["public_image"] == f"megamind.network/helloworld@{DIGEST}"
    assert (await alice.task(body["taskid"]))["image"] == f"megamind.network/helloworld@{DIGEST}"


async def test_addtask_explicit_tag_and_nested_name(alice, agent, helpers):
    status, body = await alice.addtask(agent.hwid, image="megamind.network/team/app:v1.2")
    assert status == 200
    command = await agent.command()
    assert command["image"] == f"{helpers.REGISTRY}/team/app:v1.2"
    assert (await alice.task(body["taskid"]))["image"] == "megamind.network/team/app:v1.2"


async def test_addtask_form_urlencoded_json_body(alice, agent, helpers):
    """curl -d sends JSON as application/x-www-form-urlencoded: accepted."""
    import json
    raw = json.dumps({"image": helpers.IMAGE, "params": "-p 1", "hwid": agent.hwid})
    status, body = await alice.call(
        "POST", "/api/v1/addtask", data=raw, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200, body
    assert (await agent.command())["params"] == "-p 1"


# --- deltask -------------------------------------------------------------------------


async def test_deltask(alice, agent):
    taskid, _ = await alice.start_task(agent)
    assert await alice.deltask(taskid) == (200, {"code": 0, "message": "ok"})
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("remove", taskid)
    assert (await alice.gettasklist()) == (200, [])
    # The executor is offered again once its agent says the container is gone.
    assert (await alice.gethwlist())[1] == []
    await agent.ack(command["id"])
    assert [i["hwid"] for i in (await alice.gethwlist())[1]] == [agent.hwid]


async def test_deltask_twice_is_not_found(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    assert (await alice.deltask(taskid))[0] == 200
    status, body = await alice.deltask(taskid)
    assert taskid in helpers.assert_error(status, body, 404, 7)
    for call in (alice.gettasklogs, alice.restarttask):
        status, body = await call(taskid)
        helpers.assert_error(status, body, 404, 7)


async def test_deltask_of_finished_task(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.state(taskid, 5, "exited with code 3")
    await alice.wait_state(taskid, 5)
    assert await alice.deltask(taskid) == (200, {"code": 0, "message": "ok"})
    assert (await agent.command())["op"] == "remove"
    assert (await alice.gettasklist())[1] == []


# --- gettasklist ---------------------------------------------------------------------


async def test_gettasklist_empty_is_an_array(alice):
    assert await alice.gettasklist() == (200, [])


async def test_gettasklist_shape_and_finished_tasks_stay(alice, owner, new_agent):
    a, b = await new_agent(owner), await new_agent(owner)
    first, _ = await alice.start_task(a, params="-param1")
    second, _ = await alice.start_task(b)
    await a.state(first, 5, "exited with code 3")
    await alice.wait_state(first, 5)
    status, tasks = await alice.gettasklist()
    assert status == 200 and isinstance(tasks, list)
    assert [t["taskid"] for t in tasks] == [first, second]
    for item in tasks:
        assert set(item) == TASK_KEYS
        assert all(isinstance(item[k], str) for k in TASK_KEYS - {"state"})
        assert isinstance(item["state"], int) and not isinstance(item["state"], bool)
        assert item["ip"] == "127.0.0.1"
    assert tasks[0]["params"] == "-param1"
    assert (tasks[0]["state"], tasks[0]["error_msg"]) == (5, "exited with code 3")
    assert (tasks[1]["state"], tasks[1]["error_msg"]) == (3, "")


async def test_gettasklist_is_per_account(alice, new_account, agent):
    taskid, _ = await alice.start_task(agent)
    bob = await new_account("bob")
    assert await bob.gettasklist() == (200, [])
    assert [t["taskid"] for t in (await alice.gettasklist())[1]] == [taskid]


# --- restarttask ---------------------------------------------------------------------


async def test_restarttask_of_finished_task(alice, agent):
    taskid, start = await alice.start_task(agent, params="x")
    await agent.state(taskid, 4)
    await alice.wait_state(taskid, 4)

    assert await alice.restarttask(taskid) == (200, {"code": 0, "message": "ok"})
    command = await agent.command()
    assert command["op"] == "restart"
    assert command["taskid"] == taskid
    assert command["id"] != start["id"]
    assert {k: command[k] for k in ("image", "public_image", "params")} == \
        {k: start[k] for k in ("image", "public_image", "params")}
    task = await alice.task(taskid)
    assert (task["state"], task["error_msg"]) == (2, "")
    # The executor is held again.
    assert (await alice.gethwlist())[1] == []
    await agent.ack(command["id"])
    await agent.state(taskid, 3)
    await alice.wait_state(taskid, 3)


async def test_restarttask_of_running_task(alice, agent):
    taskid, _ = await alice.start_task(agent)
    assert (await alice.restarttask(taskid))[0] == 200
    assert (await agent.command())["op"] == "restart"
    assert (await alice.task(taskid))["state"] == 2


async def test_restarttask_clears_the_error(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.state(taskid, 5, "exited with code 1")
    await alice.wait_state(taskid, 5, "exited with code 1")
    assert (await alice.restarttask(taskid))[0] == 200
    assert (await alice.task(taskid))["error_msg"] == ""


async def test_restarttask_executor_offline(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.state(taskid, 4)
    await alice.wait_state(taskid, 4)
    await agent.disconnect()
    status, body = await alice.restarttask(taskid)
    helpers.assert_error(status, body, 409, 10)
    assert (await alice.task(taskid))["state"] == 4


async def test_restarttask_executor_taken(alice, new_account, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.state(taskid, 4)
    await alice.wait_state(taskid, 4)
    bob = await new_account("bob")
    await bob.start_task(agent)
    status, body = await alice.restarttask(taskid)
    helpers.assert_error(status, body, 409, 9)
    assert (await alice.task(taskid))["state"] == 4
    await agent.no_command(0.1)


# --- gettasklogs ---------------------------------------------------------------------


async def test_gettasklogs_shape_when_empty(alice, agent):
    taskid, _ = await alice.start_task(agent)
    status, body = await alice.gettasklogs(taskid)
    assert status == 200
    assert body == {"taskid": taskid, "logs_b64": ""}


async def test_gettasklogs_last_20_oldest_first(alice, agent, store, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.logs(taskid, [f"line {i}" for i in range(1, 16)])
    await agent.logs(taskid, [f"line {i}" for i in range(16, 31)])

    async def logs_of_30():
        status, body = await alice.gettasklogs(taskid)
        return body if "line 30" in decode_logs(body) else None
    body = await helpers.eventually(logs_of_30)
    assert set(body) == {"taskid", "logs_b64"} and body["taskid"] == taskid
    text = decode_logs(body)
    assert text.endswith("\n")
    assert text.split("\n")[:-1] == [f"line {i}" for i in range(11, 31)]
    assert text.count("\n") == 20

    # Written behind, read back the same after the flush and with the agent away.
    await store.logs.flush()
    await agent.disconnect()
    status, body = await alice.gettasklogs(taskid)
    assert status == 200 and decode_logs(body) == text


async def test_gettasklogs_one_big_batch_keeps_the_last_20(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.logs(taskid, [f"n{i}" for i in range(100)])

    async def tail():
        text = decode_logs((await alice.gettasklogs(taskid))[1])
        return text or None
    text = await helpers.eventually(tail)
    assert text == "".join(f"n{i}\n" for i in range(80, 100))


async def test_gettasklogs_utf8_and_empty_lines(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.logs(taskid, ["Hello world!", "", "привет ✓"])

    async def tail():
        return decode_logs((await alice.gettasklogs(taskid))[1]) or None
    assert await helpers.eventually(tail) == "Hello world!\n\nпривет ✓\n"


async def test_gettasklogs_after_the_task_finished(alice, agent, store, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.logs(taskid, ["done"])
    await agent.state(taskid, 4)
    await alice.wait_state(taskid, 4)
    # Finished means complete: the last line is there, and already stored.
    assert decode_logs((await alice.gettasklogs(taskid))[1]) == "done\n"
    assert await store.db.fetchone("SELECT 1 FROM log_lines WHERE taskid = ? AND text = 'done'", (taskid,))


async def test_gettasklogs_is_the_last_20_stdout_lines_with_stderr_interleaved(alice, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    for i in range(30):
        await agent.logs(taskid, [f"out {i}"], stream=Stream.STDOUT)
        await agent.logs(taskid, [f"err {i}"], stream=Stream.STDERR)

    async def tail():
        text = decode_logs((await alice.gettasklogs(taskid))[1])
        return text if "out 29" in text else None
    assert await helpers.eventually(tail) == "".join(f"out {i}\n" for i in range(10, 30))
