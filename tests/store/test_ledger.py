"""The ledger on a real SQLite store: every step of a task's meter written once, with its
charges, the task's totals and the prepaid balance, whatever arrives twice or at once.

The store reads a clock the tests move (`clock`), so runs are placed, started, ticked and
ended at moments the tests choose, on the whole-millisecond grid the meter bills on.
"""

import asyncio
import time

import pytest

import megamind.store.ledger as ledger_module
import megamind.store.queue as queue_module
import megamind.store.tasks as tasks_module
from megamind.metering import SILENCE_GRACE_S
from megamind.money import cost_of, share, to_micro
from megamind.states import TaskState
from megamind.store import Store
from megamind.store.taskmodel import StateUpdate

from .helpers import create_task

RUN = {"image": "127.0.0.1:5000/helloworld:latest", "public_image": "megamind.network/helloworld:latest", "params": ""}
IMAGE = "megamind.network/helloworld:latest"
PRICE = 3600.0  # per hour: a millisecond costs 1000 micro-units


class Clock:
    """The API's clock as the ledger, the task store and placement read it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    clock = Clock(round(time.time(), 3))
    for module in (ledger_module, tasks_module, queue_module):
        monkeypatch.setattr(module, "time", clock)
    return clock


@pytest.fixture
async def owner(store):
    owner, _ = await store.accounts.create("owner")
    return owner


@pytest.fixture
async def executor(store, owner):
    hwid, _ = await store.executors.register(owner.id, {"cpus": ["cpu"]}, PRICE)
    await store.executors.set_online(hwid, True)
    return hwid


async def placed(store, account, hwid) -> str:
    task, _ = await create_task(store, account.id, hwid, IMAGE, "", RUN)
    return task.taskid


def running(taskid: str, started: float) -> StateUpdate:
    """The agent's report of a run the engine started at ``started`` (its run key)."""
    return StateUpdate(taskid, TaskState.RUNNING, "", run_key=started, started_at=started)


def exited(taskid: str, started: float, finished: float) -> StateUpdate:
    return StateUpdate(taskid, TaskState.STOPPED, "", 0, run_key=started, started_at=started, finished_at=finished)


async def started_run(store, account, hwid, clock, setup: float = 2.0) -> tuple[str, float]:
    """A task placed now whose container the engine started ``setup`` seconds later,
    reported running at once: (taskid, the engine's start)."""
    taskid = await placed(store, account, hwid)
    clock.now += setup
    started = clock.now
    await store.tasks.set_states(hwid, [running(taskid, started)])
    return taskid, started


async def charges_of(store, taskid: str | None = None) -> list[dict]:
    where, args = ("WHERE taskid = ?", (taskid,)) if taskid else ("", ())
    rows = await store.db.fetchall(f"SELECT * FROM charges {where} ORDER BY id", args)
    return [dict(r) for r in rows]


async def totals(store, taskid: str) -> tuple[int, int]:
    row = await store.db.fetchone("SELECT billed_ms, cost_micro FROM tasks WHERE taskid = ?", (taskid,))
    return row["billed_ms"], row["cost_micro"]


async def balance(store, account) -> int | None:
    return (await store.spending.account(account.id)).balance_micro


async def assert_totals_are_the_sum_of_the_charges(store) -> None:
    rows = await store.db.fetchall(
        "SELECT t.taskid, t.billed_ms, t.cost_micro, t.meter_seq, COALESCE(SUM(c.ms), 0) AS ms,"
        " COALESCE(SUM(c.micro), 0) AS micro, COUNT(c.id) AS n, COALESCE(MAX(c.seq), 0) AS last"
        " FROM tasks t LEFT JOIN charges c ON c.taskid = t.taskid GROUP BY t.taskid")
    for r in rows:
        assert (r["billed_ms"], r["cost_micro"]) == (r["ms"], r["micro"]), dict(r)
        assert r["meter_seq"] == r["n"] == r["last"], dict(r)


# --- once, whatever arrives twice or at once -----------------------------------------------


async def test_a_three_and_a_half_second_run_is_one_exact_charge(store, account, executor, clock):
    taskid, started = await started_run(store, account, executor, clock)
    clock.now += 4
    await store.tasks.set_states(executor, [exited(taskid, started, started + 3.5)])
    [charge] = await charges_of(store, taskid)
    assert (charge["seq"], charge["ms"], charge["micro"], charge["price"]) == (1, 3500, 3_500_000, PRICE)
    assert (charge["period_start"], charge["period_end"]) == (started, started + 3.5)
    assert (charge["account_id"], charge["hwid"], charge["image"]) == (account.id, executor, IMAGE)
    assert await totals(store, taskid) == (3500, 3_500_000)


