from __future__ import annotations

import asyncio
import datetime
import json
import sys
from pathlib import Path

import click

from megamind.api.ratelimit import parse_rate_limit
from megamind.config import DEFAULT_HOME
from megamind.errors import MegamindError
from megamind.money import format_money, to_micro
from megamind.store import Store

db_option = click.option(
    "--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_HOME / "megamind.db", show_default=True, help="The server's SQLite file.",
)


def _run(job):
    try:
        return asyncio.run(job)
    except MegamindError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)


async def _with_store(db_path: Path, action):
    store = await Store.open(db_path)
    try:
        return await action(store)
    finally:
        await store.close()


@click.group()
def admin() -> None:
    """Accounts and keys, straight on the database (works while the server runs)."""


@admin.command("create-account")
@click.argument("name")
@db_option
def create_account(name: str, db_path: Path) -> None:
    """Create an account; its new api-key is the last line printed."""
    async def action(store: Store):
        if await store.accounts.exists(name):
            click.echo(f"error: account {name!r} exists already", err=True)
            sys.exit(1)
        return await store.accounts.create(name)

    account, key = _run(_with_store(db_path, action))
    click.echo(f"account {account.name} (id {account.id}) created; its api-key, shown only now:")
    click.echo(key)


@admin.command("create-key")
@click.argument("name")
@db_option
def create_key(name: str, db_path: Path) -> None:
    """Add an api-key to an account; the key is the last line printed."""
    key = _run(_with_store(db_path, lambda store: store.accounts.add_key(name)))
    click.echo(f"new api-key for {name}, shown only now:")
    click.echo(key)


@admin.command("list-keys")
@click.argument("name")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of text.")
def list_keys(name: str, db_path: Path, as_json: bool) -> None:
    """List an account's api-keys (their ids and first characters, never the keys)."""
    keys = _run(_with_store(db_path, lambda store: store.accounts.list_keys(name)))
    if as_json:
        click.echo(json.dumps([
            {"id": k.id, "prefix": k.prefix, "created_at": k.created_at, "revoked_at": k.revoked_at,
             "active": k.revoked_at is None, "rate_limit": k.rate_limit}
            for k in keys
        ], indent=2))
        return
    for key in keys:
        created = datetime.datetime.fromtimestamp(key.created_at).isoformat(timespec="seconds")
        status = "revoked" if key.revoked_at else "active"
        limit = key.rate_limit or "default rate limit"
        click.echo(f"{key.id}\t{key.prefix}…\t{created}\t{status}\t{limit}")


@admin.command("revoke-key")
@click.argument("name")
@click.argument("key_id", type=int)
@db_option
def revoke_key(name: str, key_id: int, db_path: Path) -> None:
    """Revoke one of an account's api-keys by its id (see list-keys)."""
    if not _run(_with_store(db_path, lambda store: store.accounts.revoke_key(name, key_id))):
        click.echo(f"error: {name} has no active key {key_id}", err=True)
        sys.exit(1)
    click.echo(f"key {key_id} of {name} revoked")


@admin.command("set-rate-limit")
@click.argument("name")
@click.argument("key_id", type=int)
@click.argument("limit")
@db_option
def set_rate_limit(name: str, key_id: int, limit: str, db_path: Path) -> None:
    """Give one api-key its own rate limit, e.g. '60/minute;1000/hour', 'none' (unlimited)
    or 'default' (the server's). Takes effect within a few seconds, also on a running server."""
    stored = None if limit == "default" else limit
    if stored is not None:
        try:
            parse_rate_limit(stored)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="LIMIT") from None
    if not _run(_with_store(db_path, lambda store: store.accounts.set_rate_limit(name, key_id, stored))):
        click.echo(f"error: {name} has no key {key_id}", err=True)
        sys.exit(1)
    click.echo(f"key {key_id} of {name}: rate limit {limit}")


@admin.command("revoke-executor")
@click.argument("hwid")
@db_option
def revoke_executor(hwid: str, db_path: Path) -> None:
    """Remove any account's executor: its token stops working at once.  A running server
    closes its agent's connection and ends its task (state 5) within a few seconds."""
    _run(_with_store(db_path, lambda store: store.executors.remove(hwid)))
    click.echo(f"executor {hwid} revoked")


def _amount(ctx, param, value: str) -> str:
    try:
        micro = to_micro(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an amount") from None
    if micro <= 0:
        raise click.BadParameter("credit a positive amount")
    return value


@admin.command("credit")
@click.argument("name")
@click.argument("amount", callback=_amount)
@click.option("--note", default="", help="Kept with the credit (a payment reference).")
@db_option
def credit(name: str, amount: str, note: str, db_path: Path) -> None:
    """Add AMOUNT of credit to account NAME, making it prepaid: its tasks then stop when
    the balance is used up, and addtask refuses it when it cannot pay a minute."""
    balance = _run(_with_store(db_path, lambda store: store.spending.credit(name, amount, note)))
    click.echo(f"account {name}: balance {format_money(balance)}")
