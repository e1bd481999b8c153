import sqlite3

from megamind.store import Store
from megamind.store.db import Database
from megamind.store.migrations import MIGRATIONS


async def test_migrations_set_user_version(tmp_path):
    db = Database(tmp_path / "sub" / "db.sqlite")
    await db.open()
    try:
        row = await db.fetchone("PRAGMA user_version")
        assert row[0] == len(MIGRATIONS) == db.schema_version
        tables = {r["name"] for r in await db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"accounts", "api_keys", "executors", "tasks", "task_logs", "commands"} <= tables
    finally:
        await db.close()
    conn = sqlite3.connect(tmp_path / "sub" / "db.sqlite")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        conn.close()


async def test_wal_mode_on_a_real_file(tmp_path):
    db = Database(tmp_path / "db.sqlite")
    await db.open()
    try:
        assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
        assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
    finally:
        await db.close()
    # WAL is a property of the file: a plain connection sees it too.
    conn = sqlite3.connect(tmp_path / "db.sqlite")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


async def test_reopening_keeps_data_and_does_not_migrate_again(tmp_path):
    path = tmp_path / "db.sqlite"
    store = await Store.open(path)
    account, key = await store.accounts.create("alice")
    hwid, token = await store.executors.register(account.id, {"ram": 1}, 1.0)
    await store.close()

    store = await Store.open(path)
    try:
        assert await store.accounts.get_by_name("alice") == account
        assert (await store.accounts.by_api_key(key)).account == account
        record = await store.executors.by_token(token)
        assert record is not None and record.hwid == hwid and record.hardware == {"ram": 1}
        assert (await store.db.fetchone("PRAGMA user_version"))[0] == len(MIGRATIONS)
    finally:
        await store.close()


async def test_a_failed_transaction_rolls_back(tmp_path):
    db = Database(tmp_path / "db.sqlite")
    await db.open()
    try:
        try:
            async with db.transaction() as conn:
                await conn.execute("INSERT INTO accounts (name, created_at) VALUES ('x', 0)")
                raise RuntimeError("boom")
        except RuntimeError:
            pass
        assert await db.fetchone("SELECT 1 FROM accounts") is None
        # The writer is usable again afterwards.
        assert await db.execute("INSERT INTO accounts (name, created_at) VALUES ('y', 0)") == 1
        assert (await db.fetchone("SELECT name FROM accounts"))["name"] == "y"
    finally:
        await db.close()


async def test_reader_is_read_only(tmp_path):
    db = Database(tmp_path / "db.sqlite")
    await db.open()
    try:
        try:
            await db.fetchone("INSERT INTO accounts (name, created_at) VALUES ('x', 0)")
        except sqlite3.OperationalError:
            pass
        else:
            raise AssertionError("the reader connection accepted a write")
    finally:
        await db.close()