async def test_setup_before_the_engines_start_is_not_billed(store, account, executor, clock):
    taskid, started = await started_run(store, account, executor, clock, setup=30)
    clock.now += 1
    await store.tasks.set_states(executor, [exited(taskid, started, started + 1)])
    assert await totals(store, taskid) == (1000, 1_000_000)


async def test_fifty_concurrent_copies_of_a_report_charge_once(store, account, executor, clock):
    for _ in range(20):
        taskid = await placed(store, account, executor)
        clock.now += 1
        started = clock.now
        await asyncio.gather(*(store.tasks.set_states(executor, [running(taskid, started)]) for _ in range(50)))
        assert await charges_of(store, taskid) == []
        clock.now += 5
        end = exited(taskid, started, started + 3.5)
        await asyncio.gather(*(store.tasks.set_states(executor, [end]) for _ in range(50)))
        assert [c["ms"] for c in await charges_of(store, taskid)] == [3500]
        assert await totals(store, taskid) == (3500, 3_500_000)
    await assert_totals_are_the_sum_of_the_charges(store)


async def test_concurrent_ticks_and_ends_bill_the_run_exactly(store, account, executor, clock):
    for round_ in range(20):
        taskid, started = await started_run(store, account, executor, clock)
        clock.now += 10
        end = exited(taskid, started, started + 2.25)
        steps = [store.ledger.tick(watched_only=False) for _ in range(10)]
        steps += [store.tasks.set_states(executor, [end]) for _ in range(10)]
        steps.insert(round_ % len(steps), store.ledger.tick(watched_only=False))
        await asyncio.gather(*steps)
        charges = await charges_of(store, taskid)
        # A tick before the end charged up to its moment, and the end gave the excess back.
        assert sum(c["ms"] for c in charges) == 2250
        assert sum(c["micro"] for c in charges) == cost_of(to_micro(PRICE), 2250)
        assert [c["seq"] for c in charges] == list(range(1, len(charges) + 1))
    await assert_totals_are_the_sum_of_the_charges(store)


async def test_two_api_processes_on_one_database_charge_a_run_once(store, account, executor, tmp_path, clock):
    twin = await Store.open(tmp_path / "db.sqlite")  # a second API process on the same file
    try:
        for _ in range(10):
            taskid = await placed(store, account, executor)
            clock.now += 1
            started = clock.now
            await asyncio.gather(*(s.tasks.set_states(executor, [running(taskid, started)]) for s in (store, twin)))
            clock.now += 3
            end = exited(taskid, started, started + 1.25)
            steps = [s.tasks.set_states(executor, [end]) for s in (store, twin) for _ in range(25)]
            steps += [s.ledger.tick(watched_only=False) for s in (twin, store) for _ in range(5)]
            await asyncio.gather(*steps)
            assert sum(c["ms"] for c in await charges_of(store, taskid)) == 1250
        await assert_totals_are_the_sum_of_the_charges(store)
    finally:
        await twin.close()


async def test_a_repeated_running_report_writes_nothing(store, account, executor, clock):
    taskid, started = await started_run(store, account, executor, clock)
    clock.now += 5
    await store.ledger.tick(watched_only=False)
    before = await charges_of(store, taskid)
    for _ in range(3):
        await store.tasks.set_states(executor, [running(taskid, started)])
    assert await charges_of(store, taskid) == before


async def test_a_stale_running_report_of_a_run_that_ended_does_not_bill_it_again(store, account, executor, clock):
    """The same run's running report arriving after its end (the same engine start: a
    retry, not a new run) opens no new run: the run stays billed for 3 s."""
    taskid, started = await started_run(store, account, executor, clock)
    clock.now += 100
    await store.tasks.set_states(executor, [exited(taskid, started, started + 3)])
    await store.tasks.set_states(executor, [running(taskid, started)])
    clock.now += 100
    await store.ledger.tick(watched_only=False)
    assert await totals(store, taskid) == (3000, 3_000_000)


async def test_the_charges_table_is_append_only(store, account, executor, clock):
    def by_id(rows):
        return {r["id"]: r for r in rows}

    seen: dict[int, dict] = {}
    for _ in range(5):
        taskid, started = await started_run(store, account, executor, clock)
        for _ in range(3):
            clock.now += 1.5
            await store.ledger.tick(watched_only=False)
            now = by_id(await charges_of(store))
            assert {i: now[i] for i in seen} == seen  # every earlier row, unchanged
            seen = now
        await store.tasks.set_states(executor, [exited(taskid, started, started + 1)])  # a refund: a new row
        now = by_id(await charges_of(store))
        assert {i: now[i] for i in seen} == seen
        assert min(c["ms"] for c in now.values()) < 0
        seen = now
    await assert_totals_are_the_sum_of_the_charges(store)


# --- what a charge says ---------------------------------------------------------------------


