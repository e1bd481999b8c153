"""The job fields of addtask, placement, the queue, cancel and /api/v1/hardware, through the real
application and fake agents that report different hardware."""

import asyncio
import dataclasses

import pytest

from megamind.api.keys import store_key
from megamind.jobspec import queue_timed_out

IMAGE = "megamind.network/helloworld:latest"
EMPTY_SPEC = {"command": None, "env": {}, "workdir": None, "ports": [], "limits": {}}


def hardware(gpus: int = 0, vram: int = 6000, cpu_count: int = 4, ram: int = 16000, rating: float = 2.0,
             model: str = "nVidia 1060 6G") -> dict:
    """What an agent says in hello, with the figures placement reads."""
    return {"gpus": [model] * gpus, "gpu_memory_mb": [vram] * gpus, "cpus": ["cpu"], "cpu_count": cpu_count,
            "cpu_limit": None, "ram": ram, "network": "1gbit", "calculated_perfomance_rating": rating}


@pytest.fixture
def config(config):
    # Queue timeouts end within a test, watched by polling faster than the default rate limit allows.
    return dataclasses.replace(config, queue_sweep_s=0.05, rate_limit="none")


async def submit(api, **fields):
    """addtask without a hwid unless given: (status, body)."""
    return await api.call("POST", "/api/v1/addtask", json={"image": IMAGE, **fields})


async def submitted(api, **fields) -> str:
    status, body = await submit(api, **fields)
    assert status == 200, body
    return body["taskid"]


async def detail(api, taskid: str) -> dict:
    status, body = await api.call("GET", f"/api/v1/task/{taskid}")
    assert status == 200, body
    return body


async def started(agent, taskid: str | None = None) -> dict:
    """The agent takes the next command, a start, acknowledges it and reports running."""
    command = await agent.command()
    assert command["op"] == "start", command
    assert taskid is None or command["taskid"] == taskid
    await agent.ack(command["id"])
    await agent.state(command["taskid"], 3)
    return command


# --- the fields ---------------------------------------------------------------------


async def test_every_field_reaches_the_agent_and_the_detail(alice, owner, new_agent, helpers):
    agent = await new_agent(owner, hardware=hardware(gpus=1, cpu_count=8), cost=0.7)
    fields = {
        "requirements": {"gpus": 1, "gpu_model": "1060", "min_vram_mb": 6000, "cpus": 4, "ram": 8000,
                         "max_cost": 1.0, "min_rating": 1.5},
        "command": "python -c 'print(1)' \"a b\"",
        "env": {"EPOCHS": "3", "_x": ""},
        "workdir": "/work",
        "ports": [8888, {"container": 22, "host": 2222}],
        "limits": {"cpus": 2.5, "memory": 4096, "cputime": 3600, "runtime": 7200},
        "priority": 70,
        "queue_timeout": 600,
    }
    taskid = await submitted(alice, **fields)
    command = await started(agent, taskid)
    assert command["spec"] == {
        "command": ["python", "-c", "print(1)", "a b"],  # split as a shell would, and run by none
        "env": {"EPOCHS": "3", "_x": ""},
        "workdir": "/work",
        "ports": [{"container": 8888, "host": None}, {"container": 22, "host": 2222}],
        "limits": {"cpus": 2.5, "memory": 4096, "cputime": 3600, "runtime": 7200},
    }
    await agent.send({"type": "state", "taskid": taskid, "state": 3, "error_msg": "",
                      "ports": [{"container": 8888, "host": 32768}, {"container": 22, "host": 2222}]})

    async def reported():
        return (await detail(alice, taskid))["ports"]
    assert await helpers.eventually(reported) == [
        {"container": 8888, "host": 32768, "address": "127.0.0.1"},
        {"container": 22, "host": 2222, "address": "127.0.0.1"}]
    body = await detail(alice, taskid)
    assert body["requirements"] == fields["requirements"]
    assert body["command"] == ["python", "-c", "print(1)", "a b"]
    assert (body["env"], body["workdir"], body["limits"]) == (fields["env"], "/work", fields["limits"])
    assert (body["priority"], body["hwid"], body["price"], body["cancelled"]) == (70, agent.hwid, 0.7, False)
    assert body["phase"] is None and body["queue_position"] is None and body["pending_reason"] is None
    assert body["placed_at"] is not None and body["state"] == 3


