"""Money and history in the clients: the estimate, the account and its spend limit, usage,
earnings, history and the live tasks page by page; what each sends and what it makes of
the answer, against a recording stand-in for the API (tests/client/fakeapi.py)."""

import datetime as dt
from decimal import Decimal

import pytest

from megamind.client import (
    Account,
    AsyncClient,
    Client,
    Estimate,
    HardwareItem,
    InsufficientFunds,
    PaymentRequired,
    Requirements,
    SpendLimitReached,
    TaskLimits,
    TaskState,
)
from megamind.client.billing import money
from megamind.client.listings import history_query, time_bound

from .fakeapi import ACCOUNT, EARNINGS, ESTIMATE, FREE, HISTORY_CSV, TASK, USAGE, fake_api, task_page

__all__ = ["fake_api"]  # fixture

IMAGE = "megamind.network/helloworld:latest"
HISTORY = ("GET", "/api/v1/history")


# --- the estimate -------------------------------------------------------------------------


async def test_the_estimate_sends_the_addtask_body_add_task_would(fake_api):
    fake_api.answer("POST", "/api/v1/estimate", ESTIMATE)
    async with AsyncClient(fake_api.url, "mk_k") as api:
        estimate = await api.estimate(IMAGE, params="p", requirements=Requirements(gpus=1),
                                      limits=TaskLimits(runtime=7200), priority=80, inputs=["f1"])
        await api.estimate(IMAGE, "h1")
    assert [r.body for r in fake_api.sent("POST", "/api/v1/estimate")] == [
        {"image": IMAGE, "params": "p", "requirements": {"gpus": 1}, "limits": {"runtime": 7200}, "priority": 80,
         "inputs": ["f1"]},
        {"image": IMAGE, "params": "", "hwid": "h1"},
    ]
    assert estimate == Estimate(fits=3, free=[HardwareItem.from_json(FREE),
                                              HardwareItem.from_json({**FREE, "hwid": "h2", "cost": 0.75})],
                                queue_position=0, price=Decimal("0.5"), estimated_time_seconds=7200.0,
                                estimated_cost=Decimal("1.0"))
    assert estimate.placed_at_once


async def test_an_estimate_the_api_cannot_make_says_unknown(fake_api):
    fake_api.answer("POST", "/api/v1/estimate", {**ESTIMATE, "free": [], "queue_position": 4, "price": None,
                                                 "estimated_time_seconds": None, "estimated_cost": None})
    async with AsyncClient(fake_api.url, "mk_k") as api:
        estimate = await api.estimate(IMAGE)
    assert (estimate.queue_position, estimate.price, estimate.estimated_time_seconds,
            estimate.estimated_cost) == (4, None, None, None)
    assert not estimate.placed_at_once and estimate.to_json()["price"] is None


# --- amounts ------------------------------------------------------------------------------


async def test_amounts_are_decimals_of_the_json_text(fake_api):
    # Decimal(0.3) would be 0.299999999999999988897769753748...: the text is what the API meant.
    fake_api.answer("GET", "/api/v1/account", {**ACCOUNT, "balance": 0.3, "spent_today": 7, "spent_month": 1.000001})
    async with AsyncClient(fake_api.url, "mk_k") as api:
        account = await api.account()
    assert account.balance == Decimal("0.3") and account.spent_today == Decimal(7)
    assert account.spent_month == Decimal("1.000001")
    assert money(0.1) == Decimal("0.1") and money(Decimal("2.5")) == Decimal("2.5")
    with pytest.raises(TypeError):
        money(True)


async def test_the_account_and_its_spend_limit(fake_api):
    fake_api.answer("GET", "/api/v1/account", ACCOUNT)
    fake_api.answer("PATCH", "/api/v1/account", {**ACCOUNT, "spend_limit_per_hour": 1.5},
                    {**ACCOUNT, "spend_limit_per_hour": None})
    async with AsyncClient(fake_api.url, "mk_k") as api:
        account = await api.account()
        limited = await api.set_spend_limit(Decimal("1.5"))
        unlimited = await api.set_spend_limit(None)
    assert account == Account(name="alice", balance=Decimal("12.345678"), spent_today=Decimal("0.1"),
                              spent_month=Decimal("3.25"), spend_limit_per_hour=Decimal("2.5"),
                              spent_last_hour=Decimal("0.05"))
    assert account.prepaid and account.to_json() == ACCOUNT
    assert limited.spend_limit_per_hour == Decimal("1.5") and unlimited.spend_limit_per_hour is None
    assert [r.body for r in fake_api.sent("PATCH", "/api/v1/account")] == [
        {"spend_limit_per_hour": 1.5}, {"spend_limit_per_hour": None}]


