"""The money calls over HTTP (estimate, account, usage, earnings), the refusals of addtask
for money, and metering end to end: fake agents report runs with the engine's times.

The API reads a clock the tests move (`clock`: the ledger, the task store, placement, the
agent channel and the money calls read it), so runs start and end at moments the tests choose, always
after their task was placed, on the whole-millisecond grid the meter bills on.
"""

import base64
import dataclasses
import time

import pytest

import megamind.api.hub as hub_module
import megamind.api.money as money_module
import megamind.store.ledger as ledger_module
import megamind.store.queue as queue_module
import megamind.store.tasks as tasks_module
from megamind.api.keys import store_key
from megamind.metering import SILENCE_GRACE_S
from megamind.money import cost_of, from_micro, to_micro

IMAGE = "megamind.network/helloworld:latest"
OTHER_IMAGE = "megamind.network/other:1"
METER_INTERVAL_S = 0.2


@pytest.fixture
def config(config, request):
    # The background meter runs often enough to stop a task within a test; a test may
    # ask for a platform fee with @pytest.mark.parametrize("config", [fee], indirect=True).
    return dataclasses.replace(config, rate_limit="none", meter_interval_s=METER_INTERVAL_S,
                               platform_fee=getattr(request, "param", 0.0))


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch) -> Clock:
    clock = Clock(round(time.time(), 3))
    for module in (ledger_module, tasks_module, queue_module, hub_module, money_module):
        monkeypatch.setattr(module, "time", clock)
    return clock


def hardware(gpus: int = 0, cpu_count: int = 4, ram: int = 16000, rating: float = 2.0) -> dict:
    return {"gpus": ["nVidia 1060 6G"] * gpus, "gpu_memory_mb": [6000] * gpus, "cpus": ["cpu"],
            "cpu_count": cpu_count, "cpu_limit": None, "ram": ram, "network": "1gbit",
            "calculated_perfomance_rating": rating}


async def report(agent, taskid: str, state: int, *, started_at: float | None = None,
                 finished_at: float | None = None, sent_at: float | None = None, exit_code: int | None = None,
                 error_msg: str = "") -> None:
    """A state message as the agent sends it, with the engine's times (on the agent's clock)."""
    await agent.send({"type": "state", "taskid": taskid, "state": state, "error_msg": error_msg,
                      "exit_code": exit_code, "ports": [], "started_at": started_at, "finished_at": finished_at,
                      "sent_at": sent_at})


async def placed(api, agent, image: str = IMAGE) -> str:
    """addtask on the agent's executor; the agent takes the start and acknowledges it."""
    status, body = await api.addtask(agent.hwid, image=image)
    assert status == 200, body
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("start", body["taskid"])
    await agent.ack(command["id"])
    return body["taskid"]


async def detail(api, taskid: str) -> dict:
    status, body = await api.call("GET", f"/api/v1/task/{taskid}")
    assert status == 200, body
    return body


async def run_for(api, agent, clock: Clock, seconds: float, image: str = IMAGE) -> str:
    """A task placed now that ran ``seconds`` from a second later by the engine's word,
    reported running and then exited."""
    taskid = await placed(api, agent, image)
    clock.now += 1
    started = clock.now
    await report(agent, taskid, 3, started_at=started)
    clock.now += seconds + 1
    await report(agent, taskid, 4, started_at=started, finished_at=started + seconds, exit_code=0)
    await api.wait_state(taskid, 4)
    return taskid


async def run_started(api, agent, clock: Clock) -> str:
    """A task reported running on the agent's executor."""
    taskid = await placed(api, agent)
    await report(agent, taskid, 3, started_at=clock.now)
    await api.wait_state(taskid, 3)
    return taskid


async def all_handled(api, agent, taskid: str, helpers) -> None:
    """Wait until the API has handled every message the agent sent so far: they are handled
    in order, so once a log line sent now shows, so has everything before it."""
    await agent.logs(taskid, ["barrier"])

    async def shown():
        body = (await api.gettasklogs(taskid))[1]
        return "barrier" in base64.b64decode(body["logs_b64"]).decode()
    await helpers.eventually(shown)


async def estimate(api, **fields) -> tuple[int, dict]:
    return await api.call("POST", "/api/v1/estimate", json={"image": IMAGE, **fields})


async def account_of(api) -> dict:
    status, body = await api.call("GET", "/api/v1/account")
    assert status == 200, body
    return body


async def account_id(client, api) -> int:
    return (await client.app[store_key].accounts.get_by_name(api.name)).id