async def test_labels_are_kept_with_the_task_and_listed_by_them(alice, agent, client):
    labels = {"jobproxy.user": "ann", "team": "vision models"}
    taskid = await submitted(alice, hwid=agent.hwid, labels=labels)
    other = await submitted(alice, labels={"team": "other"})
    assert (await detail(alice, taskid))["labels"] == labels
    assert (await detail(alice, other))["labels"] == {"team": "other"}
    account = await client.app[store_key].accounts.get_by_name(alice.name)
    listed = await client.app[store_key].tasks.details_for_account(account.id, label=("team", "vision models"))
    assert [d.task.taskid for d in listed] == [taskid]


async def test_a_command_list_is_run_as_given(alice, agent):
    await submitted(alice, command=["sh", "-c", "echo 'a  b'"])
    assert (await agent.command())["spec"]["command"] == ["sh", "-c", "echo 'a  b'"]


async def test_a_client_of_the_contract_sees_no_difference(alice, agent, helpers):
    status, body = await alice.addtask(agent.hwid, params="p")
    assert status == 200 and set(body) == {"taskid"}
    command = await agent.command()
    assert command == {"type": "command", "id": command["id"], "op": "start", "taskid": body["taskid"],
                       "image": f"{helpers.REGISTRY}/helloworld:latest", "public_image": IMAGE, "params": "p",
                       "inputs": [], "spec": EMPTY_SPEC, "pull_token": command["pull_token"]}
    task = await detail(alice, body["taskid"])
    assert (task["requirements"], task["command"], task["env"], task["workdir"], task["limits"]) == (
        {}, None, {}, None, {})
    assert task["priority"] == 50 and task["ports"] == [] and task["cancelled"] is False


BAD_FIELDS = [
    ({"env": {"1X": "a"}}, "env"),
    ({"env": {"MEGAMIND_PARAMS": "a"}}, "env"),
    ({"env": {"megamind_x": "a"}}, "env"),
    ({"env": {"A": 1}}, "env"),
    ({"workdir": "work"}, "workdir"),
    ({"workdir": "/a/../b"}, "workdir"),
    ({"ports": [0]}, "ports"),
    ({"ports": [70000]}, "ports"),
    ({"ports": ["x"]}, "ports"),
    ({"ports": [{"container": 22, "host": 70000}]}, "ports"),
    ({"ports": [80, 80]}, "ports"),
    ({"ports": [80, {"container": 80, "host": 8080}]}, "ports"),
    ({"ports": [{"container": 80, "host": 9}, {"container": 81, "host": 9}]}, "ports"),
    ({"limits": {"memory": -1}}, "limits.memory"),
    ({"limits": {"memory": 1.5}}, "limits.memory"),
    ({"limits": {"memory": "4096"}}, "limits.memory"),
    ({"limits": {"cpus": 0}}, "limits.cpus"),
    ({"limits": {"runtime": 0}}, "limits.runtime"),
    ({"limits": {"cputime": -5}}, "limits.cputime"),
    ({"limits": {"disk": 1}}, "limits"),
    ({"priority": 101}, "priority"),
    ({"priority": -1}, "priority"),
    ({"priority": True}, "priority"),
    ({"queue_timeout": 0}, "queue_timeout"),
    ({"requirements": {"bogus": 1}}, "requirements"),
    ({"requirements": {"gpus": -1}}, "requirements.gpus"),
    ({"requirements": {"max_cost": "cheap"}}, "requirements.max_cost"),
    ({"command": "a 'b"}, "command"),
    ({"command": "   "}, "command"),
    ({"command": []}, "command"),
    ({"command": ["a", 1]}, "command"),
    ({"command": 5}, "command"),
    ({"labels": {"Team": "a"}}, "labels"),
    ({"labels": {"team": "a\nb"}}, "labels"),
    ({"labels": {"team": 1}}, "labels"),
    ({"labels": {f"k{i}": "v" for i in range(17)}}, "labels"),
    ({"labels": {"team": "x" * 257}}, "labels"),
]


@pytest.mark.parametrize(("fields", "named"), BAD_FIELDS, ids=[repr(f) for f, _ in BAD_FIELDS])
async def test_bad_job_fields_are_refused_naming_the_field(alice, agent, helpers, fields, named):
    for hwid in (None, agent.hwid):  # the same answer whether the platform places it or not
        status, body = await submit(alice, **fields, **({"hwid": hwid} if hwid else {}))
        message = helpers.assert_error(status, body, 422, 3)
        assert named in message, message
    assert await alice.gettasklist() == (200, [])


