"""Who owns each repository of the registry, and whether others may pull it.

A repository belongs to the account that was first granted a push to it (the token
server records the claim before the push happens); it is private until its owner
publishes it.  The registry knows nothing of this: it trusts the tokens.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from megamind.errors import Forbidden
from megamind.registryauth.tokens import Ownership
from megamind.store.db import Database

_SELECT = ("SELECT r.name, r.owner_id, a.name AS owner, r.public, r.created_at"
           " FROM repositories r JOIN accounts a ON a.id = r.owner_id")
_MANY_AT_ONCE = 500  # names per IN (...) query, well under SQLite's bound on parameters


@dataclass(frozen=True)
class Repository:
    name: str
    owner_id: int
    owner: str  # the owning account's name
    public: bool
    created_at: float

    @property
    def ownership(self) -> Ownership:
        return Ownership(self.owner_id, self.public)


def _repository(row) -> Repository:
    return Repository(row["name"], row["owner_id"], row["owner"], bool(row["public"]), row["created_at"])


class RepositoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, name: str) -> Repository | None:
        row = await self._db.fetchone(f"{_SELECT} WHERE r.name = ?", (name,))
        return None if row is None else _repository(row)

    async def many(self, names: Iterable[str]) -> dict[str, Repository]:
        """The owned ones among ``names``; a name nobody owns is absent."""
        wanted = sorted(set(names))
        found: dict[str, Repository] = {}
        for start in range(0, len(wanted), _MANY_AT_ONCE):
            chunk = wanted[start:start + _MANY_AT_ONCE]
            rows = await self._db.fetchall(f"{_SELECT} WHERE r.name IN ({','.join('?' * len(chunk))})", chunk)
            found.update((row["name"], _repository(row)) for row in rows)
        return found

    async def ownership(self, name: str) -> Ownership:
        repository = await self.get(name)
        return Ownership() if repository is None else repository.ownership

    async def claim(self, name: str, account_id: int) -> Ownership:
        """Make the account the owner of a repository nobody owns; whoever owns it after."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT OR IGNORE INTO repositories (name, owner_id, public, created_at) VALUES (?, ?, 0, ?)",
                (name, account_id, time.time()),
            )
            rows = await conn.execute_fetchall("SELECT owner_id, public FROM repositories WHERE name = ?", (name,))
        (row,) = rows
        return Ownership(row["owner_id"], bool(row["public"]))

    async def set_public(self, account_id: int, name: str, public: bool) -> Repository:
        """Publish or unpublish one of the account's repositories.

        Another account's repository, and one nobody owns, answer alike: whether a
        private repository exists is its owner's business."""
        changed = await self._db.execute(
            "UPDATE repositories SET public = ? WHERE name = ? AND owner_id = ?", (int(public), name, account_id)
        )
        repository = await self.get(name) if changed else None
        if repository is None:
            raise Forbidden(f"no repository {name!r} belongs to this account: a repository belongs to the "
                            "account that pushed it first")
        return repository

    async def task_account(self, taskid: str, name: str) -> tuple[int, str, Ownership] | None:
        """The task's account (id and name) and the repository's ownership, in one read."""
        row = await self._db.fetchone(
            "SELECT t.account_id, a.name AS account, r.owner_id, r.public FROM tasks t"
            " JOIN accounts a ON a.id = t.account_id"
            " LEFT JOIN repositories r ON r.name = ? WHERE t.taskid = ?",
            (name, taskid),
        )
        if row is None:
            return None
        return row["account_id"], row["account"], Ownership(row["owner_id"], bool(row["public"]))
