"""Accounts' money on a real SQLite store: credit, hourly limits, the account's figures,
refusals at submission, accounts to stop, usage and earnings."""

import itertools
import time
from datetime import datetime, timezone

import pytest

import megamind.store.ledger as ledger_module
import megamind.store.queue as queue_module
import megamind.store.tasks as tasks_module
from megamind.errors import (
    AccountNotFound,
    InsufficientFunds,
    MegamindError,
    SpendLimitReached,
)
from megamind.money import to_micro
from megamind.states import TaskState
from megamind.store.spending import (
    BALANCE_EXHAUSTED,
    UsageLine,
    month_start,
    spend_limit_message,
)
from megamind.store.taskmodel import NewTask, StateUpdate

RUN = {"image": "127.0.0.1:5000/helloworld:latest", "public_image": "megamind.network/helloworld:latest", "params": ""}
IMAGE = "megamind.network/helloworld:latest"
DAY_S = 86_400

_seqs = itertools.count(1)


@pytest.fixture
async def owner(store):
    owner, _ = await store.accounts.create("owner")
    return owner


async def new_executor(store, owner, cost: float, online: bool = True) -> str:
    hwid, _ = await store.executors.register(owner.id, {"cpus": ["cpu"]}, cost)
    await store.executors.set_online(hwid, online)
    return hwid


async def submit(store, account, hwid: str | None = None):
    return await store.scheduler.submit(NewTask(account.id, IMAGE, "", RUN, hwid=hwid))


