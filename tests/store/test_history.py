"""HistoryStore: an account's tasks newest first, by range and filter, a page at a time; purge."""

import base64
import json
import re

import pytest

from megamind.errors import ValidationFailed
from megamind.states import TaskState
from megamind.store.history import HistoryStore, decode_cursor, encode_cursor

from .helpers import create_task

DAY = 86400.0
T0 = 1_700_000_000.0
IMAGE = "megamind.network/trainer:1"
EVERYTHING = {"created_from": None, "created_to": None, "state": None, "image": None, "include_deleted": True}


@pytest.fixture
def history(store):
    return HistoryStore(store.db)


async def insert(store, taskid, account_id, created_at, *, state=TaskState.STOPPED, deleted=False, image=IMAGE,
                 hwid=None, holds_executor=False):
    """A task row as the store would leave it, with every column a test needs to set."""
    await store.db.execute(
        "INSERT INTO tasks (taskid, account_id, hwid, image, params, state, holds_executor, deleted,"
        " created_at, updated_at, deleted_at) VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?, ?)",
        (taskid, account_id, hwid, image, int(state), int(holds_executor), int(deleted), created_at, created_at,
         created_at + 1 if deleted else None),
    )


async def page(history, account_id, *, limit=100, cursor=None, **filters):
    return await history.page(account_id, **{**EVERYTHING, **filters}, limit=limit, cursor=cursor)


async def every_page(history, account_id, limit, **filters):
    """Follow next_cursor to the end: the taskids of each page, in order."""
    pages, cursor = [], None
    while True:
        result = await page(history, account_id, limit=limit, cursor=cursor, **filters)
        pages.append([d.task.taskid for d in result.details])
        assert result.has_more == (result.next_cursor is not None)
        if not result.has_more:
            return pages
        cursor = result.next_cursor


async def test_newest_first_and_equal_times_by_taskid(store, account, history):
    for taskid, created in [("b", T0), ("a", T0 + 5), ("c", T0), ("d", T0 - 5)]:
        await insert(store, taskid, account.id, created)
    result = await page(history, account.id)
    assert [d.task.taskid for d in result.details] == ["a", "c", "b", "d"]
    assert (result.total, result.has_more, result.next_cursor) == (4, False, None)


async def test_a_page_holds_the_task_detail_as_the_detail_call_reads_it(store, account, hwid, history):
    task, _ = await create_task(store, account.id, hwid, IMAGE, "p", {})
    result = await page(history, account.id)
    assert result.details == [await store.tasks.detail(account.id, task.taskid)]
    assert result.details[0].pending_command == "start"


async def test_the_range_includes_both_bounds(store, account, history):
    for n in range(5):
        await insert(store, f"t{n}", account.id, T0 + n * DAY)
    result = await page(history, account.id, created_from=T0 + DAY, created_to=T0 + 3 * DAY)
    assert [d.task.taskid for d in result.details] == ["t3", "t2", "t1"]
    assert result.total == 3
    only_start = await page(history, account.id, created_from=T0 + 4 * DAY)
    assert [d.task.taskid for d in only_start.details] == ["t4"]
    until = await page(history, account.id, created_to=T0)
    assert [d.task.taskid for d in until.details] == ["t0"]
    assert (await page(history, account.id, created_from=T0 + 0.5, created_to=T0 + 0.7)).details == []


async def test_state_image_and_deleted_filters(store, account, history):
    await insert(store, "run", account.id, T0, state=TaskState.RUNNING)
    await insert(store, "err", account.id, T0 + 1, state=TaskState.ERROR)
    await insert(store, "other", account.id, T0 + 2, image="megamind.network/other:1")
    await insert(store, "gone", account.id, T0 + 3, deleted=True)

    def ids(result):
        return [d.task.taskid for d in result.details]

    assert ids(await page(history, account.id, state=int(TaskState.RUNNING))) == ["run"]
    assert ids(await page(history, account.id, image="megamind.network/other:1")) == ["other"]
    assert ids(await page(history, account.id, image="megamind.network/other")) == []  # exact, no tag implied
    assert ids(await page(history, account.id, image=IMAGE)) == ["gone", "err", "run"]
    everything = await page(history, account.id)
    assert ids(everything) == ["gone", "other", "err", "run"] and everything.total == 4
    assert everything.details[0].task.deleted and everything.details[0].deleted_at == T0 + 4
    live = await page(history, account.id, include_deleted=False)
    assert ids(live) == ["other", "err", "run"] and live.total == 3
    both = await page(history, account.id, state=int(TaskState.STOPPED), image=IMAGE, include_deleted=False)
    assert ids(both) == [] and both.total == 0


