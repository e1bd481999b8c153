"""Accounts and their api-keys."""

from __future__ import annotations

import time
from dataclasses import dataclass

from megamind.errors import AccountNotFound
from megamind.secrets import API_KEY_PREFIX, hash_secret, new_api_key
from megamind.store.db import Database


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    admin: bool = False  # may stop the server (Flux's service call)


@dataclass(frozen=True)
class ApiKeyInfo:
    id: int
    prefix: str
    created_at: float
    revoked_at: float | None
    rate_limit: str | None = None


@dataclass(frozen=True)
class Caller:
    """Who holds an api-key: the account, which of its keys, and that key's own limit."""

    account: Account
    key_id: int
    rate_limit: str | None


class AccountStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, name: str, admin: bool = False) -> tuple[Account, str]:
        """Create an account with a first api-key; the key is returned once, never stored."""
        key = new_api_key()
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO accounts (name, created_at, admin) VALUES (?, ?, ?)", (name, time.time(), int(admin))
            )
            account = Account(id=cursor.lastrowid, name=name, admin=admin)
            await self._insert_key(conn, account.id, key)
        return account, key

    async def get_by_name(self, name: str) -> Account:
        row = await self._db.fetchone("SELECT id, name, admin FROM accounts WHERE name = ?", (name,))
        if row is None:
            raise AccountNotFound(f"no account named {name!r}")
        return Account(id=row["id"], name=row["name"], admin=bool(row["admin"]))

    async def exists(self, name: str) -> bool:
        return await self._db.fetchone("SELECT 1 FROM accounts WHERE name = ?", (name,)) is not None

    async def add_key(self, name: str) -> str:
        account = await self.get_by_name(name)
        key = new_api_key()
        async with self._db.transaction() as conn:
            await self._insert_key(conn, account.id, key)
        return key

    async def list_keys(self, name: str) -> list[ApiKeyInfo]:
        account = await self.get_by_name(name)
        rows = await self._db.fetchall(
            "SELECT id, prefix, created_at, revoked_at, rate_limit FROM api_keys"
            " WHERE account_id = ? ORDER BY id",
            (account.id,),
        )
        return [
            ApiKeyInfo(r["id"], r["prefix"], r["created_at"], r["revoked_at"], r["rate_limit"]) for r in rows
        ]

    async def set_rate_limit(self, name: str, key_id: int, rate_limit: str | None) -> bool:
        account = await self.get_by_name(name)
        changed = await self._db.execute(
            "UPDATE api_keys SET rate_limit = ? WHERE id = ? AND account_id = ?",
            (rate_limit, key_id, account.id),
        )
        return changed > 0

    async def revoke_key(self, name: str, key_id: int) -> bool:
        account = await self.get_by_name(name)
        changed = await self._db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL",
            (time.time(), key_id, account.id),
        )
        return changed > 0

    async def by_api_key(self, key: str) -> Caller | None:
        if not key.startswith(API_KEY_PREFIX):
            return None
        row = await self._db.fetchone(
            "SELECT a.id, a.name, a.admin, k.id AS key_id, k.rate_limit FROM api_keys k"
            " JOIN accounts a ON a.id = k.account_id WHERE k.key_hash = ? AND k.revoked_at IS NULL",
            (hash_secret(key),),
        )
        if row is None:
            return None
        return Caller(Account(id=row["id"], name=row["name"], admin=bool(row["admin"])), row["key_id"],
                      row["rate_limit"])

    @staticmethod
    async def _insert_key(conn, account_id: int, key: str) -> None:
        await conn.execute(
            "INSERT INTO api_keys (account_id, key_hash, prefix, created_at) VALUES (?, ?, ?, ?)",
            (account_id, hash_secret(key), key[:8], time.time()),
        )
