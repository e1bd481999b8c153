"""Tasks: run one (after its estimate), list them, look at one, restart and remove them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from megamind.cli import render
from megamind.cli.customer.inputs import check_names, upload_inputs
from megamind.cli.customer.runspec import CommandAfterDashes, full_image, job_fields, run_options
from megamind.cli.customer.session import (
    EXIT_API_ERROR,
    EXIT_TASK_FAILED,
    EXIT_TIMEOUT,
    Failure,
    api,
    describe,
    json_option,
    print_json,
    with_options,
)
from megamind.cli.customer.spending import confirm_run
from megamind.cli.customer.taskview import inspect_rows, wait_settled
from megamind.client import (
    ApiError,
    Client,
    ExecutorBusy,
    InsufficientFunds,
    SpendLimitReached,
    TaskState,
    Unauthorized,
    Unsatisfiable,
)

STATE_NAMES = [s.name.lower() for s in TaskState]

interval_option = click.option(
    "--interval", default=0.5, show_default=True, type=click.FloatRange(min=0.05),
    help="Seconds between two looks at the task.",
)
wait_options = [
    click.option("--wait", is_flag=True,
                 help="Show each state of the task (its place in the queue while queued, its progress when it "
                      "reports it) until it is running, stopped or in error; exit "
                      f"{EXIT_TASK_FAILED} with the reason when it is in error."),
    # Not --timeout: for `run` that is the task's own runtime limit.
    click.option("--wait-timeout", default=600.0, show_default=True, type=click.FloatRange(min=0),
                 metavar="SECONDS",
                 help=f"With --wait: give up after this many seconds (exit {EXIT_TIMEOUT}; the task goes on)."),
    interval_option,
]


@click.command(cls=CommandAfterDashes)
@with_options(run_options)
@with_options(wait_options)
@click.option("-y", "--yes", is_flag=True,
              help="Run without asking. Run shows the estimate on stderr, then asks only when stdin is a terminal.")
@json_option
def run(image: str, hwid: str | None, params: str, inputs: tuple[Path, ...], wait: bool, wait_timeout: float,
        interval: float, yes: bool, as_json: bool, **job_options: Any) -> None:
    """Run IMAGE of the registry as a task; print the task's id.

    IMAGE is megamind.network/NAME[:TAG], or just NAME[:TAG]. The tag defaults to latest.
    The task runs on --hwid, or where the platform places it: the cheapest free executor
    that meets --gpus, --ram, ... (queued, higher --priority first, while none is free).
    A command after `--` (or --cmd) replaces the image's own, e.g.
    `megamind run trainer --gpus 1 -e EPOCHS=3 -p 8888 -- python train.py --fast`.
    First it shows what `megamind estimate` would (on stderr) and, at a terminal, asks
    whether to run (--yes does not ask).
    """
    fields = job_fields(hwid, job_options)
    check_names(inputs)
    image = full_image(image)
    with api() as client:
        if not confirm_run(client, image, hwid, params, fields, ask=not yes):
            click.echo("not run", err=True)
            return
        files = upload_inputs(client, inputs)
        try:
            taskid = client.add_task(image, hwid, params, inputs=files, **fields)
        except ExecutorBusy as exc:
            raise Failure(f"{describe(exc)}; pick a free one with `megamind hw`, or leave out --hwid "
                          "to let the platform place the task") from None
        except Unsatisfiable as exc:
            raise Failure(f"{describe(exc)}; see what there is with `megamind hw --status any`") from None
        except InsufficientFunds as exc:
            raise Failure(f"{describe(exc)}; see your balance with `megamind account`") from None
        except SpendLimitReached as exc:
            raise Failure(f"{describe(exc)}; see `megamind account`, or change the limit with "
                          "`megamind spend-limit`") from None
        if not as_json:
            click.echo(taskid)
        if wait:
            wait_settled(client, taskid, wait_timeout, interval, as_json)
        elif as_json:
            print_json({"taskid": taskid, **({"inputs": [f.to_json() for f in files]} if files else {})})


@click.command()
@click.option("--state", "states", multiple=True, type=click.Choice(STATE_NAMES),
              help="Only tasks in this state (repeatable).")
@click.option("--no-trunc", is_flag=True, help="Do not shorten params and error messages.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the task ids, one per line.")
@json_option
def ps(states: tuple[str, ...], no_trunc: bool, quiet: bool, as_json: bool) -> None:
    """List your tasks (not deleted ones), finished ones included, with their states."""
    with api() as client:
        tasks = client.task_list()
    if states:
        tasks = [t for t in tasks if t.state_name in states]
    if as_json:
        print_json([t.to_json() for t in tasks])
        return
    if not tasks:
        click.echo("no tasks", err=True)
        return
    if quiet:
        click.echo("\n".join(t.taskid for t in tasks))
        return
    cut = (lambda text, width: " ".join(text.split())) if no_trunc else render.shorten
    click.echo(render.table(
        ["TASKID", "STATE", "IMAGE", "IP", "PARAMS", "ERROR"],
        ([t.taskid, t.state_name, t.image, t.ip, cut(t.params, 30), cut(t.error_msg, 50)] for t in tasks),
    ))


@click.command()
@click.argument("taskid")
@json_option
def inspect(taskid: str, as_json: bool) -> None:
    """Show one task in full: state, place in the queue, progress, results, what it asked for
    (command, env, ports with their addresses, requirements, limits), executor, cost, times."""
    with api() as client:
        task = client.task(taskid)
    if as_json:
        print_json(task.to_json())
        return
    click.echo(render.fields(inspect_rows(task)))


@click.command()
@click.argument("taskid")
@with_options(wait_options)
@json_option
def restart(taskid: str, wait: bool, wait_timeout: float, interval: float, as_json: bool) -> None:
    """Restart a task's container (a finished task starts again)."""
    with api() as client:
        client.restart_task(taskid)
        if not as_json:
            click.echo(f"restarting {taskid}")
        if wait:
            wait_settled(client, taskid, wait_timeout, interval, as_json)
        elif as_json:
            print_json({"taskid": taskid, "restarted": True})


def on_each_task(taskids: tuple[str, ...], action: Callable[[Client, str], None], done: str,
                 as_json: bool) -> None:
    """``action`` on each task in turn: ``<done> TASKID`` for each that went, ``error: ...``
    for each the API refused (the others still go), exit 1 when any was refused."""
    succeeded, failed = [], []
    with api() as client:
        for taskid in taskids:
            try:
                action(client, taskid)
            except Unauthorized:
                raise
            except ApiError as exc:
                click.echo(f"error: {taskid}: {describe(exc)}", err=True)
                failed.append(taskid)
                continue
            succeeded.append(taskid)
            if not as_json:
                click.echo(f"{done} {taskid}")
    if as_json:
        print_json({done: succeeded, "failed": failed})
    if failed:
        raise click.exceptions.Exit(EXIT_API_ERROR)


@click.command()
@click.argument("taskids", metavar="TASKID...", nargs=-1, required=True)
@json_option
def rm(taskids: tuple[str, ...], as_json: bool) -> None:
    """Stop tasks and destroy their containers (also while their executor is offline: once back)."""
    on_each_task(taskids, Client.delete_task, "removed", as_json)
