"""The money benchmark's seeding, and its whole run at a tiny size (no timing asserted)."""

from __future__ import annotations

import asyncio
import random
import sqlite3

from bench.money import FULL, QUICK, Size, busy_accounts, measure
from bench.moneyseed import LISTED, YEAR_S, account_sizes, seed
from megamind.store import Store

TINY = Size(tasks=2_000, accounts=10, export_rows=300, executors=4, pages=6, exports=1, meter_rounds=2, meter_tasks=3)


def test_account_sizes_add_up_and_spread_over_a_hundredfold_range():
    sizes = account_sizes(100_000, 500, random.Random(1))
    assert sum(sizes) == 100_000 and len(sizes) == 500
    assert 20 < max(sizes) / min(sizes) < 110


def test_the_seeded_year_is_billed_once_a_task_and_readable_through_the_store(tmp_path):
    db = tmp_path / "money.db"
    seeded = seed(db, 2_000, 10, 300, 4)
    assert seeded.tasks == 2_000 and seeded.export.tasks == 300 and seeded.listed.tasks == LISTED
    assert sum(a.tasks for a in seeded.customers) + LISTED == 2_000
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        tasks, cost, deleted, oldest, newest = conn.execute(
            "SELECT COUNT(*), SUM(cost_micro), SUM(deleted), MIN(created_at), MAX(finished_at) FROM tasks").fetchone()
        charges, micro = conn.execute("SELECT COUNT(*), SUM(micro) FROM charges").fetchone()
        assert (tasks, cost) == (charges, micro) == (2_000, micro)
        assert 0 < deleted < 2_000 * 0.1
        assert seeded.now - YEAR_S <= oldest and newest <= seeded.now
    finally:
        conn.close()
    asyncio.run(_read_back(db, seeded))
    # None holds a year of 1,200 tasks: history is read for the largest.
    assert busy_accounts(seeded) == [max(seeded.customers, key=lambda a: a.tasks)]


async def _read_back(db, seeded) -> None:
    store = await Store.open(db)
    try:
        page = await store.history.page(seeded.export.id, created_from=None, created_to=None, state=None, image=None,
                                        include_deleted=True, limit=100, cursor=None)
        assert page.total == 300 and len(page.details) == 100 and page.has_more
        assert all(d.billed_ms > 0 and d.cost_micro > 0 for d in page.details)
        assert len(await store.tasks.list_for_account(seeded.listed.id)) == LISTED
    finally:
        await store.close()


def test_sizes_keep_the_quick_run_small():
    assert (FULL.tasks, FULL.accounts, FULL.export_rows) == (1_000_000, 1000, 10_000)
    assert QUICK.tasks <= 50_000 and QUICK.export_rows >= 10_000


def test_a_tiny_run_gives_every_row(tmp_path):
    rows, series = measure(TINY, tmp_path)
    assert [r.benchmark for r in rows] == ["money history page", "money csv export", "money metering",
                                           "money metering, store only"]
    page, export, metering, store_only = rows
    assert len(page.ours.samples) == len(page.base.samples) == TINY.pages
    assert len(export.ours.samples) == len(export.base.samples) == TINY.exports
    assert len(metering.ours.samples) == len(metering.base.samples) == TINY.meter_rounds
    assert len(store_only.ours.samples) == len(store_only.base.samples) == TINY.meter_rounds
    assert all(r.ratio is not None and r.ratio > 0 for r in rows)
    # Through the API: every task the agents ran ended stopped on both servers, billed on the
    # metered one, and no charge was written on the one with --no-metering.
    ran = (TINY.meter_rounds + 1) * TINY.meter_tasks * TINY.executors
    assert f"tasks stopped {ran:,} on, {ran:,} off; billed {ran:,} on, 0 off; charges written " in metering.notes[0]
    assert "under way), 0 off" in metering.notes[0]
    # In the store: one charge a metered task; the rounds with the ledger off left none.
    metered = (TINY.meter_rounds + 1) * TINY.executors
    assert f"charges written {metered:,} (one a metered task: {metered:,})" in store_only.notes[0]
    assert [title for title, _, _ in series] == ["money: history page of 100 vs gettasklist",
                                                 "money metering: API CPU a state report, a round each"]