async def insert_charge(store, account_id: int, at: float, micro: int, *, ms: int = 1000, image: str = IMAGE,
                        hwid: str = "hw-a", owner_id: int = 0, fee: int = 0, taskid: str = "t") -> None:
    """A charge row as the ledger writes them, made at ``at``."""
    await store.db.execute(
        "INSERT INTO charges (taskid, seq, account_id, hwid, owner_id, image, period_start, period_end, ms,"
        " price, micro, fee_micro, created_at)"
        " VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM charges WHERE taskid = ?),?,?,?,?,?,?,?,?,?,?,?)",
        (taskid, taskid, account_id, hwid, owner_id, image, at - ms / 1000, at, ms, 1.0, micro, fee, at))


# --- estimate ------------------------------------------------------------------------------------------


async def test_an_estimate_lists_free_fitting_executors_cheapest_first_as_gethwlist_shows_them(
        alice, owner, new_agent):
    dear = await new_agent(owner, hardware=hardware(gpus=1), cost=0.9)
    cheap = await new_agent(owner, hardware=hardware(gpus=1), cost=0.3)
    middle = await new_agent(owner, hardware=hardware(gpus=1), cost=0.6)
    await new_agent(owner, hardware=hardware(), cost=0.1)  # cheaper, but no GPU
    status, body = await estimate(alice, requirements={"gpus": 1})
    assert status == 200, body
    status, hwlist = await alice.gethwlist()
    items = {item["hwid"]: item for item in hwlist}
    assert body == {"fits": 3, "free": [items[a.hwid] for a in (cheap, middle, dear)], "queue_position": 0,
                    "price": 0.3, "estimated_time_seconds": None, "estimated_cost": None}
    status, tasks = await alice.gettasklist()
    assert tasks == []  # nothing was submitted


async def test_an_estimate_shows_at_most_ten_free_executors(alice, owner, new_agent):
    agents = [await new_agent(owner, cost=round(0.1 * (i + 1), 1)) for i in range(12)]
    status, body = await estimate(alice)
    assert status == 200, body
    assert body["fits"] == 12
    assert [item["hwid"] for item in body["free"]] == [a.hwid for a in agents[:10]]


async def test_an_estimate_when_every_fitting_executor_is_busy_gives_the_place_in_the_queue(
        alice, new_account, owner, new_agent, clock):
    busy = await new_agent(owner, hardware=hardware(), cost=0.5)
    await run_started(alice, busy, clock)
    status, body = await estimate(alice)
    assert status == 200, body
    assert (body["fits"], body["free"], body["queue_position"], body["price"]) == (1, [], 1, 0.5)
    bob = await new_account("bob")
    status, queued = await bob.call("POST", "/api/v1/addtask", json={"image": IMAGE, "priority": 50})
    assert status == 200, queued
    assert (await estimate(alice, priority=50))[1]["queue_position"] == 2  # behind bob's
    assert (await estimate(alice, priority=49))[1]["queue_position"] == 2
    assert (await estimate(alice, priority=51))[1]["queue_position"] == 1  # ahead of it


async def test_an_estimate_with_only_offline_executors_fitting_waits_at_their_price(alice, owner, new_agent):
    await new_agent(owner, hardware=hardware(), cost=0.4, connect=False)
    await new_agent(owner, hardware=hardware(), cost=0.2, connect=False)
    await new_agent(owner, hardware=hardware(cpu_count=1), cost=0.01)  # online, too small
    status, body = await estimate(alice, requirements={"cpus": 2})
    assert status == 200, body
    assert (body["fits"], body["free"], body["queue_position"], body["price"]) == (0, [], 1, 0.2)


async def test_an_estimate_takes_the_time_from_the_runtime_limit(alice, owner, new_agent):
    await new_agent(owner, cost=0.7)
    status, body = await estimate(alice, limits={"runtime": 7200})
    assert status == 200, body
    assert (body["price"], body["estimated_time_seconds"], body["estimated_cost"]) == (0.7, 7200.0, 1.4)


async def test_an_estimate_takes_the_time_from_the_median_of_the_images_earlier_runs(
        alice, owner, new_agent, clock):
    agent = await new_agent(owner, cost=1.8)
    for seconds in (2, 10, 4):
        await run_for(alice, agent, clock, seconds)
    await run_for(alice, agent, clock, 500, image=OTHER_IMAGE)
    status, body = await estimate(alice)
    assert status == 200, body
    assert body["estimated_time_seconds"] == pytest.approx(4.0, abs=1e-6)
    assert body["estimated_cost"] == pytest.approx(0.002, abs=1e-6)  # 1.8 * 4 / 3600
    status, body = await estimate(alice, image="megamind.network/never-run:1")
    assert (body["estimated_time_seconds"], body["estimated_cost"]) == (None, None)