async def test_hwid_and_requirements_together_are_refused(alice, agent, helpers):
    status, body = await submit(alice, hwid=agent.hwid, requirements={"gpus": 1})
    assert "hwid" in helpers.assert_error(status, body, 422, 3)


async def test_limits_a_named_executor_cannot_hold_are_unsatisfiable(alice, owner, new_agent, helpers):
    agent = await new_agent(owner, hardware=hardware(ram=2000))
    status, body = await submit(alice, hwid=agent.hwid, limits={"memory": 4096})
    assert "ram" in helpers.assert_error(status, body, 422, 20)


async def test_a_requirement_nobody_meets_is_unsatisfiable_and_named(alice, owner, new_agent, helpers):
    await new_agent(owner, hardware=hardware(gpus=2))
    await new_agent(owner, hardware=hardware(gpus=1), connect=False)  # offline executors count too
    status, body = await submit(alice, requirements={"gpus": 4})
    assert "gpus >= 4" in helpers.assert_error(status, body, 422, 20)
    status, body = await submit(alice, requirements={"gpu_model": "a100"})
    assert "a100" in helpers.assert_error(status, body, 422, 20)
    status, tasks = await alice.gettasklist()
    assert tasks == []


async def test_with_no_executor_at_all_a_task_is_unsatisfiable(alice, helpers):
    status, body = await submit(alice)
    assert "no executor" in helpers.assert_error(status, body, 422, 20)


# --- placement and the queue --------------------------------------------------------


async def test_placement_takes_the_cheapest_free_fitting_executor_ties_to_the_higher_rating(
        alice, owner, new_agent):
    dear = await new_agent(owner, hardware=hardware(gpus=1, rating=9.0), cost=2.0)
    cheap_low = await new_agent(owner, hardware=hardware(gpus=1, rating=3.0), cost=0.5)
    cheap_high = await new_agent(owner, hardware=hardware(gpus=1, rating=4.0), cost=0.5)
    cheapest_no_gpu = await new_agent(owner, hardware=hardware(rating=9.0), cost=0.1)
    for expected in (cheap_high, cheap_low, dear):
        taskid = await submitted(alice, requirements={"gpus": 1})
        await started(expected, taskid)
    taskid = await submitted(alice)  # no requirement: only the GPU-less one is left
    await started(cheapest_no_gpu, taskid)


async def test_a_task_waits_when_every_fitting_executor_is_busy(alice, owner, new_agent):
    first = await new_agent(owner, hardware=hardware(gpus=1), cost=0.4)  # placed first: the cheaper
    second = await new_agent(owner, hardware=hardware(gpus=1), cost=0.5)
    await new_agent(owner, hardware=hardware())  # free, but it does not fit
    for agent in (first, second):
        await started(agent, await submitted(alice, requirements={"gpus": 1}))
    queued = await submitted(alice, requirements={"gpus": 1})
    status, tasks = await alice.gettasklist()
    assert next(t for t in tasks if t["taskid"] == queued) == {
        "taskid": queued, "ip": "", "image": IMAGE, "params": "", "state": 2, "error_msg": ""}
    body = await detail(alice, queued)
    assert (body["phase"], body["queue_position"], body["hwid"]) == ("queued", 1, None)
    assert body["pending_reason"] == "2 executors fit; both busy"
    assert body["price"] is None and body["placed_at"] is None


async def test_the_queue_serves_priority_then_age_as_executors_free_up(alice, new_account, owner, new_agent):
    agent = await new_agent(owner, hardware=hardware())
    holder = await submitted(alice)
    await started(agent, holder)
    low = await submitted(alice, priority=10)
    high_old = await submitted(alice, priority=90)
    bob = await new_account("bob")
    high_new = await submitted(bob, priority=90)
    assert [(await detail(alice, t))["queue_position"] for t in (high_old, low)] == [1, 3]
    assert (await detail(bob, high_new))["queue_position"] == 2
    status, body = await alice.call("GET", "/api/v1/queue")
    assert status == 200
    assert [(t["taskid"], t["queue_position"], t["priority"]) for t in body["tasks"]] == [
        (high_old, 1, 90), (low, 3, 10)]  # only the caller's own
    assert body["tasks"][0]["pending_reason"] == "1 executor fits; busy"

    for done, then in ((holder, high_old), (high_old, high_new), (high_new, low)):
        await agent.state(done, 4)  # the holder stopped: the executor takes the queue's head
        await started(agent, then)
    status, body = await alice.call("GET", "/api/v1/queue")
    assert body == {"tasks": []}


