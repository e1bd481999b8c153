"""Tasks waiting for an executor: `megamind queue` lists them, `megamind cancel` ends any task."""

from __future__ import annotations

import click

from megamind.cli import render
from megamind.cli.customer.session import api, json_option, print_json
from megamind.cli.customer.tasks import on_each_task
from megamind.client import Client


@click.command("queue")
@click.option("--no-trunc", is_flag=True, help="Do not shorten the reasons.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the task ids, next first.")
@json_option
def queue(no_trunc: bool, quiet: bool, as_json: bool) -> None:
    """List your tasks waiting for an executor, next first: their place, priority and why they wait.

    A task waits while executors that meet its requirements exist but none is free and
    online; higher priority first, then oldest first. Past its queue timeout it ends in error.
    """
    with api() as client:
        waiting = client.queue()
    if as_json:
        print_json([t.to_json() for t in waiting])
        return
    if not waiting:
        click.echo("no queued tasks", err=True)
        return
    if quiet:
        click.echo("\n".join(t.taskid for t in waiting))
        return
    cut = (lambda text, width: " ".join(text.split())) if no_trunc else render.shorten
    click.echo(render.table(
        ["POS", "TASKID", "IMAGE", "PRIORITY", "QUEUED", "GIVES UP", "REASON"],
        ([t.queue_position, t.taskid, t.image, t.priority, render.ago(t.created_at), render.until(t.queue_deadline),
          cut(t.pending_reason or "-", 60)] for t in waiting),
        right={0, 3},
    ))


@click.command()
@click.argument("taskids", metavar="TASKID...", nargs=-1, required=True)
@json_option
def cancel(taskids: tuple[str, ...], as_json: bool) -> None:
    """End queued, setting-up or running tasks and keep them: each stops (state stopped,
    cancelled), its container goes, its logs and results stay. An ended task is left as it is."""
    on_each_task(taskids, Client.cancel, "cancelled", as_json)