async def test_another_accounts_tasks_never_appear(store, account, history):
    bob, _ = await store.accounts.create("bob")
    await insert(store, "mine", account.id, T0)
    await insert(store, "bobs", bob.id, T0 + 1)
    result = await page(history, account.id)
    assert [d.task.taskid for d in result.details] == ["mine"] and result.total == 1


@pytest.mark.parametrize("limit", [1, 2, 3, 7, 40])
async def test_pages_cover_every_task_once_even_among_equal_times(store, account, history, limit):
    # Runs of equal created_at that pages must cut through without repeating or skipping.
    rows = []
    for n in range(40):
        created = T0 - (n // 6) * 10.0
        await insert(store, f"t{n:02d}", account.id, created, deleted=n % 5 == 0)
        rows.append((created, f"t{n:02d}"))
    newest_first = [taskid for _, taskid in sorted(rows, reverse=True)]
    pages = await every_page(history, account.id, limit)
    assert [taskid for p in pages for taskid in p] == newest_first
    assert all(len(p) == limit for p in pages[:-1]) and 0 < len(pages[-1]) <= limit
    assert len(pages) == -(-40 // limit)


async def test_pages_with_filters_and_total_ignoring_the_cursor(store, account, history):
    for n in range(12):
        await insert(store, f"t{n:02d}", account.id, T0 + n, state=TaskState.RUNNING if n % 2 else TaskState.ERROR)
    first = await page(history, account.id, limit=2, state=int(TaskState.RUNNING), created_from=T0 + 2)
    assert [d.task.taskid for d in first.details] == ["t11", "t09"]
    second = await page(history, account.id, limit=2, state=int(TaskState.RUNNING), created_from=T0 + 2,
                        cursor=first.next_cursor)
    assert [d.task.taskid for d in second.details] == ["t07", "t05"]
    assert first.total == second.total == 5


async def test_tasks_added_after_a_page_do_not_shift_the_next(store, account, history):
    for n in range(4):
        await insert(store, f"t{n}", account.id, T0 + n)
    first = await page(history, account.id, limit=2)
    await insert(store, "newer", account.id, T0 + 100)
    second = await page(history, account.id, limit=2, cursor=first.next_cursor)
    assert [d.task.taskid for d in second.details] == ["t1", "t0"] and not second.has_more


async def test_a_page_that_ends_exactly_at_the_last_task_says_there_is_no_more(store, account, history):
    for n in range(4):
        await insert(store, f"t{n}", account.id, T0 + n)
    result = await page(history, account.id, limit=4)
    assert len(result.details) == 4 and not result.has_more and result.next_cursor is None


def test_a_cursor_round_trips_exactly():
    for created in (T0, T0 + 0.1, 1.5e-7, 1712345678.123456):
        assert decode_cursor(encode_cursor(created, "taskid")) == (created, "taskid")
    assert re.fullmatch("[A-Za-z0-9_-]+", encode_cursor(T0 + 0.123, "x"))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    "", "!!!!", "a", "%%", "eyJ", _b64(b"not json"), _b64(b"[1,2,3]"), _b64(b'{"a": 1}'), _b64(b'[true, "t"]'),
    _b64(b'["1", "t"]'), _b64(b'[1, 2]'), _b64(b'[1, ""]'), _b64(b"[NaN, \"t\"]"), _b64(b"[Infinity, \"t\"]"),
    _b64(json.dumps([1, "t" * 129]).encode()), _b64(b"[" * 5000), _b64(b"\xff\xfe"),
])
async def test_a_malformed_cursor_is_a_validation_error(store, account, history, cursor):
    with pytest.raises(ValidationFailed, match="cursor"):
        await page(history, account.id, cursor=cursor)


async def test_walk_reads_every_matching_task_in_batches(store, account, history):
    for n in range(7):
        await insert(store, f"t{n}", account.id, T0 + n, deleted=n == 3)
    batches = [[d.task.taskid for d in batch] async for batch in history.walk(account.id, **EVERYTHING, batch=3)]
    assert batches == [["t6", "t5", "t4"], ["t3", "t2", "t1"], ["t0"]]
    live = [d.task.taskid async for batch in history.walk(account.id, **{**EVERYTHING, "include_deleted": False})
            for d in batch]
    assert live == ["t6", "t5", "t4", "t2", "t1", "t0"]
    assert [b async for b in history.walk(account.id, **{**EVERYTHING, "state": 1})] == []


# --- the plan ------------------------------------------------------------------------------


