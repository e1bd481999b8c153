"""The ledger: each step of a task's meter and the charges it makes, written together.

A step reads the task's meter, computes (``megamind.metering``), and writes the new
meter only if nobody moved it meanwhile (its ``seq``), together with the charges, the
task's totals and the prepaid account's balance, in the caller's transaction.  The
charges table is append-only: a row is never changed or deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from megamind import metering
from megamind.metering import Meter, Step
from megamind.money import MICRO, share, to_micro
from megamind.store.db import Database

_METER_COLUMNS = (
    "t.price, t.run_key, t.run_started, t.meter_from, t.run_ms, t.run_micro, t.meter_seq, t.billed_ms,"
    " t.cost_micro, t.unseen_from, t.unseen_to, t.account_id, t.hwid, t.image, e.account_id AS owner_id, a.balance_micro"
)
_METER_FROM = (
    "FROM tasks t JOIN executors e ON e.hwid = t.hwid JOIN accounts a ON a.id = t.account_id"
)


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


def _metered(taskid: str, row) -> Metered:
    meter = Meter(to_micro(row[0] or 0), *row[1:11])
    return Metered(taskid, meter, row[11], row[12], row[13], row[14], row[15] is not None)


class Ledger:
    def __init__(self, db: Database, platform_fee: float = 0.0) -> None:
        self._db = db
        self._fee_micro = to_micro(platform_fee)  # the platform's share of each charge, in millionths

    async def step(self, conn, taskid: str, move: Callable[[Meter], Step]) -> Meter | None:
        """Move one task's meter inside the caller's transaction; None for a task with no executor."""
        rows = await conn.execute_fetchall(
            f"SELECT {_METER_COLUMNS} {_METER_FROM} WHERE t.taskid = ?", (taskid,))
        if not rows:
            return None
        return await self._write(conn, _metered(taskid, rows[0]), move)

    async def _write(self, conn, metered: Metered, move: Callable[[Meter], Step]) -> Meter:
        before = metered.meter
        after, charges = move(before)
        if after == before:
            return before
        changed = await conn.execute(
            "UPDATE tasks SET run_key = ?, run_started = ?, meter_from = ?, run_ms = ?, run_micro = ?,"
            " meter_seq = ?, billed_ms = ?, cost_micro = ?, unseen_from = ?, unseen_to = ?"
            " WHERE taskid = ? AND meter_seq = ?",
            (after.run_key, after.run_started, after.meter_from, after.run_ms, after.run_micro, after.seq,
             after.billed_ms, after.cost_micro, after.unseen_from, after.unseen_to, metered.taskid, before.seq),
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
        watched = " AND (a.balance_micro IS NOT NULL OR a.spend_limit_micro IS NOT NULL)" if watched_only else ""
        charged: set[int] = set()
        async with self._db.transaction() as conn:
            # The moment every connected executor was last known alive, should the API die now.
            await conn.execute("UPDATE executors SET seen_at = ? WHERE online = 1", (now,))
            rows = await conn.execute_fetchall(
                f"SELECT t.taskid, {_METER_COLUMNS} {_METER_FROM}"
                f" WHERE t.meter_from IS NOT NULL AND e.online = 1{watched}")
            for row in rows:
                metered = _metered(row[0], row[1:])
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
                f"SELECT t.taskid, {_METER_COLUMNS} {_METER_FROM} WHERE t.hwid = ? AND t.meter_from IS NOT NULL",
                (hwid,))
            for row in rows:
                await self._write(conn, _metered(row[0], row[1:]), lambda m: metering.tick(m, now))
            await conn.execute("UPDATE executors SET seen_at = ? WHERE hwid = ?", (now, hwid))

    async def seen_again(self, hwid: str) -> None:
        now = time.time()
        async with self._db.transaction() as conn:
            seen = await conn.execute_fetchall("SELECT seen_at FROM executors WHERE hwid = ?", (hwid,))
            last_seen = seen[0][0] if seen else None
            rows = await conn.execute_fetchall(
                f"SELECT t.taskid, {_METER_COLUMNS} {_METER_FROM} WHERE t.hwid = ? AND t.meter_from IS NOT NULL",
                (hwid,))
            for row in rows:
                await self._write(conn, _metered(row[0], row[1:]),
                                  lambda m: (metering.seen_again(m, now, last_seen), ()))
