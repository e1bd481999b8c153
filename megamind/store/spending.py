"""Accounts' money: prepaid balances and credits, hourly spend limits, usage and earnings.

Everything here reads the ledger (``charges``, written by ``store/ledger.py``) or the
balance kept beside it.  An account with no balance (NULL) is not prepaid: its usage is
recorded and never refused.  Days are UTC days; a charge counts when it was made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from megamind.errors import AccountNotFound, InsufficientFunds, SpendLimitReached, ValidationFailed
from megamind.money import MAX_MICRO, format_money, from_micro, per_minute, to_micro
from megamind.store.db import Database

HOUR_S = 3600.0
BALANCE_EXHAUSTED = "stopped: balance exhausted"


def spend_limit_message(limit_micro: int) -> str:
    return f"stopped: hourly spend limit of {from_micro(limit_micro):g} reached"


@dataclass(frozen=True)
class AccountMoney:
    name: str
    balance_micro: int | None  # None: not prepaid
    spent_today_micro: int
    spent_month_micro: int
    spend_limit_micro: int | None
    spent_last_hour_micro: int


@dataclass(frozen=True)
class UsageLine:
    key: str  # a UTC day (YYYY-MM-DD), an image, or an hwid
    tasks: int
    billed_ms: int
    micro: int  # spent, or earned after the platform's fee


@dataclass(frozen=True)
class Overdrawn:
    account_id: int
    reason: str  # the error_msg its stopped tasks get


def _day_start(now: float) -> float:
    day = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    return day.timestamp()


def month_start(now: float) -> float:
    day = datetime.fromtimestamp(now, timezone.utc)
    return day.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def _utc_day(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%d")


class Spending:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- balances and limits ---------------------------------------------------------

    async def credit(self, name: str, amount: str | float, note: str = "") -> int:
        """Add credit (and make the account prepaid); the new balance in micro-units."""
        micro = to_micro(amount)
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall("SELECT id, balance_micro FROM accounts WHERE name = ?", (name,))
            if not rows:
                raise AccountNotFound(f"no account named {name!r}")
            account_id, balance = rows[0][0], rows[0][1] or 0
            if not -MAX_MICRO <= balance + micro <= MAX_MICRO:
                raise ValidationFailed(f"amount: a balance stays within {format_money(MAX_MICRO)} either way")
            await conn.execute("INSERT INTO credits (account_id, micro, note, created_at) VALUES (?, ?, ?, ?)",
                               (account_id, micro, note, time.time()))
            cursor = await conn.execute(
                "UPDATE accounts SET balance_micro = COALESCE(balance_micro, 0) + ? WHERE id = ?"
                " RETURNING balance_micro", (micro, account_id))
            return (await cursor.fetchone())[0]

    async def set_spend_limit(self, account_id: int, limit_micro: int | None) -> None:
        await self._db.execute("UPDATE accounts SET spend_limit_micro = ? WHERE id = ?", (limit_micro, account_id))

    async def account(self, account_id: int) -> AccountMoney:
        now = time.time()
        row = await self._db.fetchone(
            "SELECT a.name, a.balance_micro, a.spend_limit_micro,"
            " (SELECT COALESCE(SUM(micro), 0) FROM charges c WHERE c.account_id = a.id AND c.created_at >= ?),"
            " (SELECT COALESCE(SUM(micro), 0) FROM charges c WHERE c.account_id = a.id AND c.created_at >= ?),"
            " (SELECT COALESCE(SUM(micro), 0) FROM charges c WHERE c.account_id = a.id AND c.created_at >= ?)"
            " FROM accounts a WHERE a.id = ?",
            (_day_start(now), month_start(now), now - HOUR_S, account_id),
        )
        if row is None:
            raise AccountNotFound("no such account")
        return AccountMoney(row[0], row[1], row[3], row[4], row[2], row[5])

    @staticmethod
    async def check_can_start(conn, account_id: int, price: float | None) -> None:
        """Refuse a task a prepaid account cannot pay a minute of, or an account past its
        hourly limit (inside the placing transaction, so two submissions see one balance)."""
        rows = await conn.execute_fetchall(
            "SELECT balance_micro, spend_limit_micro FROM accounts WHERE id = ?", (account_id,))
        if not rows:
            return
        balance, limit = rows[0][0], rows[0][1]
        if balance is not None:
            minute = per_minute(to_micro(price or 0))
            if balance < minute or balance <= 0:
                raise InsufficientFunds(
                    f"balance {from_micro(balance):g} cannot pay one minute ({from_micro(minute):g}) "
                    f"at {price or 0:g} per hour; add credit first")
        if limit is not None:
            spent = await _spent_since(conn, account_id, time.time() - HOUR_S)
            if spent >= limit:
                raise SpendLimitReached(
                    f"spent {from_micro(spent):g} in the last hour, the limit is {from_micro(limit):g}")

    async def overdrawn(self) -> list[Overdrawn]:
        """Accounts with live tasks that must stop: a prepaid balance at zero or below, or an
        hourly limit reached."""
        live = ("EXISTS (SELECT 1 FROM tasks t WHERE t.account_id = a.id AND t.deleted = 0"
                " AND t.cancelled = 0 AND t.state IN (2, 3))")
        found: list[Overdrawn] = []
        async with self._db.transaction() as conn:
            for row in await conn.execute_fetchall(
                    f"SELECT a.id FROM accounts a WHERE a.balance_micro <= 0 AND {live}"):
                found.append(Overdrawn(row[0], BALANCE_EXHAUSTED))
            limited = await conn.execute_fetchall(
                f"SELECT a.id, a.spend_limit_micro FROM accounts a WHERE a.spend_limit_micro IS NOT NULL AND {live}")
            since = time.time() - HOUR_S
            stopping = {o.account_id for o in found}
            for account_id, limit in limited:
                if account_id not in stopping and await _spent_since(conn, account_id, since) >= limit:
                    found.append(Overdrawn(account_id, spend_limit_message(limit)))
        return found

    # --- what was spent and earned -----------------------------------------------------

    async def usage(self, account_id: int, start: float, end: float) -> tuple[list[UsageLine], list[UsageLine]]:
        """Spend per UTC day and per image, in [start, end]."""
        rows = await self._db.fetchall(
            "SELECT created_at, image, taskid, ms, micro FROM charges"
            " WHERE account_id = ? AND created_at >= ? AND created_at <= ?", (account_id, start, end))
        return _grouped(rows, lambda r: _utc_day(r[0])), _grouped(rows, lambda r: r[1])

    async def earnings(self, owner_id: int, start: float, end: float) -> list[UsageLine]:
        """What each of the owner's executors earned in [start, end], after the platform's fee."""
        rows = await self._db.fetchall(
            "SELECT hwid, SUM(ms), SUM(micro - fee_micro), COUNT(DISTINCT taskid) FROM charges"
            " WHERE owner_id = ? AND created_at >= ? AND created_at <= ? GROUP BY hwid ORDER BY hwid",
            (owner_id, start, end))
        return [UsageLine(r[0], r[3], r[1], r[2]) for r in rows]


async def _spent_since(conn, account_id: int, since: float) -> int:
    rows = await conn.execute_fetchall(
        "SELECT COALESCE(SUM(micro), 0) FROM charges WHERE account_id = ? AND created_at >= ?", (account_id, since))
    return rows[0][0]


def _grouped(rows, key_of) -> list[UsageLine]:
    groups: dict[str, tuple[set[str], int, int]] = {}
    for row in rows:
        key = key_of(row)
        tasks, ms, micro = groups.get(key, (set(), 0, 0))
        tasks.add(row[2])
        groups[key] = (tasks, ms + row[3], micro + row[4])
    return [UsageLine(k, len(t), ms, micro) for k, (t, ms, micro) in sorted(groups.items())]