async def test_an_account_that_is_not_prepaid_and_a_server_without_spend_limits(fake_api):
    fake_api.answer("GET", "/api/v1/account", {"name": "bob", "balance": None, "spent_today": 0, "spent_month": 0})
    async with AsyncClient(fake_api.url, "mk_k") as api:
        account = await api.account()
    assert not account.prepaid
    assert (account.spend_limit_per_hour, account.spent_last_hour) == (None, None)


@pytest.mark.parametrize("limit, error", [(-1, ValueError), (float("nan"), ValueError), ("5", TypeError),
                                          (True, TypeError)])
async def test_a_spend_limit_that_is_not_an_amount_is_not_sent(fake_api, limit, error):
    async with AsyncClient(fake_api.url, "mk_k") as api:
        with pytest.raises(error):
            await api.set_spend_limit(limit)
    assert fake_api.requests == []


async def test_the_money_refusals_are_typed(fake_api):
    fake_api.answer("POST", "/api/v1/addtask",
                    (402, {"code": 22, "message": "the balance 0.01 cannot pay one minute at 1.2/h"}),
                    (402, {"code": 23, "message": "the spend limit of 1/h is reached"}))
    async with AsyncClient(fake_api.url, "mk_k") as api:
        with pytest.raises(InsufficientFunds) as funds:
            await api.add_task(IMAGE)
        with pytest.raises(SpendLimitReached) as limit:
            await api.add_task(IMAGE)
    assert isinstance(funds.value, PaymentRequired) and isinstance(limit.value, PaymentRequired)
    assert (funds.value.code, funds.value.status, funds.value.name) == (22, 402, "insufficient_funds")
    assert (limit.value.code, limit.value.name) == (23, "spend_limit_reached")


# --- usage and earnings -------------------------------------------------------------------


def test_bounds_of_a_range_as_the_api_takes_them():
    moment = dt.datetime(2026, 12, 1, 12, 30, tzinfo=dt.timezone.utc)
    assert time_bound(dt.date(2026, 12, 1)) == "2026-12-01"
    assert time_bound(moment) == str(int(moment.timestamp()))
    assert time_bound("2026-12-01") == "2026-12-01"
    assert time_bound(1764633600) == "1764633600" and time_bound(1764633600.0) == "1764633600"
    assert time_bound(1764633600.5) == "1764633600.5"
    with pytest.raises(TypeError):
        time_bound(True)
    assert history_query() == {}
    assert history_query(from_="2026-12-01", state=TaskState.RUNNING, limit=10, cursor="c") == {
        "from": "2026-12-01", "state": "running", "limit": "10", "cursor": "c"}
    assert history_query(state=5)["state"] == "error" and history_query(state="stopped")["state"] == "stopped"


async def test_usage_and_earnings(fake_api):
    fake_api.answer("GET", "/api/v1/usage", USAGE)
    fake_api.answer("GET", "/api/v1/earnings", EARNINGS)
    async with AsyncClient(fake_api.url, "mk_k") as api:
        usage = await api.usage(dt.date(2026, 12, 1), "2026-12-02")
        await api.usage()
        earnings = await api.earnings(to=1764720000)
    assert [r.query for r in fake_api.sent("GET", "/api/v1/usage")] == [
        {"from": "2026-12-01", "to": "2026-12-02"}, {}]
    assert fake_api.sent("GET", "/api/v1/earnings")[0].query == {"to": "1764720000"}
    assert usage.total == Decimal("3.25") and usage.billed_seconds == 23400
    assert [(d.day, d.spent) for d in usage.days] == [(dt.date(2026, 12, 1), Decimal("2.25")),
                                                      (dt.date(2026, 12, 2), Decimal("1.0"))]
    assert [(i.image, i.tasks, i.spent) for i in usage.images] == [("megamind.network/trainer:1", 2, Decimal("3.25"))]
    assert usage.to_json() == USAGE
    assert earnings.total == Decimal("4.5")
    assert [(e.hwid, e.billed_seconds, e.earned) for e in earnings.executors] == [
        ("h1", 28800, Decimal("4.0")), ("h2", 3600, Decimal("0.5"))]
    assert earnings.to_json() == EARNINGS


# --- history and the live tasks -----------------------------------------------------------


