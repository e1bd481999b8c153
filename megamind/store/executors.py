"""Executors: registered hosts (or slots of a host) and their credentials.

A removed executor (its owner's ``DELETE /api/v1/executors/{hwid}``, or ``megamind admin
revoke-executor``) keeps its row for its tasks' history, but nothing finds it any more:
not its token, not a listing, not placement; and it never comes online again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from megamind.errors import ExecutorNotFound, Forbidden
from megamind.placement import Capacity
from megamind.secrets import (
    EXECUTOR_TOKEN_PREFIX,
    hash_secret,
    new_executor_token,
    new_hwid,
)
from megamind.store.db import Database


@dataclass
class ExecutorRecord:
    hwid: str
    account_id: int
    hardware: dict[str, Any] = field(default_factory=dict)
    cost: float = 0.0
    ip: str = ""
    last_seen: float | None = None  # when its agent last connected
    online: bool = False
    busy: bool = False  # a task holds it (filled in by `listing`)
    publish_address: str = ""

    @property
    def capacity(self) -> Capacity:
        return Capacity.of(self.hwid, self.hardware, self.cost)


def _record(row) -> ExecutorRecord:
    return ExecutorRecord(
        hwid=row["hwid"],
        account_id=row["account_id"],
        hardware=json.loads(row["hardware"]),
        cost=row["cost"],
        ip=row["ip"],
        last_seen=row["last_seen"],
        online=bool(row["online"]),
        busy=bool(row["busy"]),
        publish_address=row["publish_address"],
    )


_COLUMNS = ("hwid, account_id, hardware, cost, ip, last_seen, online, publish_address,"
            " EXISTS (SELECT 1 FROM tasks t WHERE t.hwid = executors.hwid AND t.holds_executor = 1) AS busy")
_SIZE_COLUMNS = ("gpu_count", "min_vram_mb", "cpu_count", "cpu_share", "ram_mb", "rating", "gpu_names")
_SET_SIZE = ", ".join(f"{c} = ?" for c in _SIZE_COLUMNS)
_LIVE = "removed_at IS NULL"
# SQLite's default bound on the parameters of one statement is 999 (older builds).
_IDS_PER_QUERY = 500


def _size(hwid: str, hardware: dict[str, Any], cost: float) -> tuple:
    columns = Capacity.of(hwid, hardware, cost).columns()
    return tuple(columns[c] for c in _SIZE_COLUMNS)


class ExecutorStore:
    def __init__(self, db: Database, on_address_change: Callable[[], None] | None = None) -> None:
        self._db = db
        # Task listings show their executor's address: they are told when one changes.
        self._on_address_change = on_address_change

    async def register(self, account_id: int, hardware: dict[str, Any], cost: float,
                       cap: int | None = None) -> tuple[str, str]:
        """A new executor for the owner's account; returns its hwid and its own token.
        ``cap``: the most executors the account may hold (removed ones do not count)."""
        hwid, token = new_hwid(), new_executor_token()
        async with self._db.transaction() as conn:
            if cap is not None:
                held = (await conn.execute_fetchall(
                    f"SELECT count(*) FROM executors WHERE account_id = ? AND {_LIVE}", (account_id,)))[0][0]
                if held >= cap:
                    raise Forbidden(f"this account holds {held} executors, the most this server allows ({cap}); "
                                    "remove one first (megamind executors rm HWID)")
            await conn.execute(
                "INSERT INTO executors (hwid, account_id, token_hash, hardware, cost, created_at,"
                f" {', '.join(_SIZE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, {', '.join('?' * len(_SIZE_COLUMNS))})",
                (hwid, account_id, hash_secret(token), json.dumps(hardware), cost, time.time(),
                 *_size(hwid, hardware, cost)),
            )
        return hwid, token

    async def by_token(self, token: str) -> ExecutorRecord | None:
        """The executor of this token; None when unknown or removed (revoked)."""
        if not token.startswith(EXECUTOR_TOKEN_PREFIX):
            return None
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM executors WHERE token_hash = ? AND {_LIVE}", (hash_secret(token),)
        )
        return _record(row) if row else None

    async def get(self, hwid: str) -> ExecutorRecord | None:
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM executors WHERE hwid = ? AND {_LIVE}", (hwid,))
        return _record(row) if row else None

    async def for_account(self, account_id: int) -> list[ExecutorRecord]:
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM executors WHERE account_id = ? AND {_LIVE} ORDER BY created_at", (account_id,)
        )
        return [_record(r) for r in rows]

    async def all(self) -> list[ExecutorRecord]:
        rows = await self._db.fetchall(f"SELECT {_COLUMNS} FROM executors WHERE {_LIVE} ORDER BY created_at")
        return [_record(r) for r in rows]

    async def remove(self, hwid: str, owner_id: int | None = None) -> None:
        """Remove an executor (of ``owner_id``'s account; None: any, as an admin): its token
        stops working now, and the commands it was still to carry out are dropped.  Ending
        its tasks, closing its link and taking it offline is the hub's (`ExecutorHub.retire`),
        which finds it by ``online`` (`removed_in_use`) when another process removed it."""
        owned, args = ("", ()) if owner_id is None else (" AND account_id = ?", (owner_id,))
        async with self._db.transaction() as conn:
            changed = await conn.execute(
                f"UPDATE executors SET removed_at = ? WHERE hwid = ? AND {_LIVE}{owned}",
                (time.time(), hwid, *args),
            )
            if changed.rowcount == 0:
                where = "" if owner_id is None else " in this account"
                raise ExecutorNotFound(f"no executor {hwid!r}{where}")
            await conn.execute("UPDATE commands SET done = 1 WHERE hwid = ? AND done = 0", (hwid,))

    async def removed_in_use(self) -> list[str]:
        """Removed executors that are still online or still held by a task: what the hub has
        yet to retire (an admin's revocation, written by another process)."""
        rows = await self._db.fetchall(
            "SELECT hwid FROM executors e WHERE e.removed_at IS NOT NULL AND (e.online = 1"
            " OR EXISTS (SELECT 1 FROM tasks t WHERE t.hwid = e.hwid AND t.holds_executor = 1))"
        )
        return [r["hwid"] for r in rows]

    async def seen_at(self, hwid: str) -> float | None:
        """The last moment the API knew the executor's agent alive (see `Ledger.tick`)."""
        row = await self._db.fetchone("SELECT seen_at FROM executors WHERE hwid = ?", (hwid,))
        return row["seen_at"] if row else None

    async def given(self, hwid: str, taskids: list[str]) -> set[str]:
        """Those of ``taskids`` that were ever placed on this executor."""
        known: set[str] = set()
        for start in range(0, len(taskids), _IDS_PER_QUERY):
            chunk = taskids[start:start + _IDS_PER_QUERY]
            rows = await self._db.fetchall(
                f"SELECT taskid FROM tasks WHERE hwid = ? AND taskid IN ({', '.join('?' * len(chunk))})",
                (hwid, *chunk),
            )
            known.update(r["taskid"] for r in rows)
        return known

    async def update_on_connect(self, hwid: str, hardware: dict[str, Any], cost: float, ip: str,
                                publish_address: str = "") -> None:
        await self._db.execute(
            f"UPDATE executors SET hardware = ?, cost = ?, ip = ?, publish_address = ?, last_seen = ?, {_SET_SIZE}"
            f" WHERE hwid = ? AND {_LIVE}",
            (json.dumps(hardware), cost, ip, publish_address, time.time(), *_size(hwid, hardware, cost), hwid),
        )
        if self._on_address_change is not None:
            self._on_address_change()

    async def set_online(self, hwid: str, online: bool) -> bool:
        """Placement reads who is online from here, so every API process sees the same.
        False when it cannot come online: it was removed (or never was)."""
        changed = await self._db.execute(
            f"UPDATE executors SET online = ? WHERE hwid = ? AND (? = 0 OR {_LIVE})", (int(online), hwid, int(online))
        )
        return changed > 0

    async def all_offline(self) -> None:
        """At start-up no agent is connected to this process yet.  (With several API
        processes, each would own the executors connected to it: a later issue's lease.)"""
        await self._db.execute("UPDATE executors SET online = 0 WHERE online = 1")
