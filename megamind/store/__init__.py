"""Persistence: everything the API keeps lives in one SQLite file (file contents in blobs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from megamind.config import ServerConfig
from megamind.store.accounts import AccountStore
from megamind.store.db import Database
from megamind.store.executors import ExecutorStore
from megamind.store.estimates import Estimator
from megamind.store.files import FileStore
from megamind.store.history import HistoryStore
from megamind.store.ledger import Ledger
from megamind.store.logs import LogStore
from megamind.store.queue import Scheduler
from megamind.store.repositories import RepositoryStore
from megamind.store.spending import Spending
from megamind.store.sqllogs import SqlLogStore
from megamind.store.tasks import TaskStore


@dataclass
class Store:
    db: Database
    accounts: AccountStore
    executors: ExecutorStore
    tasks: TaskStore
    logs: LogStore
    files: FileStore
    scheduler: Scheduler
    ledger: Ledger
    spending: Spending
    estimates: Estimator
    history: HistoryStore
    repositories: RepositoryStore

    @classmethod
    async def open(cls, path: str | Path, log_limit_bytes: int = ServerConfig.log_limit_bytes,
                   platform_fee: float = ServerConfig.platform_fee, metering: bool = ServerConfig.metering) -> "Store":
        db = Database(path)
        await db.open()
        ledger = Ledger(db, platform_fee, metering)
        tasks = TaskStore(db, ledger)
        return cls(db, AccountStore(db), ExecutorStore(db, tasks.forget_listings), tasks,
                   SqlLogStore(db, log_limit_bytes), FileStore(db), Scheduler(db, tasks.listings.forget_account),
                   ledger, Spending(db), Estimator(db), HistoryStore(db), RepositoryStore(db))

    async def close(self) -> None:
        await self.logs.flush()
        await self.db.close()