async def plans_of_page(store, history, monkeypatch, **kwargs):
    """EXPLAIN QUERY PLAN of each statement `page` runs: [(sql, [(id, parent, detail)])]."""
    seen = []
    fetchall, fetchone = store.db.fetchall, store.db.fetchone

    async def record_all(sql, params=()):
        seen.append((sql, list(params)))
        return await fetchall(sql, params)

    async def record_one(sql, params=()):
        seen.append((sql, list(params)))
        return await fetchone(sql, params)
    monkeypatch.setattr(store.db, "fetchall", record_all)
    monkeypatch.setattr(store.db, "fetchone", record_one)
    result = await history.page(**kwargs)
    monkeypatch.undo()
    plans = []
    for sql, params in seen:
        rows = await store.db.fetchall("EXPLAIN QUERY PLAN " + sql, params)
        plans.append((sql, [(r[0], r[1], r[3]) for r in rows]))
    return result, plans


@pytest.mark.parametrize("include_deleted", [True, False])
async def test_a_month_of_one_account_is_read_through_history_order(store, account, history, monkeypatch,
                                                                     include_deleted):
    accounts = [account.id] + [(await store.accounts.create(f"a{n}"))[0].id for n in range(9)]
    async with store.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO tasks (taskid, account_id, image, params, state, holds_executor, deleted,"
            " created_at, updated_at) VALUES (?, ?, ?, '', 4, 0, ?, ?, ?)",
            [(f"t{n:05d}", accounts[n % 10], IMAGE, int(n % 3 == 0), T0 + n * 300.0, T0 + n * 300.0)
             for n in range(5000)])
        await conn.execute("ANALYZE")
    query = {**EVERYTHING, "account_id": account.id, "include_deleted": include_deleted,
             "created_from": T0 + 2 * DAY, "created_to": T0 + 12 * DAY, "limit": 100}
    first, plans = await plans_of_page(store, history, monkeypatch, **query, cursor=None)
    assert len(first.details) == 100 and first.has_more
    _, next_plans = await plans_of_page(store, history, monkeypatch, **query, cursor=first.next_cursor)
    for sql, plan in plans + next_plans:
        top = [detail for _, parent, detail in plan if parent == 0]
        if sql.startswith("SELECT COUNT"):
            assert any("USING" in d and "INDEX" in d for d in top), plan  # never a scan of every task
            continue
        assert top[0] == "SEARCH t USING INDEX history_order (account_id=? AND created_at>? AND created_at<?)", plan
        assert not any("TEMP B-TREE" in d for d in top), plan  # the index gives the order: no sort


# --- purge ---------------------------------------------------------------------------------


async def insert_charge(store, taskid):
    """A ledger row for the task, whatever else the ledger's columns are (the ledger is not ours)."""
    filler = {"INTEGER": 1, "REAL": 1.0, "TEXT": "x"}
    columns = {r["name"]: filler.get(r["type"].upper(), 1)
               for r in await store.db.fetchall("PRAGMA table_info(charges)") if r["notnull"] and not r["pk"]}
    columns["taskid"] = taskid
    await store.db.execute(
        f"INSERT INTO charges ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})", list(columns.values()))


async def test_purge_forgets_old_deleted_tasks_and_their_commands_only(store, account, hwid, history):
    old, recent = T0, T0 + 10 * DAY
    await insert(store, "old-deleted", account.id, old, deleted=True, hwid=hwid)
    await insert(store, "old-live", account.id, old, hwid=hwid)
    await insert(store, "recent-deleted", account.id, recent, deleted=True, hwid=hwid)
    # Its container is not gone yet: the agent still has to be told to remove it.
    await insert(store, "old-deleted-held", account.id, old, deleted=True, hwid=hwid, holds_executor=True)
    async with store.db.transaction() as conn:
        for taskid in ("old-deleted", "old-live", "recent-deleted", "old-deleted-held"):
            await conn.execute(
                "INSERT INTO commands (hwid, taskid, op, payload, created_at, done) VALUES (?, ?, 'start', '{}', ?, 1)",
                (hwid, taskid, old))
    await insert_charge(store, "old-deleted")

    assert await history.purge(older_than=old + DAY) == 1

    remaining = {r["taskid"] for r in await store.db.fetchall("SELECT taskid FROM tasks")}
    assert remaining == {"old-live", "recent-deleted", "old-deleted-held"}
    commands = {r["taskid"] for r in await store.db.fetchall("SELECT taskid FROM commands")}
    assert commands == remaining
    charges = await store.db.fetchall("SELECT taskid FROM charges")
    assert [r["taskid"] for r in charges] == ["old-deleted"]
    assert await history.purge(older_than=old + DAY) == 0
    assert [d.task.taskid for d in (await page(history, account.id)).details] == [
        "recent-deleted", "old-live", "old-deleted-held"]
