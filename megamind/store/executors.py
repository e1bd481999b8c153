"""Executors: registered hosts (or slots of a host) and their credentials."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


def _size(hwid: str, hardware: dict[str, Any], cost: float) -> tuple:
    columns = Capacity.of(hwid, hardware, cost).columns()
    return tuple(columns[c] for c in _SIZE_COLUMNS)


class ExecutorStore:
    def __init__(self, db: Database, on_address_change: Callable[[], None] | None = None) -> None:
        self._db = db
        # Task listings show their executor's address: they are told when one changes.
        self._on_address_change = on_address_change

    async def register(self, account_id: int, hardware: dict[str, Any], cost: float) -> tuple[str, str]:
        """A new executor for the owner's account; returns its hwid and its own token."""
        hwid, token = new_hwid(), new_executor_token()
        await self._db.execute(
            "INSERT INTO executors (hwid, account_id, token_hash, hardware, cost, created_at,"
            f" {', '.join(_SIZE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, {', '.join('?' * len(_SIZE_COLUMNS))})",
            (hwid, account_id, hash_secret(token), json.dumps(hardware), cost, time.time(),
             *_size(hwid, hardware, cost)),
        )
        return hwid, token

    async def by_token(self, token: str) -> ExecutorRecord | None:
        if not token.startswith(EXECUTOR_TOKEN_PREFIX):
            return None
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM executors WHERE token_hash = ?", (hash_secret(token),)
        )
        return _record(row) if row else None

    async def get(self, hwid: str) -> ExecutorRecord | None:
        row = await self._db.fetchone(f"SELECT {_COLUMNS} FROM executors WHERE hwid = ?", (hwid,))
        return _record(row) if row else None

    async def for_account(self, account_id: int) -> list[ExecutorRecord]:
        rows = await self._db.fetchall(
            f"SELECT {_COLUMNS} FROM executors WHERE account_id = ? ORDER BY created_at", (account_id,)
        )
        return [_record(r) for r in rows]

    async def all(self) -> list[ExecutorRecord]:
        rows = await self._db.fetchall(f"SELECT {_COLUMNS} FROM executors ORDER BY created_at")
        return [_record(r) for r in rows]

    async def update_on_connect(self, hwid: str, hardware: dict[str, Any], cost: float, ip: str,
                                publish_address: str = "") -> None:
        await self._db.execute(
            f"UPDATE executors SET hardware = ?, cost = ?, ip = ?, publish_address = ?, last_seen = ?, {_SET_SIZE}"
            " WHERE hwid = ?",
            (json.dumps(hardware), cost, ip, publish_address, time.time(), *_size(hwid, hardware, cost), hwid),
        )
        if self._on_address_change is not None:
            self._on_address_change()

    async def set_online(self, hwid: str, online: bool) -> None:
        """Placement reads who is online from here, so every API process sees the same."""
        await self._db.execute("UPDATE executors SET online = ? WHERE hwid = ?", (int(online), hwid))

    async def all_offline(self) -> None:
        """At start-up no agent is connected to this process yet.  (With several API
        processes, each would own the executors connected to it: a later issue's lease.)"""
        await self._db.execute("UPDATE executors SET online = 0 WHERE online = 1")