def done(taskid: str, **extra) -> dict:
    """A finished task as history lists it (the detail without env)."""
    return {**TASK, "taskid": taskid, "state": 3, "created_at": 1764633600.0, "price": 0.5, "billed_seconds": 60,
            "cost": 0.008333, "deleted": False, **extra}


async def test_a_page_of_history(fake_api):
    fake_api.answer(*HISTORY, task_page(done("t2", deleted=True), done("t1"), total=5, next_cursor="c2"))
    async with AsyncClient(fake_api.url, "mk_k") as api:
        page = await api.history("2026-12-01", state=TaskState.STOPPED, image=IMAGE, limit=2)
    assert fake_api.sent(*HISTORY)[0].query == {"from": "2026-12-01", "state": "stopped", "image": IMAGE,
                                                "limit": "2"}
    assert [(t.taskid, t.deleted) for t in page] == [("t2", True), ("t1", False)]
    assert (len(page), page.total, page.has_more, page.next_cursor) == (2, 5, True, "c2")
    assert page.tasks[0].cost == 0.008333 and page.tasks[0].to_json()["deleted"] is True


async def test_iter_history_follows_the_cursor_to_the_last_page(fake_api):
    fake_api.answer(*HISTORY, task_page(done("t3"), done("t2"), total=3, next_cursor="c1"),
                    task_page(done("t1"), total=3))
    async with AsyncClient(fake_api.url, "mk_k") as api:
        taskids = [t.taskid async for t in api.iter_history(to="2026-12-02", limit=2)]
    assert taskids == ["t3", "t2", "t1"]
    assert [r.query for r in fake_api.sent(*HISTORY)] == [{"to": "2026-12-02", "limit": "2"},
                                                          {"to": "2026-12-02", "limit": "2", "cursor": "c1"}]


async def test_history_as_csv_is_every_row_as_text(fake_api):
    fake_api.answer(*HISTORY, HISTORY_CSV)
    async with AsyncClient(fake_api.url, "mk_k") as api:
        text = await api.history_csv(from_=dt.date(2026, 12, 1), image=IMAGE)
    [sent] = fake_api.sent(*HISTORY)
    assert text == HISTORY_CSV
    assert sent.accept == "text/csv" and sent.query == {"from": "2026-12-01", "image": IMAGE}


async def test_a_page_of_the_live_tasks(fake_api):
    fake_api.answer("GET", "/api/v1/tasks", task_page(done("t1"), next_cursor="c"))
    async with AsyncClient(fake_api.url, "mk_k") as api:
        page = await api.tasks_page(state="running", limit=1, cursor="c0")
    assert fake_api.sent("GET", "/api/v1/tasks")[0].query == {"state": "running", "limit": "1", "cursor": "c0"}
    assert [t.taskid for t in page] == ["t1"] and page.next_cursor == "c"


def test_the_blocking_client_has_the_same_calls(fake_api):
    fake_api.answer("POST", "/api/v1/estimate", ESTIMATE)
    fake_api.answer("GET", "/api/v1/account", ACCOUNT)
    fake_api.answer("PATCH", "/api/v1/account", ACCOUNT)
    fake_api.answer("GET", "/api/v1/usage", USAGE)
    fake_api.answer("GET", "/api/v1/earnings", EARNINGS)
    fake_api.answer(*HISTORY, task_page(done("t2"), next_cursor="c1"), task_page(done("t1")))
    fake_api.answer("GET", "/api/v1/tasks", task_page(done("t1")))
    with Client(fake_api.url, "mk_k") as api:
        assert api.estimate(IMAGE, requirements={"ram": 16000}).fits == 3
        assert api.account().name == "alice"
        assert api.set_spend_limit(2.5).spend_limit_per_hour == Decimal("2.5")
        assert api.usage("2026-12-01").total == Decimal("3.25")
        assert api.earnings().total == Decimal("4.5")
        assert [t.taskid for t in api.iter_history()] == ["t2", "t1"]
        assert api.history(cursor="c1").next_cursor is None
        assert [t.taskid for t in api.tasks_page()] == ["t1"]
    fake_api.answer(*HISTORY, HISTORY_CSV)
    with Client(fake_api.url, "mk_k") as api:
        assert api.history_csv() == HISTORY_CSV
    assert fake_api.sent("POST", "/api/v1/estimate")[0].body == {"image": IMAGE, "params": "",
                                                                 "requirements": {"ram": 16000}}
