"""What was run and what it came to: `megamind history` (every task of a range, deleted
ones too, or their CSV), `megamind usage` (spending per day and per image) and
`megamind earnings` (an owner's executors)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import click

from megamind.cli import render
from megamind.cli.customer.runspec import full_image
from megamind.cli.customer.session import EXIT_USAGE, Failure, api, json_option, print_json, with_options
from megamind.cli.customer.tasks import STATE_NAMES
from megamind.client import Task, TaskPage
from megamind.client.listings import TimeBound

MAX_PAGE = 1000  # the most tasks history answers in one page
STDOUT = "-"  # --csv's file when none is named
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_SECONDS = re.compile(r"\d+(\.\d+)?")


class TimeBoundType(click.ParamType):
    """``YYYY-MM-DD`` or Unix seconds, checked here so that a typo is a usage error."""

    name = "YYYY-MM-DD|SECONDS"

    def convert(self, value, param, ctx) -> TimeBound:
        if isinstance(value, (dt.date, int, float)):
            return value
        text = str(value).strip()
        if _SECONDS.fullmatch(text):
            return float(text) if "." in text else int(text)
        if _DAY.fullmatch(text):
            try:
                return dt.date.fromisoformat(text)
            except ValueError:
                pass
        self.fail(f"{value!r} is not a day (YYYY-MM-DD) or Unix seconds", param, ctx)


range_options = [
    click.option("--from", "from_", type=TimeBoundType(), help="From this day (YYYY-MM-DD) or moment (Unix "
                                                               "seconds) on; the API's default range when left out."),
    click.option("--to", type=TimeBoundType(), help="Up to this day (YYYY-MM-DD) or moment (Unix seconds)."),
]


def _billed(seconds: float | None) -> str:
    return "-" if seconds is None else render.duration(seconds)


def history_row(task: Task) -> list[object]:
    return [task.taskid, task.image, task.state_name, render.moment(task.created_at), _billed(task.billed_seconds),
            "-" if task.cost is None else render.money(task.cost), "yes" if task.deleted else ""]


def _write_csv(text: str, target: str) -> None:
    if target == STDOUT:
        click.echo(text, nl=False)
        return
    try:
        Path(target).write_text(text, encoding="utf-8", newline="")  # the API's line ends, as they came
    except OSError as exc:
        raise Failure(f"cannot write {target}: {exc.strerror or exc}", EXIT_USAGE) from None
    click.echo(f"wrote the history to {target}", err=True)


@click.command("history")
@with_options(range_options)
@click.option("--state", type=click.Choice(STATE_NAMES), help="Only tasks in this state.")
@click.option("--image", help="Only tasks of this image (NAME[:TAG] as `run` takes it).")
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), metavar="N",
              help="Tasks per page (the API's default when left out); the newest page only, without --all.")
@click.option("--all", "every_page", is_flag=True, help="Every task of the range, page after page.")
@click.option("--csv", "csv_target", is_flag=False, flag_value=STDOUT, metavar="[FILE]",
              type=click.Path(dir_okay=False, allow_dash=True),
              help="Write every task of the range as CSV, to FILE or to stdout.")
@json_option
def history(from_: TimeBound | None, to: TimeBound | None, state: str | None, image: str | None,
            limit: int | None, every_page: bool, csv_target: str | None, as_json: bool) -> None:
    """List the tasks you created in a range, newest first, deleted ones too: their state,
    when they were created, the time billed and what they cost."""
    if csv_target is not None and (limit is not None or as_json):
        raise click.UsageError(f"--csv writes every task of the range: it excludes "
                               f"{'--limit' if limit is not None else '--json'}")
    image = full_image(image) if image else None
    with api() as client:
        if csv_target is not None:
            _write_csv(client.history_csv(from_, to, state, image), csv_target)
            return
        if every_page:
            tasks = list(client.iter_history(from_, to, state, image, limit))
            page = TaskPage(tasks=tasks, total=len(tasks), has_more=False, next_cursor=None)
        else:
            page = client.history(from_, to, state, image, limit)
    if as_json:
        print_json(page.to_json())
        return
    if page.has_more:
        click.echo(f"showing the newest {len(page)} of {page.total} (--all for every one)", err=True)
    if not page.tasks:
        click.echo("no tasks in this range", err=True)
        return
    click.echo(render.table(["TASKID", "IMAGE", "STATE", "CREATED", "BILLED", "COST", "DELETED"],
                            (history_row(t) for t in page), right={4, 5}))


@click.command("usage")
@with_options(range_options)
@json_option
def usage(from_: TimeBound | None, to: TimeBound | None, as_json: bool) -> None:
    """Show what your tasks cost in a range: the total, per day and per image."""
    with api() as client:
        spent = client.usage(from_, to)
    if as_json:
        print_json(spent.to_json())
        return
    click.echo(render.fields([("total", render.money(spent.total)), ("billed", _billed(spent.billed_seconds))]))
    if spent.days:
        click.echo()
        click.echo(render.table(["DAY", "BILLED", "SPENT"],
                                ([d.day.isoformat(), _billed(d.billed_seconds), render.money(d.spent)]
                                 for d in spent.days), right={1, 2}))
    if spent.images:
        click.echo()
        click.echo(render.table(["IMAGE", "TASKS", "BILLED", "SPENT"],
                                ([i.image, i.tasks, _billed(i.billed_seconds), render.money(i.spent)]
                                 for i in spent.images), right={1, 2, 3}))


@click.command("earnings")
@with_options(range_options)
@json_option
def earnings(from_: TimeBound | None, to: TimeBound | None, as_json: bool) -> None:
    """Show what your executors earned in a range (as an owner), each and in all, the
    platform's fee taken."""
    with api() as client:
        earned = client.earnings(from_, to)
    if as_json:
        print_json(earned.to_json())
        return
    if earned.executors:
        click.echo(render.table(["HWID", "BILLED", "EARNED"],
                                ([e.hwid, _billed(e.billed_seconds), render.money(e.earned)]
                                 for e in earned.executors), right={1, 2}))
        click.echo()
    click.echo(render.fields([("total", render.money(earned.total))]))