async def test_an_estimate_for_a_named_executor(alice, owner, new_agent, clock):
    await new_agent(owner, cost=0.1)  # cheaper, but not the one named
    named = await new_agent(owner, cost=0.8)
    status, body = await estimate(alice, hwid=named.hwid, limits={"runtime": 360})
    assert status == 200, body
    status, hwlist = await alice.gethwlist()
    assert body == {"fits": 1, "free": [next(i for i in hwlist if i["hwid"] == named.hwid)], "queue_position": 0,
                    "price": 0.8, "estimated_time_seconds": 360.0, "estimated_cost": 0.08}
    await run_started(alice, named, clock)
    status, body = await estimate(alice, hwid=named.hwid)
    assert (status, body["free"], body["price"]) == (200, [], 0.8)


async def test_an_estimate_nobody_could_ever_meet_is_unsatisfiable(alice, owner, new_agent, helpers):
    await new_agent(owner, hardware=hardware(gpus=1))
    status, body = await estimate(alice, requirements={"gpus": 8})
    assert "gpus >= 8" in helpers.assert_error(status, body, 422, 20)


async def test_an_estimate_with_a_hwid_and_requirements_is_refused(alice, agent, helpers):
    status, body = await estimate(alice, hwid=agent.hwid, requirements={"gpus": 1})
    assert "hwid" in helpers.assert_error(status, body, 422, 3)


async def test_an_estimate_checks_the_body_as_addtask_does(alice, agent, helpers):
    status, body = await alice.call("POST", "/api/v1/estimate", json={"params": ""})
    assert "image" in helpers.assert_error(status, body, 422, 3)
    status, body = await estimate(alice, limits={"runtime": 0})
    assert "limits.runtime" in helpers.assert_error(status, body, 422, 3)


# --- the account ----------------------------------------------------------------------------------------


async def test_a_new_account_is_not_prepaid_and_has_spent_nothing(alice):
    assert await account_of(alice) == {"name": "alice", "balance": None, "spent_today": 0.0, "spent_month": 0.0,
                                       "spend_limit_per_hour": None, "spent_last_hour": 0.0}


async def test_a_credited_account_shows_its_balance(client, alice):
    await client.app[store_key].spending.credit("alice", "12.345678")
    assert (await account_of(alice))["balance"] == 12.345678


async def test_the_hourly_limit_is_set_and_cleared(alice):
    status, body = await alice.call("PATCH", "/api/v1/account", json={"spend_limit_per_hour": 2.5})
    assert status == 200, body
    assert body["spend_limit_per_hour"] == 2.5 and body["name"] == "alice"
    assert (await account_of(alice))["spend_limit_per_hour"] == 2.5
    status, body = await alice.call("PATCH", "/api/v1/account", json={"spend_limit_per_hour": 0})
    assert (status, body["spend_limit_per_hour"]) == (200, 0.0)
    status, body = await alice.call("PATCH", "/api/v1/account", json={"spend_limit_per_hour": None})
    assert (status, body["spend_limit_per_hour"]) == (200, None)


@pytest.mark.parametrize("raw", [
    '{"spend_limit_per_hour": -1}',
    '{"spend_limit_per_hour": -0.000001}',
    '{"spend_limit_per_hour": NaN}',
    '{"spend_limit_per_hour": Infinity}',
    '{"spend_limit_per_hour": "NaN"}',
    '{"spend_limit_per_hour": "abc"}',
    '{"spend_limit_per_hour": true}',
    '{"spend_limit_per_hour": [1]}',
    '{"spend_limit_per_hour": 1e300}',
    '{"spend_limit_per_hour": 1, "balance": 100}',
    '{}',
    '[]',
])
async def test_a_bad_limit_is_refused_and_changes_nothing(alice, helpers, raw):
    status, body = await alice.call("PATCH", "/api/v1/account", data=raw,
                                    headers={"Content-Type": "application/json"})
    helpers.assert_error(status, body, 422, 3)
    assert (await account_of(alice))["spend_limit_per_hour"] is None


# --- usage and earnings ----------------------------------------------------------------------------------


