"""`megamind admin`: accounts and api-keys on the database file."""

import asyncio
import json

from click.testing import CliRunner

from megamind.cli.main import cli
from megamind.store import Store


def test_create_list_and_revoke_keys(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "megamind.db")

    def admin(*args):
        return runner.invoke(cli, ["admin", *args, "--db", db], catch_exceptions=False)

    created = admin("create-account", "owner")
    assert created.exit_code == 0
    first = created.stdout.strip().splitlines()[-1]
    assert first.startswith("mk_")
    assert admin("create-account", "owner").exit_code == 1  # exists already

    second = admin("create-key", "owner").stdout.strip().splitlines()[-1]
    assert second.startswith("mk_") and second != first

    keys = json.loads(admin("list-keys", "owner", "--json").stdout)
    assert [(k["id"], k["active"], k["revoked_at"]) for k in keys] == [(1, True, None), (2, True, None)]
    assert keys[0]["prefix"] == first[:8]
    assert first not in admin("list-keys", "owner").stdout  # never the keys themselves

    revoked = admin("revoke-key", "owner", "1")
    assert (revoked.exit_code, revoked.stdout) == (0, "key 1 of owner revoked\n")
    keys = json.loads(admin("list-keys", "owner", "--json").stdout)
    assert [k["active"] for k in keys] == [False, True]
    lines = admin("list-keys", "owner").stdout.splitlines()
    assert lines[0].split("\t")[3] == "revoked" and lines[1].split("\t")[3] == "active"

    again = admin("revoke-key", "owner", "1")
    assert again.exit_code == 1 and "no active key 1" in again.stderr
    missing = admin("list-keys", "nobody")
    assert missing.exit_code == 1 and "no account named 'nobody'" in missing.stderr


def test_a_key_gets_its_own_rate_limit(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "megamind.db")

    def admin(*args):
        return runner.invoke(cli, ["admin", *args, "--db", db], catch_exceptions=False)

    admin("create-account", "market")
    assert admin("set-rate-limit", "market", "1", "60/minute;1000/hour").exit_code == 0
    assert json.loads(admin("list-keys", "market", "--json").stdout)[0]["rate_limit"] == "60/minute;1000/hour"
    assert "60/minute;1000/hour" in admin("list-keys", "market").stdout

    bad = admin("set-rate-limit", "market", "1", "lots")
    assert bad.exit_code == 2 and "LIMIT" in bad.stderr
    assert admin("set-rate-limit", "market", "9", "none").exit_code == 1  # no such key

    assert admin("set-rate-limit", "market", "1", "default").exit_code == 0
    assert json.loads(admin("list-keys", "market", "--json").stdout)[0]["rate_limit"] is None


def test_credit_makes_an_account_prepaid_and_adds_exactly(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "megamind.db")

    def admin(*args):
        return runner.invoke(cli, ["admin", *args, "--db", db], catch_exceptions=False)

    admin("create-account", "payer")
    assert admin("credit", "payer", "0.1").stdout == "account payer: balance 0.1\n"
    assert admin("credit", "payer", "0.2", "--note", "invoice 7").stdout == "account payer: balance 0.3\n"
    for bad in ("0", "-5", "lots", "nan"):
        refused = admin("credit", "payer", bad)
        assert refused.exit_code == 2 and "AMOUNT" in refused.stderr, bad
    missing = admin("credit", "nobody", "1")
    assert missing.exit_code == 1 and "no account named 'nobody'" in missing.stderr

    async def balance_and_credits():
        store = await Store.open(db)
        try:
            row = await store.db.fetchone("SELECT balance_micro FROM accounts WHERE name = 'payer'")
            notes = [r[0] for r in await store.db.fetchall("SELECT note FROM credits ORDER BY id")]
            return row[0], notes
        finally:
            await store.close()

    assert asyncio.run(balance_and_credits()) == (300_000, ["", "invoice 7"])


def test_an_admin_revokes_any_executor(tmp_path):
    runner = CliRunner()
    db = str(tmp_path / "megamind.db")

    def admin(*args):
        return runner.invoke(cli, ["admin", *args, "--db", db], catch_exceptions=False)

    admin("create-account", "owner")

    async def register():
        store = await Store.open(db)
        try:
            owner_id = (await store.db.fetchone("SELECT id FROM accounts WHERE name = 'owner'"))[0]
            return await store.executors.register(owner_id, {}, 0.5)
        finally:
            await store.close()

    async def by_token(token):
        store = await Store.open(db)
        try:
            return await store.executors.by_token(token)
        finally:
            await store.close()

    hwid, token = asyncio.run(register())
    revoked = admin("revoke-executor", hwid)
    assert (revoked.exit_code, revoked.stdout) == (0, f"executor {hwid} revoked\n")
    assert asyncio.run(by_token(token)) is None
    again = admin("revoke-executor", hwid)
    assert again.exit_code == 1 and f"no executor {hwid!r}" in again.stderr
    assert admin("revoke-executor", "nosuchhwid").exit_code == 1