async def test_a_prepaid_balance_goes_down_by_exactly_the_charges(store, account, executor, clock):
    await store.spending.credit(account.name, "100")
    for seconds in (1.5, 0.001, 7.25):
        taskid, started = await started_run(store, account, executor, clock)
        clock.now += 20
        await store.ledger.tick(watched_only=True)
        await store.tasks.set_states(executor, [exited(taskid, started, started + seconds)])
    spent = sum(c["micro"] for c in await charges_of(store))
    assert spent == 8_751_000  # 8.751 s at 3600 an hour: a second costs 1
    assert await balance(store, account) == to_micro(100) - spent


async def test_an_account_that_is_not_prepaid_keeps_no_balance(store, account, executor, clock):
    taskid, started = await started_run(store, account, executor, clock)
    clock.now += 2
    await store.tasks.set_states(executor, [exited(taskid, started, started + 2)])
    assert await totals(store, taskid) == (2000, 2_000_000)
    assert await balance(store, account) is None


async def test_the_price_is_the_one_fixed_when_the_task_was_placed(store, account, executor, clock):
    taskid = await placed(store, account, executor)
    await store.executors.update_on_connect(executor, {"cpus": ["cpu"]}, 99.0, "127.0.0.1")
    started = clock.now
    await store.tasks.set_states(executor, [running(taskid, started)])
    clock.now += 10
    await store.tasks.set_states(executor, [exited(taskid, started, started + 10)])
    [charge] = await charges_of(store, taskid)
    assert charge["price"] == PRICE and charge["micro"] == to_micro(10)
    assert await totals(store, taskid) == (10_000, to_micro(10))


async def test_the_platform_fee_is_a_share_of_every_charge_refunds_included(tmp_path, clock):
    store = await Store.open(tmp_path / "fee.sqlite", platform_fee=0.2)
    try:
        customer, _ = await store.accounts.create("customer")
        owner, _ = await store.accounts.create("owner")
        hwid, _ = await store.executors.register(owner.id, {"cpus": ["cpu"]}, 0.7)
        await store.executors.set_online(hwid, True)
        taskid, started = await started_run(store, customer, hwid, clock)
        clock.now += 30
        await store.ledger.tick(watched_only=False)  # charged up to now: past the end below
        await store.tasks.set_states(hwid, [exited(taskid, started, started + 12.345)])
        charges = await charges_of(store, taskid)
        assert len(charges) == 2 and charges[1]["ms"] < 0
        assert all(c["fee_micro"] == share(c["micro"], 200_000) for c in charges)
        assert all(c["owner_id"] == owner.id for c in charges)
        total = sum(c["micro"] for c in charges)
        assert total == cost_of(to_micro("0.7"), 12_345)
        [earned] = await store.spending.earnings(owner.id, 0, clock.now + 1)
        assert earned.micro == total - sum(c["fee_micro"] for c in charges)
        assert (earned.key, earned.billed_ms, earned.tasks) == (hwid, 12_345, 1)
    finally:
        await store.close()


# --- stopped by the customer or the platform ------------------------------------------------------


@pytest.mark.parametrize("stop", ["cancel", "delete", "halt"])
async def test_a_stopped_task_is_charged_up_to_the_stop_and_nothing_after(store, account, executor, clock, stop):
    taskid, started = await started_run(store, account, executor, clock)
    clock.now += 5
    if stop == "cancel":
        await store.tasks.cancel(account.id, taskid)
    elif stop == "delete":
        await store.tasks.delete(account.id, taskid)
    else:
        await store.tasks.halt(account.id, "stopped: balance exhausted")
    assert await totals(store, taskid) == (5000, 5_000_000)
    charged = await charges_of(store, taskid)
    # The container goes on a while until the agent removes it, and says so: none of that is billed.
    clock.now += 5
    await store.ledger.tick(watched_only=False)
    await store.tasks.set_states(executor, [running(taskid, started)])
    await store.tasks.set_states(executor, [exited(taskid, started, clock.now)])
    clock.now += 5
    await store.ledger.tick(watched_only=False)
    assert await charges_of(store, taskid) == charged
    assert await totals(store, taskid) == (5000, 5_000_000)


async def test_halt_ends_the_accounts_live_tasks_in_error_and_sends_removes(store, account, executor, owner, clock):
    other, _ = await store.executors.register(owner.id, {"cpus": ["cpu"]}, PRICE)
    await store.executors.set_online(other, True)
    first, _ = await started_run(store, account, executor, clock)
    second = await placed(store, account, other)  # still in setup
    clock.now += 1
    commands = await store.tasks.halt(account.id, "stopped: balance exhausted")
    assert sorted((c.taskid, c.op.value) for c in commands) == sorted([(first, "remove"), (second, "remove")])
    for taskid in (first, second):
        detail = await store.tasks.detail(account.id, taskid)
        assert (detail.task.state, detail.task.error_msg) == (TaskState.ERROR, "stopped: balance exhausted")
    assert await totals(store, first) == (1000, 1_000_000)
    assert await totals(store, second) == (0, 0)  # nothing ran