async def test_usage_per_day_and_image_in_a_range_of_days(client, alice, new_account):
    store = client.app[store_key]
    me, bob = await account_id(client, alice), await account_id(client, await new_account("bob"))
    march_1 = 1_709_251_200.0  # 2024-03-01T00:00:00Z
    await insert_charge(store, me, march_1 - 0.001, 1, taskid="feb")
    await insert_charge(store, me, march_1, 1_500_000, ms=1500, taskid="a")
    await insert_charge(store, me, march_1 + 7200, 250_000, ms=250, image=OTHER_IMAGE, taskid="b")
    await insert_charge(store, me, march_1 + 86_400 + 86_399.5, 2_000_000, ms=2000, taskid="c")
    await insert_charge(store, me, march_1 + 2 * 86_400, 7, taskid="march3")
    await insert_charge(store, bob, march_1 + 10, 999, taskid="bobs")
    status, body = await alice.call("GET", "/api/v1/usage", params={"from": "2024-03-01", "to": "2024-03-02"})
    assert status == 200, body
    assert body == {
        "total": 3.75, "billed_seconds": 3.75,
        "days": [{"day": "2024-03-01", "tasks": 2, "billed_seconds": 1.75, "spent": 1.75},
                 {"day": "2024-03-02", "tasks": 1, "billed_seconds": 2.0, "spent": 2.0}],
        "images": [{"image": IMAGE, "tasks": 2, "billed_seconds": 3.5, "spent": 3.5},
                   {"image": OTHER_IMAGE, "tasks": 1, "billed_seconds": 0.25, "spent": 0.25}],
    }
    # Unix seconds: both bounds included.
    status, body = await alice.call("GET", "/api/v1/usage",
                                    params={"from": str(int(march_1)), "to": str(int(march_1 + 7200))})
    assert (status, body["total"], body["billed_seconds"]) == (200, 1.75, 1.75)


async def test_usage_by_default_covers_this_month_up_to_now(client, alice, owner, new_agent, clock):
    agent = await new_agent(owner, cost=3600)
    await run_for(alice, agent, clock, 2.5)
    status, body = await alice.call("GET", "/api/v1/usage")
    assert status == 200, body
    assert (body["total"], body["billed_seconds"]) == (2.5, 2.5)
    assert [i["image"] for i in body["images"]] == [IMAGE]


@pytest.mark.parametrize("path", ["/api/v1/usage", "/api/v1/earnings"])
@pytest.mark.parametrize("query", [
    {"from": "2024-03-02", "to": "2024-03-01"},
    {"from": "1709337600", "to": "1709251200"},
    {"from": "yesterday"},
    {"to": "2024-13-01"},
    {"from": "-5"},
    {"since": "2024-03-01"},
])
async def test_a_bad_range_is_refused(alice, helpers, path, query):
    status, body = await alice.call("GET", path, params=query)
    helpers.assert_error(status, body, 422, 3)


async def test_earnings_per_executor_of_the_caller_in_a_range(client, alice, owner, new_account):
    store = client.app[store_key]
    me, them = await account_id(client, owner), await account_id(client, await new_account("them"))
    customer = await account_id(client, alice)
    march_1 = 1_709_251_200.0
    await insert_charge(store, customer, march_1, 1_000_000, ms=1000, hwid="hw-a", owner_id=me, fee=200_000,
                        taskid="a")
    await insert_charge(store, customer, march_1 + 60, 500_000, ms=500, hwid="hw-b", owner_id=me, fee=100_000,
                        taskid="b")
    await insert_charge(store, customer, march_1 + 86_400, 9, hwid="hw-a", owner_id=me, taskid="late")
    await insert_charge(store, customer, march_1 + 5, 9, hwid="hw-c", owner_id=them, taskid="theirs")
    status, body = await owner.call("GET", "/api/v1/earnings", params={"from": "2024-03-01", "to": "2024-03-01"})
    assert status == 200, body
    assert body == {"total": 1.2, "executors": [
        {"hwid": "hw-a", "tasks": 1, "billed_seconds": 1.0, "earned": 0.8},
        {"hwid": "hw-b", "tasks": 1, "billed_seconds": 0.5, "earned": 0.4}]}
    status, body = await alice.call("GET", "/api/v1/earnings", params={"from": "2024-03-01"})
    assert (status, body) == (200, {"total": 0.0, "executors": []})


