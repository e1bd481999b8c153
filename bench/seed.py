"""Fill a fresh database with accounts, offline executors and 100,000 tasks, before the
server starts: ``python -m bench.seed PATH [--tasks N]`` prints two api-keys as JSON.

The schema comes from the product (`Store.open` runs the migrations); the rows are
then written with plain `sqlite3` in one transaction, which takes a few seconds.
Tasks are finished (stopped or error), 100 per account, with a 20-line stdout log
each (rows of the log store's tables); the account ``bench`` owns exactly 100 of them (what `gettasklist` returns),
and the account ``owner`` registers the simulated executors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sqlite3
import time
from pathlib import Path

from megamind.protocol import LogCursor, Stream, StreamPosition
from megamind.secrets import hash_secret, new_executor_token, new_hwid
from megamind.store import Store

TASKS_PER_ACCOUNT = 100
SEEDED_EXECUTORS = 100
LOG_LINES = 20  # stdout lines per task
STDOUT = int(Stream.STDOUT)
HARDWARE = {"cpus": ["Seeded CPU"], "gpus": [], "ram": 16000, "network": "100mbit",
            "calculated_perfomance_rating": 2.0}


async def create_bench_accounts(path: Path) -> dict[str, str]:
    """A fresh database with a customer ("bench") and an owner of the executors; their api-keys."""
    store = await Store.open(path)
    try:
        _, bench = await store.accounts.create("bench")
        _, owner = await store.accounts.create("owner")
    finally:
        await store.close()
    return {"bench": bench, "owner": owner}


def seed(path: Path, tasks: int = 100_000) -> dict[str, str]:
    """Create the database at ``path`` with ``tasks`` tasks; returns the two api-keys."""
    keys = asyncio.run(create_bench_accounts(path))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("BEGIN")
        (bench_id,) = conn.execute("SELECT id FROM accounts WHERE name = 'bench'").fetchone()
        (owner_id,) = conn.execute("SELECT id FROM accounts WHERE name = 'owner'").fetchone()
        now = time.time()
        hwids = [new_hwid() for _ in range(SEEDED_EXECUTORS)]
        conn.executemany(
            "INSERT INTO executors (hwid, account_id, token_hash, hardware, cost, ip, created_at)"
            " VALUES (?, ?, ?, ?, 0.5, '10.0.0.1', ?)",
            [(h, owner_id, hash_secret(new_executor_token()), json.dumps(HARDWARE), now) for h in hwids],
        )
        accounts = [bench_id]
        others = max(0, (tasks - TASKS_PER_ACCOUNT + TASKS_PER_ACCOUNT - 1) // TASKS_PER_ACCOUNT)
        for n in range(others):
            accounts.append(conn.execute(
                "INSERT INTO accounts (name, created_at) VALUES (?, ?)", (f"customer-{n}", now)
            ).lastrowid)
        rows, lines, states = [], [], []
        for n in range(tasks):
            taskid = secrets.token_hex(12)
            state, error = (4, "") if n % 10 else (5, "exited with code 3")
            created = now - tasks + n
            rows.append((taskid, accounts[n // TASKS_PER_ACCOUNT], hwids[n % SEEDED_EXECUTORS],
                         "megamind.network/benchbox:latest", f"--job {n}", state, error, created, created))
            ns = int(created * 1e9)
            texts = [f"job {n} line {i}" for i in range(LOG_LINES)]
            lines += [(taskid, i + 1, STDOUT, ns + i, text) for i, text in enumerate(texts)]
            states.append((taskid, LogCursor(StreamPosition(ns + LOG_LINES - 1, 1)).to_json(), LOG_LINES + 1,
                           sum(len(t.encode()) + 1 for t in texts)))
        conn.executemany(
            "INSERT INTO tasks (taskid, account_id, hwid, image, params, state, error_msg, holds_executor,"
            " deleted, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?)",
            rows,
        )
        # As the API's log store keeps them (megamind/store/sqllogs.py): numbered lines, and
        # each task's cursor, next number and bytes kept.
        conn.executemany(
            "INSERT INTO log_lines (taskid, seq, stream, ns, text, dropped) VALUES (?, ?, ?, ?, ?, 0)", lines
        )
        conn.executemany(
            "INSERT INTO log_state (taskid, cursor, next_seq, stdout_bytes) VALUES (?, ?, ?, ?)", states
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return keys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--tasks", type=int, default=100_000)
    args = parser.parse_args()
    if args.db.exists():
        parser.error(f"{args.db} exists; seed a fresh file")
    print(json.dumps(seed(args.db, args.tasks)))


if __name__ == "__main__":
    main()
