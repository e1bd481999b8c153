"""Executors: registered hosts (or slots of a host) and their credentials."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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


def _record(row) -> ExecutorRecord:
    return ExecutorRecord(
        hwid=row["hwid"],
        account_id=row["account_id"],
        hardware=json.loads(row["hardware"]),
        cost=row["cost"],
        ip=row["ip"],
        last_seen=row["last_seen"],
    )


_COLUMNS = "hwid, account_id, hardware, cost, ip, last_seen"


class ExecutorStore:
    def __init__(self, db: Database, on_address_change: Callable[[], None] | None = None) -> None:
        self._db = db
        # Task listings show their executor's address: they are told when one changes.
        self._on_address_change = on_address_change

    async def register(self, account_id: int, hardware: dict[str, Any], cost: float) -> tuple[str, str]:
        """A new executor for the owner's account; returns its hwid and its own token."""
        hwid, token = new_hwid(), new_executor_token()
        await self._db.execute(
            "INSERT INTO executors (hwid, account_id, token_hash, hardware, cost, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (hwid, account_id, hash_secret(token), json.dumps(hardware), cost, time.time()),
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

    async def update_on_connect(self, hwid: str, hardware: dict[str, Any], cost: float, ip: str) -> None:
        await self._db.execute(
            "UPDATE executors SET hardware = ?, cost = ?, ip = ?, last_seen = ? WHERE hwid = ?",
            (json.dumps(hardware), cost, ip, time.time(), hwid),
        )
        if self._on_address_change is not None:
            self._on_address_change()
