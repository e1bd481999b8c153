"""Tasks: run one, list them, look at one, restart and remove them."""

from __future__ import annotations

import time
from pathlib import Path

import click

from megamind.cli import render
from megamind.cli.customer.inputs import check_names, file_argument, upload_inputs
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
from megamind.client import SETTLED, ApiError, Client, ExecutorBusy, Task, TaskState, Unauthorized
from megamind.imageref import PUBLIC_REGISTRY
from megamind.protocol import Phase

STATE_NAMES = [s.name.lower() for s in TaskState]

interval_option = click.option(
    "--interval", default=0.5, show_default=True, type=click.FloatRange(min=0.05),
    help="Seconds between two looks at the task.",
)
wait_options = [
    click.option("--wait", is_flag=True,
                 help="Show each state of the task (and its progress, when it reports it) until it is "
                      f"running, stopped or in error; exit {EXIT_TASK_FAILED} with the reason when it is in error."),
    click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(min=0),
                 help=f"With --wait: give up after this many seconds (exit {EXIT_TIMEOUT}; the task goes on)."),
    interval_option,
]

SETUP_PHASES = {
    Phase.PULLING.value: "setup: pulling the image",
    Phase.CREATING.value: "setup: creating the container",
    Phase.STARTING.value: "setup: starting the container",
    Phase.RESTARTING.value: "setup: restarting the container",
}


def full_image(image: str) -> str:
    """``helloworld`` and ``ml/trainer:2`` are short for ``megamind.network/...``.

    As in Docker, a first component holding ``.`` or ``:`` (or ``localhost``) followed
    by ``/`` names a registry; such an image is sent as given (and refused unless it
    is megamind.network's).
    """
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"{PUBLIC_REGISTRY}/{image}"


def describe_state(task: Task) -> str:
    """One line for a person on where a task stands."""
    if task.state == TaskState.SETUP:
        if task.executor_online is False:
            return "setup: waiting for the executor to come back"
        return SETUP_PHASES.get(task.phase, "setup: accepted, waiting for the executor")
    if task.state == TaskState.UNKNOWN:
        return "unknown: the executor is unreachable"
    if task.state == TaskState.ERROR:
        return f"error: {task.error_msg or 'no reason given'}"
    if task.state == TaskState.STOPPED:
        return "stopped: exited with code 0"
    if task.progress is not None:
        return f"{task.state_name} ({render.percent(task.progress)})"
    return task.state_name


def wait_settled(client: Client, taskid: str, timeout: float, interval: float, as_json: bool) -> Task:
    """Print each new state of the task (stderr) until it is settled; fail on error or timeout."""
    started = time.monotonic()
    last: str | None = None
    while True:
        task = client.task(taskid)
        line = describe_state(task)
        if line != last:
            click.echo(f"[{time.monotonic() - started:5.1f}s] {line}", err=True)
            last = line
        if task.state in SETTLED:
            break
        if time.monotonic() - started >= timeout:
            if as_json:
                print_json(task.to_json())
            raise Failure(f"task {taskid} is still {task.state_name} after {timeout:g} s; it goes on "
                          f"(see `megamind ps`)", EXIT_TIMEOUT)
        time.sleep(interval)
    if as_json:
        print_json(task.to_json())
    if task.state == TaskState.ERROR:
        raise Failure(f"task {taskid} failed: {task.error_msg or 'no reason given'}", EXIT_TASK_FAILED)
    return task


@click.command()
@click.argument("image")
@click.option("--hwid", required=True, help="The executor to run on: an HWID from `megamind hw`.")
@click.option("--params", default="", show_default=True,
              help="A string handed unchanged to the task's process, as $MEGAMIND_PARAMS.")
@click.option("--input", "inputs", multiple=True, type=file_argument, metavar="FILE",
              help="Upload FILE and give it to the task as /megamind/input/<its name> (repeatable).")
@with_options(wait_options)
@json_option
def run(image: str, hwid: str, params: str, inputs: tuple[Path, ...], wait: bool, timeout: float,
        interval: float, as_json: bool) -> None:
    """Run IMAGE of the registry as a task on one executor; print the task's id.

    IMAGE is megamind.network/NAME[:TAG], or just NAME[:TAG]. The tag defaults to latest.
    """
    check_names(inputs)
    with api() as client:
        files = upload_inputs(client, inputs)
        try:
            taskid = client.add_task(full_image(image), hwid, params, inputs=files)
        except ExecutorBusy as exc:
            raise Failure(f"{describe(exc)}; pick a free one with `megamind hw`") from None
        if not as_json:
            click.echo(taskid)
        if wait:
            wait_settled(client, taskid, timeout, interval, as_json)
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


def describe_results(task: Task) -> str:
    if task.results is None:
        return "none yet" if not task.finished else "none"
    text = f"{render.size(task.results.size)}, collected {render.ago(task.results.created_at)}"
    if task.results.truncated:
        text += f", {task.results.truncated} files left out (the platform's bound)"
    return f"{text} (`megamind results {task.taskid}`)"


@click.command()
@click.argument("taskid")
@json_option
def inspect(taskid: str, as_json: bool) -> None:
    """Show one task in full: state, progress, results, executor, pending command, times."""
    with api() as client:
        task = client.task(taskid)
    if as_json:
        print_json(task.to_json())
        return
    pending = task.pending_command or "-"
    rows = [
        ("taskid", task.taskid),
        ("state", f"{task.state_name} ({int(task.state)})"),
        ("what", describe_state(task)),
        ("error", task.error_msg or "-"),
        ("progress", "-" if task.progress is None else render.percent(task.progress)),
        ("results", describe_results(task)),
        ("image", task.image),
        ("params", task.params or "-"),
        ("executor", f"{task.hwid} ({'online' if task.executor_online else 'offline'}, {task.ip or 'no address'})"),
        ("pending", pending + (" (the executor has not reported it done yet)" if task.pending_command else "")),
        ("created", render.ago(task.created_at)),
        ("changed", render.ago(task.updated_at)),
    ]
    click.echo(render.fields(rows))


@click.command()
@click.argument("taskid")
@with_options(wait_options)
@json_option
def restart(taskid: str, wait: bool, timeout: float, interval: float, as_json: bool) -> None:
    """Restart a task's container (a finished task starts again)."""
    with api() as client:
        client.restart_task(taskid)
        if not as_json:
            click.echo(f"restarting {taskid}")
        if wait:
            wait_settled(client, taskid, timeout, interval, as_json)
        elif as_json:
            print_json({"taskid": taskid, "restarted": True})


@click.command()
@click.argument("taskids", metavar="TASKID...", nargs=-1, required=True)
@json_option
def rm(taskids: tuple[str, ...], as_json: bool) -> None:
    """Stop tasks and destroy their containers (also while their executor is offline: once back)."""
    removed, failed = [], []
    with api() as client:
        for taskid in taskids:
            try:
                client.delete_task(taskid)
            except Unauthorized:
                raise
            except ApiError as exc:
                click.echo(f"error: {taskid}: {describe(exc)}", err=True)
                failed.append(taskid)
                continue
            removed.append(taskid)
            if not as_json:
                click.echo(f"removed {taskid}")
    if as_json:
        print_json({"removed": removed, "failed": failed})
    if failed:
        raise click.exceptions.Exit(EXIT_API_ERROR)
