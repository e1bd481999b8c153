"""The ledger: each step of a task's meter and the charges it makes, written together.

A step reads the task's meter, computes (``megamind.metering``), and writes the new
meter only if nobody moved it meanwhile (its ``seq``), together with the charges, the
task's totals and the prepaid account's balance, in the caller's transaction.  The
charges table is append-only: a row is never changed or deleted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from megamind import metering
from megamind.metering import Meter, Step
from megamind.money import MICRO, share, to_micro
from megamind.store.db import Database

# A task's meter and whom its charges concern, as columns of `tasks` alone, so that an
# UPDATE of the task can hand them back (RETURNING) without a second read.
METER_COLUMNS = (
    "taskid, price, run_key, run_started, meter_from, run_ms, run_micro, meter_seq, billed_ms, cost_micro,"
    " unseen, placed_at, account_id, hwid, image,"
    " (SELECT e.account_id FROM executors e WHERE e.hwid = tasks.hwid),"
    " (SELECT a.balance_micro FROM accounts a WHERE a.id = tasks.account_id)"
)
_WATCHED = " AND account_id IN (SELECT id FROM accounts WHERE balance_micro IS NOT NULL OR spend_limit_micro IS NOT NULL)"


@dataclass(frozen=True)
class Metered:
    """A task's meter and whom its charges concern."""

    taskid: str
    meter: Meter
    account_id: int
    hwid: str
    image: str
    owner_id: int
    prepaid: bool


def _metered(row) -> Metered:
    """A row of `METER_COLUMNS`."""
    unseen = tuple(tuple(gap) for gap in json.loads(row[10]))
    meter = Meter(to_micro(row[1] or 0), *row[2:10], unseen=unseen, placed_at=row[11])
    return Metered(row[0], meter, row[12], row[13], row[14], row[15], row[16] is not None)


class Ledger:
    def __init__(self, db: Database, platform_fee: float = 0.0, metering: bool = True) -> None:
        self._db = db
        self._fee_micro = to_micro(platform_fee)  # the platform's share of each charge, in millionths
        self._metering = metering  # off: nothing is metered or charged (`megamind server --no-metering`)

    async def step(self, conn, taskid: str, move: Callable[[Meter], Step]) -> Meter | None:
        """Move one task's meter inside the caller's transaction; None for a task with no executor."""
        if not self._metering:
            return None
        rows = await conn.execute_fetchall(
            f"SELECT {METER_COLUMNS} FROM tasks WHERE taskid = ? AND hwid IS NOT NULL", (taskid,))
        if not rows:
            return None
        return await self._write(conn, _metered(rows[0]), move)

    async def step_returned(self, conn, row, move: Callable[[Meter], Step]) -> Meter | None:
        """As `step`, for a row of `METER_COLUMNS` an UPDATE of the task has just returned."""
        if row[13] is None or not self._metering:  # no executor: nothing to meter
            return None
        return await self._write(conn, _metered(row), move)

    async def _write(self, conn, metered: Metered, move: Callable[[Meter], Step]) -> Meter:
        before = metered.meter
        after, charges = move(before)
        if after == before:
            return before
        changed = await conn.execute(
            "UPDATE tasks SET run_key = ?, run_started = ?, meter_from = ?, run_ms = ?, run_micro = ?,"
            " meter_seq = ?, billed_ms = ?, cost_micro = ?, unseen = ?"
            " WHERE taskid = ? AND meter_seq = ?",
            (after.run_key, after.run_started, after.meter_from, after.run_ms, after.run_micro, after.seq,
             after.billed_ms, after.cost_micro, json.dumps(after.unseen), metered.taskid, before.seq),
        )
        if changed.rowcount == 0:
            return before  # moved by someone else since it was read: their step stands
        if charges:
            now = time.time()
            price = before.price_micro / MICRO
            await conn.executemany(
                "INSERT INTO charges (taskid, seq, account_id, hwid, owner_id, image, period_start, period_end,"
                " ms, price, micro, fee_micro, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(metered.taskid, c.seq, metered.account_id, metered.hwid, metered.owner_id, metered.image,
                  c.start, c.end, c.ms, price, c.micro, share(c.micro, self._fee_micro), now)
                 for c in charges],
            )
            if metered.prepaid:
                await conn.execute(
                    "UPDATE accounts SET balance_micro = balance_micro - ? WHERE id = ?",
                    (sum(c.micro for c in charges), metered.account_id),
                )
        return after

    # --- the meter's own moments -------------------------------------------------------

    async def tick(self, *, watched_only: bool) -> set[int]:
        """Charge every run under way on an online executor up to now (``watched_only``: only
        those of prepaid or spend-limited accounts); the accounts charged."""
        now = time.time()
        watched = _WATCHED if watched_only else ""
        charged: set[int] = set()
        async with self._db.transaction() as conn:
            # The moment every connected executor was last known alive, should the API die now.
            await conn.execute("UPDATE executors SET seen_at = ? WHERE online = 1", (now,))
            rows = await conn.execute_fetchall(
                f"SELECT {METER_COLUMNS} FROM tasks WHERE meter_from IS NOT NULL"
                f" AND hwid IN (SELECT hwid FROM executors WHERE online = 1){watched}")
            for row in rows:
                metered = _metered(row)
                after = await self._write(conn, metered, lambda m: metering.tick(m, now))
                if after != metered.meter:
                    charged.add(metered.account_id)
        return charged

    async def lose_sight(self, hwid: str) -> None:
        """The executor went silent: its runs are charged up to now, and not past it unless it
        comes back soon with the engine vouching for them (``seen_again``)."""
        now = time.time()
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall(
                f"SELECT {METER_COLUMNS} FROM tasks WHERE hwid = ? AND meter_from IS NOT NULL",
                (hwid,))
            for row in rows:
                await self._write(conn, _metered(row), lambda m: metering.tick(m, now))
            await conn.execute("UPDATE executors SET seen_at = ? WHERE hwid = ?", (now, hwid))

    async def seen_again(self, hwid: str) -> None:
        now = time.time()
        async with self._db.transaction() as conn:
            seen = await conn.execute_fetchall("SELECT seen_at FROM executors WHERE hwid = ?", (hwid,))
            last_seen = seen[0][0] if seen else None
            rows = await conn.execute_fetchall(
                f"SELECT {METER_COLUMNS} FROM tasks WHERE hwid = ? AND meter_from IS NOT NULL",
                (hwid,))
            for row in rows:
                await self._write(conn, _metered(row),
                                  lambda m: (metering.seen_again(m, now, last_seen), ()))