async def insert_charge(store, account_id: int, at: float, micro: int, *, ms: int = 1000, image: str = IMAGE,
                        hwid: str = "hw-a", owner_id: int = 0, fee: int = 0, taskid: str = "t1") -> None:
    """A charge row as the ledger writes them, made at ``at``."""
    await store.db.execute(
        "INSERT INTO charges (taskid, seq, account_id, hwid, owner_id, image, period_start, period_end, ms,"
        " price, micro, fee_micro, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (taskid, next(_seqs), account_id, hwid, owner_id, image, at - ms / 1000, at, ms, 1.0, micro, fee, at))


class Clock:
    """The API's clock as the ledger, the task store and placement read it."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


def day_start(moment: float) -> float:
    day = datetime.fromtimestamp(moment, timezone.utc)
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()


# --- balances and limits -----------------------------------------------------------------------


async def test_an_account_is_not_prepaid_until_credited(store, account):
    money = await store.spending.account(account.id)
    assert (money.name, money.balance_micro, money.spend_limit_micro) == ("alice", None, None)
    assert (money.spent_today_micro, money.spent_month_micro, money.spent_last_hour_micro) == (0, 0, 0)


async def test_credit_makes_an_account_prepaid_and_adds_up_exactly(store, account):
    assert await store.spending.credit("alice", "10") == to_micro(10)
    assert await store.spending.credit("alice", 0.1, note="promo") == to_micro("10.1")
    assert await store.spending.credit("alice", 0.2) == to_micro("10.3")  # not 10.300000000000001
    assert (await store.spending.account(account.id)).balance_micro == 10_300_000
    rows = await store.db.fetchall("SELECT micro, note FROM credits WHERE account_id = ? ORDER BY id", (account.id,))
    assert [(r["micro"], r["note"]) for r in rows] == [(10_000_000, ""), (100_000, "promo"), (200_000, "")]


async def test_credit_to_an_unknown_account_is_refused(store):
    with pytest.raises(AccountNotFound):
        await store.spending.credit("nobody", 5)
    assert await store.db.fetchall("SELECT * FROM credits") == []


async def test_a_credit_too_large_to_keep_exactly_is_refused_and_writes_nothing(store, account):
    """Balances are exact integers of micro-units (at most 2**63 - 1 in SQLite): a credit
    past that is refused cleanly, not a crash nor a balance turned into a float."""
    with pytest.raises((ValueError, MegamindError)):
        await store.spending.credit("alice", "1e13")  # 10**19 micro-units
    assert (await store.spending.account(account.id)).balance_micro is None
    await store.spending.credit("alice", "9e12")
    with pytest.raises((ValueError, MegamindError)):
        await store.spending.credit("alice", "9e12")  # the sum would not fit
    balance = (await store.spending.account(account.id)).balance_micro
    assert balance == 9 * 10**18 and isinstance(balance, int)
    assert len(await store.db.fetchall("SELECT * FROM credits")) == 1


async def test_a_spend_limit_is_set_changed_and_cleared(store, account):
    await store.spending.set_spend_limit(account.id, to_micro("2.5"))
    assert (await store.spending.account(account.id)).spend_limit_micro == 2_500_000
    await store.spending.set_spend_limit(account.id, to_micro(7))
    assert (await store.spending.account(account.id)).spend_limit_micro == 7_000_000
    await store.spending.set_spend_limit(account.id, None)
    assert (await store.spending.account(account.id)).spend_limit_micro is None


async def test_the_account_sums_what_was_charged_today_this_month_and_in_the_last_hour(store, account, owner):
    now = time.time()
    moments = {
        "a minute ago": now - 60,
        "two hours ago": now - 2 * 3600,
        "just before today": day_start(now) - 1,
        "just before this month": month_start(now) - 1,
        "at the month's start": month_start(now),
    }
    amounts = dict(zip(moments, (1, 20, 300, 4000, 50000)))
    for name, at in moments.items():
        await insert_charge(store, account.id, at, amounts[name])
    await insert_charge(store, owner.id, now - 60, 999_999)  # someone else's
    money = await store.spending.account(account.id)
    assert money.spent_last_hour_micro == 1
    assert money.spent_today_micro == sum(amounts[n] for n, at in moments.items() if at >= day_start(now))
    assert money.spent_month_micro == sum(amounts[n] for n, at in moments.items() if at >= month_start(now))
    assert money.spent_month_micro >= 50_001 and money.spent_today_micro >= 1


async def test_charges_made_by_a_run_show_in_the_account(store, account, owner, monkeypatch):
    clock = Clock(round(time.time(), 3))
    for module in (ledger_module, tasks_module, queue_module):
        monkeypatch.setattr(module, "time", clock)
    hwid = await new_executor(store, owner, 3600.0)
    taskid = (await submit(store, account, hwid)).task.taskid
    started = clock.now
    await store.tasks.set_states(hwid, [StateUpdate(taskid, TaskState.RUNNING, "", run_key=started,
                                                    started_at=started)])
    clock.now += 4
    await store.tasks.set_states(hwid, [StateUpdate(taskid, TaskState.STOPPED, "", 0, run_key=started,
                                                    started_at=started, finished_at=started + 4)])
    money = await store.spending.account(account.id)
    assert money.spent_last_hour_micro == money.spent_today_micro == money.spent_month_micro == to_micro(4)


# --- refused at submission ----------------------------------------------------------------------


async def test_a_prepaid_account_must_hold_one_minute_at_the_chosen_executors_price(store, account, owner):
    hwid = await new_executor(store, owner, 3600.0)  # a minute: 60
    await store.spending.credit("alice", "59.999999")
    with pytest.raises(InsufficientFunds) as refused:
        await submit(store, account, hwid)
    assert "60" in str(refused.value)
    assert await store.tasks.list_for_account(account.id) == []
    assert await store.tasks.pending_commands(hwid) == []
    await store.spending.credit("alice", "0.000001")
    placed = await submit(store, account, hwid)
    assert placed.task.hwid == hwid and placed.command is not None


async def test_placement_checks_the_price_of_the_executor_it_chooses(store, account, owner):
    cheap = await new_executor(store, owner, 60.0)  # a minute: 1
    dear = await new_executor(store, owner, 6000.0)  # a minute: 100
    other, _ = await store.accounts.create("other")
    await submit(store, other, cheap)  # the cheap one is busy: alice's task would go to the dear one
    await store.spending.credit("alice", 50)
    with pytest.raises(InsufficientFunds):
        await submit(store, account)
    await store.spending.credit("alice", 50)
    assert (await submit(store, account)).task.hwid == dear


async def test_a_queued_task_is_checked_at_the_cheapest_fitting_executors_price(store, account, owner):
    await new_executor(store, owner, 60.0, online=False)  # a minute: 1; offline, and it fits
    dear = await new_executor(store, owner, 6000.0)
    other, _ = await store.accounts.create("other")
    await submit(store, other, dear)  # every online executor busy: a new task queues
    await store.spending.credit("alice", "0.999999")
    with pytest.raises(InsufficientFunds):
        await submit(store, account)
    await store.spending.credit("alice", "0.5")
    placed = await submit(store, account)
    assert placed.task.hwid is None and placed.command is None  # queued: 1.5 pays a minute at 60


@pytest.mark.parametrize("balance", [0, -1])
async def test_an_empty_balance_is_refused_even_on_a_free_executor(store, account, owner, balance):
    hwid = await new_executor(store, owner, 0.0)
    await store.spending.credit("alice", 1)
    await store.db.execute("UPDATE accounts SET balance_micro = ? WHERE id = ?", (balance, account.id))  # spent
    with pytest.raises(InsufficientFunds):
        await submit(store, account, hwid)


async def test_an_account_that_is_not_prepaid_is_never_refused_for_funds(store, account, owner):
    hwid = await new_executor(store, owner, 10**6)
    assert (await submit(store, account, hwid)).task.hwid == hwid


async def test_an_account_past_its_hourly_limit_is_refused(store, account, owner):
    await store.spending.set_spend_limit(account.id, to_micro(5))
    await insert_charge(store, account.id, time.time() - 2 * 3600, to_micro(100))  # over an hour ago
    await insert_charge(store, account.id, time.time() - 60, to_micro("4.999999"))
    await submit(store, account, await new_executor(store, owner, 1.0))  # under the limit
    await insert_charge(store, account.id, time.time() - 30, 1)
    hwid = await new_executor(store, owner, 1.0)
    with pytest.raises(SpendLimitReached) as refused:
        await submit(store, account, hwid)
    assert "5" in str(refused.value)
    assert await store.tasks.pending_commands(hwid) == []


async def test_a_prepaid_account_with_funds_past_its_limit_is_refused_for_the_limit(store, account, owner):
    hwid = await new_executor(store, owner, 1.0)
    await store.spending.credit("alice", 100)
    await store.spending.set_spend_limit(account.id, 0)
    with pytest.raises(SpendLimitReached):
        await submit(store, account, hwid)


# --- accounts whose tasks must stop ---------------------------------------------------------------


async def test_overdrawn_finds_only_accounts_with_live_tasks(store, owner):
    accounts = {}
    for name in ("broke", "broke_idle", "limited", "limited_idle", "solvent", "both"):
        accounts[name], _ = await store.accounts.create(name)
        hwid = await new_executor(store, owner, 0.0)
        taskid = (await submit(store, accounts[name], hwid)).task.taskid
        if name.endswith("_idle"):  # its only task is over: nothing to stop
            await store.tasks.set_states(hwid, [StateUpdate(taskid, TaskState.STOPPED, "", 0)])
    for name in ("broke", "broke_idle", "both"):
        await store.db.execute("UPDATE accounts SET balance_micro = 0 WHERE name = ?", (name,))
    await store.spending.credit("solvent", 100)
    for name in ("limited", "limited_idle", "both"):
        await store.spending.set_spend_limit(accounts[name].id, to_micro(1))
        await insert_charge(store, accounts[name].id, time.time() - 10, to_micro(1))
    found = {o.account_id: o.reason for o in await store.spending.overdrawn()}
    assert found == {
        accounts["broke"].id: BALANCE_EXHAUSTED,
        accounts["limited"].id: spend_limit_message(to_micro(1)),
        accounts["both"].id: BALANCE_EXHAUSTED,  # once, for the balance
    }
    assert spend_limit_message(to_micro(1)) == "stopped: hourly spend limit of 1 reached"


async def test_a_limit_not_yet_reached_stops_nothing(store, account, owner):
    await submit(store, account, await new_executor(store, owner, 0.0))
    await store.spending.set_spend_limit(account.id, to_micro(1))
    await insert_charge(store, account.id, time.time() - 10, to_micro("0.999999"))
    await insert_charge(store, account.id, time.time() - 3700, to_micro(50))  # over an hour ago
    assert await store.spending.overdrawn() == []


async def test_a_cancelled_or_deleted_task_is_not_live(store, account, owner):
    first = (await submit(store, account, await new_executor(store, owner, 0.0))).task.taskid
    second = (await submit(store, account, await new_executor(store, owner, 0.0))).task.taskid
    await store.db.execute("UPDATE accounts SET balance_micro = -5 WHERE id = ?", (account.id,))
    assert [o.account_id for o in await store.spending.overdrawn()] == [account.id]
    await store.tasks.cancel(account.id, first)
    await store.tasks.delete(account.id, second)
    assert await store.spending.overdrawn() == []


# --- usage and earnings -----------------------------------------------------------------------------


async def test_usage_is_grouped_by_utc_day_and_image_with_inclusive_bounds(store, account, owner):
    start = datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp()
    end = datetime(2024, 3, 2, 23, 59, 59, tzinfo=timezone.utc).timestamp()
    other_image = "megamind.network/other:1"
    await insert_charge(store, account.id, start - 0.001, 1, taskid="before")  # just outside
    await insert_charge(store, account.id, start, 10, ms=1000, taskid="a")  # at the start: in
    await insert_charge(store, account.id, start + 3600, 20, ms=2000, taskid="a")
    await insert_charge(store, account.id, start + DAY_S, 300, ms=3000, image=other_image, taskid="b")
    await insert_charge(store, account.id, end, -5, ms=-500, taskid="c")  # a refund at the end: in
    await insert_charge(store, account.id, end + 0.001, 7, taskid="after")
    await insert_charge(store, owner.id, start + 10, 1000, taskid="theirs")
    days, images = await store.spending.usage(account.id, start, end)
    assert days == [UsageLine("2024-03-01", 1, 3000, 30), UsageLine("2024-03-02", 2, 2500, 295)]
    assert images == [UsageLine(IMAGE, 2, 2500, 25), UsageLine(other_image, 1, 3000, 300)]


async def test_usage_of_an_empty_range_is_empty(store, account):
    assert await store.spending.usage(account.id, 0, time.time()) == ([], [])


async def test_earnings_are_per_executor_of_the_owner_after_the_fee_with_inclusive_bounds(store, account, owner):
    start, end = 1_700_000_000.0, 1_700_086_400.0
    someone, _ = await store.accounts.create("someone")
    await insert_charge(store, account.id, start, 1000, ms=1000, hwid="hw-a", owner_id=owner.id, fee=200,
                        taskid="t1")
    await insert_charge(store, account.id, start + 5, -100, ms=-100, hwid="hw-a", owner_id=owner.id, fee=-20,
                        taskid="t1")
    await insert_charge(store, account.id, end, 500, ms=500, hwid="hw-a", owner_id=owner.id, fee=100, taskid="t2")
    await insert_charge(store, account.id, end, 3000, ms=3000, hwid="hw-b", owner_id=owner.id, fee=600,
                        taskid="t3")
    await insert_charge(store, account.id, end + 0.001, 9999, hwid="hw-b", owner_id=owner.id, taskid="late")
    await insert_charge(store, account.id, start - 0.001, 9999, hwid="hw-a", owner_id=owner.id, taskid="early")
    await insert_charge(store, account.id, start + 1, 9999, hwid="hw-c", owner_id=someone.id, taskid="theirs")
    assert await store.spending.earnings(owner.id, start, end) == [
        UsageLine("hw-a", 2, 1400, 1400 - 280),
        UsageLine("hw-b", 1, 3000, 2400),
    ]
    assert await store.spending.earnings(account.id, start, end) == []
