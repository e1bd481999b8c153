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
        assert {"accounts", "api_keys", "executors", "tasks", "commands", "log_lines", "log_state", "files"} <= tables
        assert "task_logs" not in tables
    finally:
        await db.close()
    conn = sqlite3.connect(tmp_path / "sub" / "db.sqlite")
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    finally:
        conn.close()


async def test_a_file_of_the_previous_release_gains_whole_logs(tmp_path):
    """Version 2 kept 20-line tails: they go (agents resend from their engines), the tasks stay."""
    path = tmp_path / "db.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for number, script in enumerate(MIGRATIONS[:2], start=1):
        conn.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
    conn.executescript(
        "INSERT INTO accounts (id, name, created_at) VALUES (1, 'alice', 0);"
        "INSERT INTO executors (hwid, account_id, token_hash, created_at) VALUES ('hw', 1, 'h', 0);"
        "INSERT INTO tasks (taskid, account_id, hwid, image, params, state, holds_executor, created_at, updated_at)"
        " VALUES ('t1', 1, 'hw', 'megamind.network/x:1', '', 3, 1, 0, 0);"
        "INSERT INTO task_logs (taskid, lines) VALUES ('t1', '[\"old\"]');"
    )
    conn.close()
    store = await Store.open(path)
    try:
        assert (await store.db.fetchone("PRAGMA user_version"))[0] == len(MIGRATIONS)
        detail = await store.tasks.detail(1, "t1")
        assert (detail.progress, detail.results) == (None, None)
        assert await store.tasks.inputs_of("t1") == []
        assert await store.logs.tail("t1") == []
    finally:
        await store.close()


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