async def test_a_queued_task_is_placed_when_a_fitting_executor_comes_online(alice, owner, new_agent):
    agent = await new_agent(owner, hardware=hardware(gpus=2), connect=False)
    taskid = await submitted(alice, requirements={"gpus": 2})
    assert (await detail(alice, taskid))["pending_reason"] == "1 executor fits; offline"
    await agent.connect(hardware=hardware(gpus=2))
    await started(agent, taskid)
    body = await detail(alice, taskid)
    assert (body["hwid"], body["phase"], body["queue_position"]) == (agent.hwid, None, None)


async def test_deltask_takes_a_queued_task_out_of_the_queue(alice, owner, new_agent):
    agent = await new_agent(owner, hardware=hardware())
    holder = await submitted(alice)
    await started(agent, holder)
    queued = await submitted(alice)
    status, body = await alice.deltask(queued)
    assert (status, body) == (200, {"code": 0, "message": "ok"})
    status, tasks = await alice.gettasklist()
    assert [t["taskid"] for t in tasks] == [holder]
    await agent.state(holder, 4)
    await agent.no_command()  # nothing left to place


async def test_restarttask_of_a_queued_task_is_a_conflict(alice, agent, helpers):
    await started(agent, await submitted(alice))
    queued = await submitted(alice)
    status, body = await alice.restarttask(queued)
    helpers.assert_error(status, body, 409, 21)


async def test_a_queue_timeout_ends_the_task_in_error(alice, agent):
    await started(agent, await submitted(alice))
    queued = await submitted(alice, queue_timeout=1)
    task = await alice.wait_state(queued, 5)  # the fixture's 3 s covers the 1 s and a sweep
    assert task["error_msg"] == queue_timed_out(1)
    body = await detail(alice, queued)
    assert body["phase"] is None and body["queue_position"] is None and body["finished_at"] is not None


# --- cancel -------------------------------------------------------------------------


async def test_cancel_of_a_running_task_removes_its_container_and_keeps_it(alice, agent, helpers):
    taskid = await submitted(alice)
    await started(agent, taskid)
    await alice.wait_state(taskid, 3)
    status, body = await alice.call("POST", f"/api/v1/task/{taskid}/cancel")
    assert (status, body) == (200, {"code": 0, "message": "ok"})
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("remove", taskid)
    await alice.wait_state(taskid, 4)
    body = await detail(alice, taskid)
    assert body["cancelled"] is True and body["finished_at"] is not None
    await agent.ack(command["id"])  # the container is gone: the executor takes the next task
    await started(agent, await submitted(alice))


async def test_cancel_of_a_queued_task(alice, agent):
    await started(agent, await submitted(alice))
    queued = await submitted(alice)
    status, _ = await alice.call("POST", f"/api/v1/task/{queued}/cancel")
    assert status == 200
    task = await alice.wait_state(queued, 4)
    assert task["ip"] == ""
    body = await detail(alice, queued)
    assert body["cancelled"] is True and body["queue_position"] is None and body["phase"] is None
    await agent.no_command()


async def test_cancel_of_a_finished_task_changes_nothing(alice, agent):
    taskid = await submitted(alice)
    await started(agent, taskid)
    await agent.state(taskid, 5, "exit code 1")
    before = dict(await alice.wait_state(taskid, 5))
    for _ in range(2):
        status, body = await alice.call("POST", f"/api/v1/task/{taskid}/cancel")
        assert (status, body) == (200, {"code": 0, "message": "ok"})
    assert await alice.task(taskid) == before
    assert (await detail(alice, taskid))["cancelled"] is False
    await agent.no_command()


async def test_cancel_of_an_unknown_or_foreign_task(alice, new_account, agent, helpers):
    taskid = await submitted(alice)
    bob = await new_account("bob")
    for who, path in ((alice, "nosuchtask"), (bob, taskid)):
        status, body = await who.call("POST", f"/api/v1/task/{path}/cancel")
        helpers.assert_error(status, body, 404, 7)


# --- /api/v1/hardware ---------------------------------------------------------------