async def test_a_restart_closes_the_run_and_each_run_costs_what_its_own_time_costs(store, account, executor, clock):
    price = to_micro("0.5")
    await store.executors.update_on_connect(executor, {"cpus": ["cpu"]}, 0.5, "127.0.0.1")
    taskid, first = await started_run(store, account, executor, clock)
    clock.now += 2
    await store.ledger.tick(watched_only=False)
    await store.tasks.set_states(executor, [exited(taskid, first, first + 1.001)])
    await store.tasks.restart(account.id, taskid, await store.tasks.run_payload_of(taskid))
    clock.now += 5
    second = clock.now
    await store.tasks.set_states(executor, [running(taskid, second)])
    clock.now += 7.2
    await store.ledger.tick(watched_only=False)
    await store.tasks.set_states(executor, [exited(taskid, second, second + 7.2)])
    # 0.5 an hour: 1.001 s is 139.03 micro-units and 7.2 s is 1000; rounded per run, not per charge.
    assert (cost_of(price, 1001), cost_of(price, 7200)) == (139, 1000)
    assert await totals(store, taskid) == (8201, 1139)
    await assert_totals_are_the_sum_of_the_charges(store)


# --- the meter's own moments -----------------------------------------------------------------


async def test_ticks_charge_runs_under_way_on_online_executors_only(store, account, executor, clock):
    taskid, _ = await started_run(store, account, executor, clock)
    clock.now += 2
    assert await store.ledger.tick(watched_only=False) == {account.id}
    assert await totals(store, taskid) == (2000, 2_000_000)
    await store.executors.set_online(executor, False)
    clock.now += 2
    assert await store.ledger.tick(watched_only=False) == set()
    assert await totals(store, taskid) == (2000, 2_000_000)


async def test_watched_ticks_charge_prepaid_and_limited_accounts_only(store, account, owner, clock):
    limited, _ = await store.accounts.create("limited")
    prepaid, _ = await store.accounts.create("prepaid")
    await store.spending.set_spend_limit(limited.id, to_micro(10))
    await store.spending.credit("prepaid", 100)
    tasks = {}
    for who in (account, limited, prepaid):
        hwid, _ = await store.executors.register(owner.id, {"cpus": ["cpu"]}, PRICE)
        await store.executors.set_online(hwid, True)
        tasks[who.id] = taskid = await placed(store, who, hwid)
        await store.tasks.set_states(hwid, [running(taskid, clock.now)])
    clock.now += 1
    assert await store.ledger.tick(watched_only=True) == {limited.id, prepaid.id}
    assert await totals(store, tasks[account.id]) == (0, 0)
    assert await totals(store, tasks[prepaid.id]) == (1000, 1_000_000)
    assert await balance(store, prepaid) == to_micro(99)


@pytest.mark.parametrize(("silence", "billed"), [(SILENCE_GRACE_S - 1, 10_000 + 59_000 + 5_000), (120.0, 15_000)])
async def test_a_silence_is_billed_within_the_grace_and_not_beyond(store, account, executor, clock, silence, billed):
    taskid, _ = await started_run(store, account, executor, clock)
    clock.now += 10
    await store.executors.set_online(executor, False)
    await store.ledger.lose_sight(executor)
    clock.now += silence
    await store.ledger.seen_again(executor)
    await store.executors.set_online(executor, True)
    clock.now += 5
    await store.ledger.tick(watched_only=False)
    assert (await totals(store, taskid))[0] == billed
    await assert_totals_are_the_sum_of_the_charges(store)


async def test_a_run_that_ended_during_a_long_silence_is_billed_up_to_the_silence(store, account, executor, clock):
    taskid, started = await started_run(store, account, executor, clock)
    clock.now += 10
    await store.ledger.lose_sight(executor)
    clock.now += 300
    await store.ledger.seen_again(executor)
    await store.tasks.set_states(executor, [exited(taskid, started, started + 100)])
    assert await totals(store, taskid) == (10_000, 10_000_000)


async def test_a_run_reported_from_an_agent_clock_ahead_never_ends_before_it_starts(store, owner, executor, clock):
    # Both moments of the end report lie ahead of the API's clock (its estimate of the agent's
    # clock is off by a little): each is brought back to now, so the run is never negative.
    taskid = await placed(store, owner, executor)
    ahead = clock.now + 0.005
    await store.tasks.set_states(executor, [exited(taskid, ahead, ahead + 0.001)])
    row = await store.db.fetchone("SELECT started_at, finished_at FROM tasks WHERE taskid = ?", (taskid,))
    assert row["started_at"] <= row["finished_at"] == clock.now
