"""A year of finished, billed tasks for the money benchmark (`bench/money.py`), written
straight into a fresh database before the server starts.

The schema, the accounts (each with an api-key) and the executors come from the product
(`Store.open` runs the migrations; the stores write the rows); the tasks and their
charges are then written with plain `sqlite3` in big transactions, in the order the
platform would have written them: oldest first, accounts interleaved, so one account's
rows lie scattered through the table as they would after a year of use.

Every task ran and was charged once: its meter is closed (billed_ms, cost_micro as
`megamind.money.cost_of` makes them) and the ledger holds its charge.  One task in
twenty is deleted (history keeps it).  Account sizes are spread over a hundredfold range,
as customers are; besides them, ``export`` owns the tasks the CSV export reads and
``listed`` exactly `LISTED` live tasks (what `gettasklist` returns, the baseline).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from megamind.config import ServerConfig
from megamind.money import cost_of, share, to_micro
from megamind.store import Store

DAY_S = 86_400.0
YEAR_S = 365 * DAY_S
LISTED = 100  # tasks of the `listed` account
DELETED_SHARE = 0.05
ERROR_SHARE = 0.1
IMAGES = tuple(f"megamind.network/app-{n}:latest" for n in range(20))
COSTS = (0.2, 0.5, 1.0, 2.5)  # per hour, the executors' in turn
HARDWARE = {"cpus": ["Seeded CPU"], "gpus": [], "ram": 16000, "network": "100mbit",
            "calculated_perfomance_rating": 2.0}
CHUNK = 100_000  # tasks a transaction

TASK_COLUMNS = ("taskid, account_id, hwid, image, params, state, error_msg, holds_executor, deleted, created_at,"
                " updated_at, price, placed_at, started_at, finished_at, exit_code, billed_seconds, run_key,"
                " run_started, run_ms, run_micro, meter_seq, billed_ms, cost_micro, deleted_at")
CHARGE_COLUMNS = ("taskid, seq, account_id, hwid, owner_id, image, period_start, period_end, ms, price, micro,"
                  " fee_micro, created_at")


@dataclass(frozen=True)
class Account:
    id: int
    name: str
    key: str
    tasks: int


@dataclass(frozen=True)
class Executor:
    hwid: str
    cost: float
    token: str  # its agent's executor-token (the money benchmark's simulated agents connect with it)


@dataclass(frozen=True)
class Seeded:
    now: float  # the seeding's "now": every task was created in the year before it
    customers: list[Account]  # the accounts history is read for, `export` among them
    export: Account
    listed: Account
    owner: Account  # owns the executors
    executors: list[Executor]
    tasks: int
    seconds: float  # the seeding took


def account_sizes(total: int, count: int, rng: random.Random) -> list[int]:
    """``total`` tasks over ``count`` accounts, sizes log-uniform over a hundredfold range."""
    weights = [10 ** rng.uniform(0, 2) for _ in range(count)]
    scale = total / sum(weights)
    sizes = [int(w * scale) for w in weights]
    for n in range(total - sum(sizes)):  # what rounding down left over, one each
        sizes[n % count] += 1
    return sizes


async def _accounts_and_executors(path: Path, names: list[str], executors: int) -> tuple[list[Account], list[Executor]]:
    store = await Store.open(path)
    try:
        accounts = []
        for name in names:
            account, key = await store.accounts.create(name)
            accounts.append(Account(account.id, name, key, 0))
        owner = accounts[-1]
        made = []
        for n in range(executors):
            cost = COSTS[n % len(COSTS)]
            hwid, token = await store.executors.register(owner.id, HARDWARE, cost)
            made.append(Executor(hwid, cost, token))
    finally:
        await store.close()
    return accounts, made


def seed(path: Path, tasks: int, accounts: int, export_tasks: int, executors: int, rng_seed: int = 5) -> Seeded:
    """A fresh database at ``path``: ``tasks`` tasks over ``accounts`` accounts (`export` and
    `listed` among them), ``executors`` executors; one charge a task."""
    if accounts < 3 or tasks < export_tasks + LISTED + accounts - 2:
        raise ValueError(f"{tasks} tasks over {accounts} accounts cannot hold the export and the listing")
    started = time.monotonic()
    rng = random.Random(rng_seed)
    names = ["export", "listed"] + [f"customer-{n}" for n in range(accounts - 2)] + ["owner"]
    made, machines = asyncio.run(_accounts_and_executors(path, names, executors))
    sizes = [export_tasks, LISTED] + account_sizes(tasks - export_tasks - LISTED, accounts - 2, rng)
    made = [Account(a.id, a.name, a.key, size) for a, size in zip(made, sizes)] + [made[-1]]
    now = time.time()
    # Oldest first over every account, as the platform would have written them.
    order = sorted((now - rng.uniform(3 * 3600, YEAR_S), n) for n, size in enumerate(sizes) for _ in range(size))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        # A fresh file nobody else has open: no journal while it is written, WAL again after.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")
        for first in range(0, len(order), CHUNK):
            task_rows, charge_rows = _rows(order[first:first + CHUNK], made, machines, now, rng)
            conn.execute("BEGIN")
            conn.executemany(f"INSERT INTO tasks ({TASK_COLUMNS}) VALUES ({', '.join('?' * 25)})", task_rows)
            conn.executemany(f"INSERT INTO charges ({CHARGE_COLUMNS}) VALUES ({', '.join('?' * 13)})", charge_rows)
            conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")
    finally:
        conn.close()
    return Seeded(now, [made[0]] + made[2:-1], made[0], made[1], made[-1], machines, len(order),
                  time.monotonic() - started)


def _rows(chunk: list[tuple[float, int]], accounts: list[Account], machines: list[Executor], now: float,
          rng: random.Random) -> tuple[list[tuple], list[tuple]]:
    """The tasks rows and their charges, one each, of tasks created at these moments."""
    owner_id = accounts[-1].id
    fee = to_micro(ServerConfig.platform_fee)
    tasks, charges = [], []
    for created, n in chunk:
        account = accounts[n]
        taskid = f"{rng.getrandbits(96):024x}"
        machine = machines[rng.randrange(len(machines))]
        image = IMAGES[rng.randrange(len(IMAGES))]
        started = created + rng.uniform(1, 30)
        finished = started + rng.uniform(10, 7200)
        ms = round(finished * 1000) - round(started * 1000)
        micro = cost_of(to_micro(machine.cost), ms)
        failed = rng.random() < ERROR_SHARE
        state, error, exit_code = (5, "exited with code 1", 1) if failed else (4, "", 0)
        deleted_at = None
        if account.name != "listed" and rng.random() < DELETED_SHARE:
            deleted_at = min(finished + rng.uniform(60, 30 * DAY_S), now)
        tasks.append((taskid, account.id, machine.hwid, image, f"--job {len(tasks)}", state, error, 0,
                      int(deleted_at is not None), created, deleted_at or finished, machine.cost, created + 0.05,
                      started, finished, exit_code, ms / 1000, started, started, ms, micro, 1, ms, micro,
                      deleted_at))
        charges.append((taskid, 1, account.id, machine.hwid, owner_id, image, started, finished, ms, machine.cost,
                        micro, share(micro, fee), finished))
    return tasks, charges
