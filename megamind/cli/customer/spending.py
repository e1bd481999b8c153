"""What running costs: `megamind estimate` (and the estimate `run` shows before it submits),
`megamind account` and `megamind spend-limit`."""

from __future__ import annotations

import sys
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeVar

import click

from megamind.cli import render
from megamind.cli.customer.inputs import check_names
from megamind.cli.customer.runspec import CommandAfterDashes, full_image, job_fields, run_options
from megamind.cli.customer.session import api, json_option, print_json, with_options
from megamind.client import Account, ApiError, Client, Estimate

T = TypeVar("T")

FREE_SHOWN = 3  # free executors an estimate names; the API answers up to 10
NO_LIMIT = "none"  # what `spend-limit` takes, and `account` shows, for no limit


def _known(value: T | None, show: Callable[[T], str]) -> str:
    return "unknown" if value is None else show(value)


def _per_hour(amount: Decimal | float) -> str:
    return f"{render.money(amount)}/h"


def estimate_rows(estimate: Estimate) -> list[tuple[str, object]]:
    """The estimate for people: what fits, the cheapest free executors, the queue, the price,
    the time and the cost (``unknown`` where the API cannot tell)."""
    free = ", ".join(f"{item.hwid} ({_per_hour(item.cost)})" for item in estimate.free[:FREE_SHOWN])
    if len(estimate.free) > FREE_SHOWN:
        free += f" and {len(estimate.free) - FREE_SHOWN} more"
    return [
        ("fits", f"{estimate.fits} executor{'' if estimate.fits == 1 else 's'}"),
        ("free", free or "none"),
        ("queue", "placed at once" if estimate.placed_at_once else f"position {estimate.queue_position}"),
        ("price", _known(estimate.price, _per_hour)),
        ("time", _known(estimate.estimated_time_seconds, render.duration)),
        ("cost", _known(estimate.estimated_cost, render.money)),
    ]


def stdin_is_a_terminal() -> bool:
    """Whether a person may answer: `run` asks only then, so that scripts go on as they are."""
    return sys.stdin.isatty()


def confirm_run(client: Client, image: str, hwid: str | None, params: str, fields: dict[str, Any],
                ask: bool) -> bool:
    """Show on stderr what running would cost, and, when ``ask`` and a person is at the
    terminal, whether to run it (no by default).

    The estimate is advice: when the API gives none (a server without the call, or a body
    it refuses, which addtask then explains with run's own hints) run goes on without it.
    """
    try:
        estimate = client.estimate(image, hwid, params, **fields)
    except ApiError:
        return True
    # One line: run's stderr is also where --wait's progress and the uploads go.
    click.echo("estimate: " + "; ".join(f"{name} {value}" for name, value in estimate_rows(estimate)), err=True)
    if not ask or not stdin_is_a_terminal():
        return True
    return click.confirm("Run it?", default=False, err=True)


@click.command(cls=CommandAfterDashes)
@with_options(run_options)
@json_option
def estimate(image: str, hwid: str | None, params: str, inputs: tuple[Path, ...], as_json: bool,
             **job_options: Any) -> None:
    """Say what `megamind run` with the same options would do, without running: how many
    executors fit, the cheapest free ones, the place in the queue, the price, the time and
    the cost.

    The time is --timeout when given, else how long the image usually runs here; what the
    API cannot tell shows as unknown. --input files are checked, not uploaded.
    """
    fields = job_fields(hwid, job_options)
    check_names(inputs)
    with api() as client:
        answer = client.estimate(full_image(image), hwid, params, **fields)
    if as_json:
        print_json(answer.to_json())
    else:
        click.echo(render.fields(estimate_rows(answer)))


def describe_limit(account: Account) -> str:
    """``2.5/h (0.05 spent in the last hour)``, or ``none``."""
    if account.spend_limit_per_hour is None:
        return NO_LIMIT
    limit = _per_hour(account.spend_limit_per_hour)
    if account.spent_last_hour is None:
        return limit
    return f"{limit} ({render.money(account.spent_last_hour)} spent in the last hour)"


def account_rows(account: Account) -> list[tuple[str, object]]:
    return [
        ("account", account.name),
        ("balance", "not prepaid (usage is recorded)" if account.balance is None else render.money(account.balance)),
        ("spent today", render.money(account.spent_today)),
        ("spent this month", render.money(account.spent_month)),
        ("spend limit", describe_limit(account)),
    ]


@click.command("account")
@json_option
def account(as_json: bool) -> None:
    """Show your account: its balance (or that it is not prepaid), what it spent today and
    this month, and its spend limit per hour."""
    with api() as client:
        found = client.account()
    if as_json:
        print_json(found.to_json())
    else:
        click.echo(render.fields(account_rows(found)))


def parse_limit(ctx: click.Context, param: click.Parameter, value: str) -> Decimal | None:
    if value.strip().lower() == NO_LIMIT:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise click.BadParameter(f"{value!r} is not an amount of 0 or more, nor {NO_LIMIT!r}", ctx, param)
    return amount


@click.command("spend-limit")
@click.argument("amount", metavar=f"AMOUNT|{NO_LIMIT}", callback=parse_limit)
@json_option
def spend_limit(amount: Decimal | None, as_json: bool) -> None:
    """Set the most your tasks may spend in an hour, or `none` for no limit.

    Once the last hour's spending reaches it, new tasks are refused (spend_limit_reached).
    """
    with api() as client:
        changed = client.set_spend_limit(amount)
    if as_json:
        print_json(changed.to_json())
    else:
        click.echo(f"spend limit: {describe_limit(changed)}")