@pytest.mark.parametrize("config", [0.2], indirect=True)
async def test_the_platform_fee_is_kept_from_what_an_executor_earns(alice, owner, new_agent, clock):
    agent = await new_agent(owner, cost=3600)
    await run_for(alice, agent, clock, 2.5)
    status, body = await owner.call("GET", "/api/v1/earnings")
    assert status == 200, body
    assert body == {"total": 2.0, "executors": [
        {"hwid": agent.hwid, "tasks": 1, "billed_seconds": 2.5, "earned": 2.0}]}
    assert (await account_of(alice))["spent_today"] == 2.5


# --- refused for money -------------------------------------------------------------------------------------


async def test_a_prepaid_account_that_cannot_pay_a_minute_is_refused_with_402(client, alice, agent, helpers):
    await client.app[store_key].spending.credit("alice", "0.000001")  # prepaid, and a minute at 0.5 is 0.008333
    status, body = await alice.addtask(agent.hwid)
    assert "credit" in helpers.assert_error(status, body, 402, 22)
    status, body = await alice.call("POST", "/api/v1/addtask", json={"image": IMAGE})  # placed by the API
    helpers.assert_error(status, body, 402, 22)
    await client.app[store_key].spending.credit("alice", "0.008332")
    status, body = await alice.addtask(agent.hwid)
    assert status == 200, body
    status, tasks = await alice.gettasklist()
    assert [t["taskid"] for t in tasks] == [body["taskid"]]


async def test_an_account_past_its_hourly_limit_is_refused_with_402(alice, owner, new_agent, helpers, clock):
    agent = await new_agent(owner, cost=3600)
    await run_for(alice, agent, clock, 3)
    status, body = await alice.call("PATCH", "/api/v1/account", json={"spend_limit_per_hour": 3})
    assert (status, body["spent_last_hour"]) == (200, 3.0)
    status, body = await alice.addtask(agent.hwid)
    assert "limit" in helpers.assert_error(status, body, 402, 23)
    await alice.call("PATCH", "/api/v1/account", json={"spend_limit_per_hour": 3.5})
    status, body = await alice.addtask(agent.hwid)
    assert status == 200, body


# --- metering end to end --------------------------------------------------------------------------------------


async def test_a_run_is_billed_by_the_engines_start_and_end(alice, owner, new_agent, clock):
    agent = await new_agent(owner, cost=1.8)
    taskid = await placed(alice, agent)
    body = await detail(alice, taskid)
    assert (body["billed_seconds"], body["cost"]) == (0.0, 0.0)
    clock.now += 2  # setup: not billed
    started = clock.now
    await report(agent, taskid, 3, started_at=started)
    clock.now += 5
    await report(agent, taskid, 4, started_at=started, finished_at=started + 3.5, exit_code=0)
    await alice.wait_state(taskid, 4)
    body = await detail(alice, taskid)
    assert (body["price"], body["billed_seconds"], body["cost"]) == (1.8, 3.5, 0.00175)
    assert body["cost"] == from_micro(cost_of(to_micro(1.8), 3500)) == 1.8 * 3.5 / 3600
    assert (body["started_at"], body["finished_at"]) == (started, started + 3.5)


async def test_the_same_end_said_again_changes_nothing(alice, owner, new_agent, helpers, clock):
    agent = await new_agent(owner, cost=1.8)
    taskid = await placed(alice, agent)
    started = clock.now
    await report(agent, taskid, 3, started_at=started)
    clock.now += 5
    await report(agent, taskid, 4, started_at=started, finished_at=started + 3.5, exit_code=0)
    await alice.wait_state(taskid, 4)
    for _ in range(3):
        clock.now += 10
        await report(agent, taskid, 4, started_at=started, finished_at=started + 3.5, exit_code=0)
    await all_handled(alice, agent, taskid, helpers)
    body = await detail(alice, taskid)
    assert (body["billed_seconds"], body["cost"]) == (3.5, 0.00175)
    account = await account_of(alice)
    assert (account["spent_today"], account["spent_last_hour"]) == (0.00175, 0.00175)


async def test_the_engines_times_are_moved_onto_the_apis_clock(alice, owner, new_agent, clock):
    """The agent's clock is an hour ahead: its times are taken back by what its sent_at says."""
    agent = await new_agent(owner, cost=3600)
    taskid = await placed(alice, agent)
    ahead = 3600.0
    clock.now += 1
    started = clock.now + ahead
    await report(agent, taskid, 3, started_at=started, sent_at=clock.now + ahead)
    await alice.wait_state(taskid, 3)  # the clock moves on only once it is handled
    clock.now += 5
    await report(agent, taskid, 4, started_at=started, finished_at=started + 3.5, exit_code=0,
                 sent_at=clock.now + ahead)
    await alice.wait_state(taskid, 4)
    body = await detail(alice, taskid)
    assert body["billed_seconds"] == 3.5
    assert body["finished_at"] == pytest.approx(started + 3.5 - ahead, abs=1e-6)