@pytest.fixture
async def fleet(alice, owner, new_agent):
    """Four executors: free, busy, offline, and a cheap one without GPUs; their hwids by name."""
    agents = {
        "free": await new_agent(owner, hardware=hardware(gpus=2, vram=8000, rating=5.0, ram=64000), cost=1.0),
        "busy": await new_agent(owner, hardware=hardware(gpus=1, rating=3.0), cost=0.8),
        "offline": await new_agent(owner, hardware=hardware(gpus=1, rating=4.0), cost=0.2, connect=False),
        "cpu": await new_agent(owner, hardware=hardware(cpu_count=32, rating=1.0), cost=0.1),
    }
    await started(agents["busy"], await submitted(alice, hwid=agents["busy"].hwid))
    return {name: agent.hwid for name, agent in agents.items()}


async def hardware_list(api, **query):
    status, body = await api.call("GET", "/api/v1/hardware", params={k: str(v) for k, v in query.items()})
    assert status == 200, body
    return body


async def test_hardware_lists_every_executor_with_every_figure(alice, fleet):
    body = await hardware_list(alice)
    assert body["total"] == 4
    assert [e["hwid"] for e in body["executors"]] == [fleet[n] for n in ("cpu", "offline", "busy", "free")]
    free = body["executors"][-1]
    assert set(free) == {"hwid", "gpus", "cpus", "ram", "network", "calculated_perfomance_rating", "cost",
                         "cpu_count", "gpu_memory_mb", "status", "slots"}
    assert (free["status"], free["gpu_memory_mb"], free["cpu_count"], free["slots"]) == ("free", [8000] * 2, 4, 1)
    assert {e["hwid"]: e["status"] for e in body["executors"]} == {
        fleet["cpu"]: "free", fleet["offline"]: "offline", fleet["busy"]: "busy", fleet["free"]: "free"}


@pytest.mark.parametrize(("query", "expected"), [
    ({"gpus": 1}, ["offline", "busy", "free"]),
    ({"gpus": 2}, ["free"]),
    ({"gpu_model": "1060", "min_vram_mb": 7000}, ["free"]),
    ({"cpus": 16}, ["cpu"]),
    ({"ram": 32000}, ["free"]),
    ({"max_cost": 0.8}, ["cpu", "offline", "busy"]),
    ({"min_rating": 3.5}, ["offline", "free"]),
    ({"status": "free"}, ["cpu", "free"]),
    ({"status": "busy"}, ["busy"]),
    ({"status": "offline"}, ["offline"]),
    ({"sort": "rating"}, ["free", "offline", "busy", "cpu"]),
    ({"sort": "cpus"}, ["cpu", "offline", "busy", "free"]),
    ({"sort": "gpus"}, ["free", "offline", "busy", "cpu"]),
    ({"sort": "cost", "limit": 2}, ["cpu", "offline"]),
    ({"sort": "cost", "limit": 2, "offset": 3}, ["free"]),
])
async def test_hardware_filters_sorts_and_pages(alice, fleet, query, expected):
    body = await hardware_list(alice, **query)
    assert [e["hwid"] for e in body["executors"]] == [fleet[n] for n in expected]
    assert body["total"] == (4 if "limit" in query else len(expected))


@pytest.mark.parametrize("query", [
    {"gpus": "-1"}, {"gpus": "x"}, {"gpus": "1.5"}, {"max_cost": "nan"}, {"max_cost": "-1"},
    {"status": "idle"}, {"sort": "name"}, {"limit": "0"}, {"limit": "1001"}, {"offset": "-1"},
    {"gpu_model": ""}, {"nosuch": "1"},
])
async def test_hardware_refuses_bad_query_values(alice, helpers, query):
    status, body = await alice.call("GET", "/api/v1/hardware", params=query)
    message = helpers.assert_error(status, body, 422, 3)
    assert next(iter(query)) in message


# --- many at once ---------------------------------------------------------------------


async def test_simultaneous_submissions_never_share_an_executor(alice, owner, new_agent, store):
    agents = [await new_agent(owner, hardware=hardware(), cost=0.1 * i) for i in range(3)]
    answers = await asyncio.gather(*(submit(alice) for _ in range(12)))
    assert all(status == 200 for status, _ in answers)
    holders = await store.tasks.busy_executors()
    assert holders == {a.hwid for a in agents}
    status, tasks = await alice.gettasklist()
    assert sorted(t["ip"] for t in tasks) == [""] * 9 + ["127.0.0.1"] * 3