async def test_an_engine_start_before_the_task_was_placed_is_not_billed(alice, owner, new_agent, clock):
    """An engine whose clock is off (a VM's, after a sleep) says the container started two
    hours before the task existed: the customer pays for the time since placement, no more."""
    agent = await new_agent(owner, cost=3600)
    taskid = await placed(alice, agent)
    placed_at = (await detail(alice, taskid))["placed_at"]
    clock.now += 10
    await report(agent, taskid, 3, started_at=placed_at - 7200)
    await report(agent, taskid, 4, started_at=placed_at - 7200, finished_at=placed_at + 5, exit_code=0)
    await alice.wait_state(taskid, 4)
    assert (await detail(alice, taskid))["billed_seconds"] == 5.0


async def test_a_prepaid_task_is_stopped_when_the_balance_runs_out(client, alice, owner, new_agent, helpers, clock):
    store = client.app[store_key]
    agent = await new_agent(owner, cost=3600)  # 1 a second
    await store.spending.credit("alice", 60)  # one minute: enough to start
    taskid = await placed(alice, agent)
    # Spent elsewhere meanwhile: half a second is left.
    await store.db.execute("UPDATE accounts SET balance_micro = 500000 WHERE name = 'alice'")
    await report(agent, taskid, 3, started_at=clock.now)
    await alice.wait_state(taskid, 3)
    clock.now += 1  # the next round of the background meter charges this second
    await alice.wait_state(taskid, 5, "stopped: balance exhausted")
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("remove", taskid)
    assert (await account_of(alice))["balance"] == -0.5
    body = await detail(alice, taskid)
    assert (body["billed_seconds"], body["cost"], body["cancelled"]) == (1.0, 1.0, False)

    # The container's end, when the agent gets to it, adds nothing.
    await agent.ack(command["id"])
    clock.now += 3
    await report(agent, taskid, 4, started_at=clock.now - 4, finished_at=clock.now, exit_code=0)
    await all_handled(alice, agent, taskid, helpers)
    assert (await detail(alice, taskid))["cost"] == 1.0
    status, refused = await alice.call("POST", "/api/v1/addtask", json={"image": IMAGE})
    helpers.assert_error(status, refused, 402, 22)


async def test_a_task_is_stopped_when_the_hourly_limit_is_reached(alice, owner, new_agent, clock):
    agent = await new_agent(owner, cost=3600)
    status, _ = await alice.call("PATCH", "/api/v1/account", json={"spend_limit_per_hour": 0.5})
    assert status == 200
    taskid = await placed(alice, agent)
    await report(agent, taskid, 3, started_at=clock.now)
    await alice.wait_state(taskid, 3)
    clock.now += 1
    await alice.wait_state(taskid, 5, "stopped: hourly spend limit of 0.5 reached")
    command = await agent.command()
    assert (command["op"], command["taskid"]) == ("remove", taskid)
    assert (await account_of(alice))["spent_last_hour"] == 1.0


@pytest.mark.parametrize(("silence", "billed"), [(SILENCE_GRACE_S / 2, 10 + 30 + 20), (2 * SILENCE_GRACE_S, 10 + 20)])
async def test_an_executor_silent_past_the_grace_is_not_billed_for_the_silence(
        alice, owner, new_agent, helpers, clock, silence, billed):
    agent = await new_agent(owner, cost=3600)
    taskid = await placed(alice, agent)
    started = clock.now
    await report(agent, taskid, 3, started_at=started)
    await alice.wait_state(taskid, 3)
    clock.now += 10
    await agent.disconnect()

    async def charged_up_to_the_silence():
        return (await detail(alice, taskid))["billed_seconds"] == 10
    await helpers.eventually(charged_up_to_the_silence)
    clock.now += silence
    await agent.connect(inventory=[helpers.container(taskid, "running")])  # the engine vouches for the run
    clock.now += 20
    await report(agent, taskid, 4, started_at=started, finished_at=clock.now, exit_code=0)
    await alice.wait_state(taskid, 4)
    assert (await detail(alice, taskid))["billed_seconds"] == billed
