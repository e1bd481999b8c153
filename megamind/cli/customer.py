"""The customer's commands: log in, find hardware, run images, watch, restart and remove tasks.

Every command talks to the API through megamind.client, prints text for people on
stdout (or JSON with ``--json``), and says what went wrong on stderr with one of the
exit codes below.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from megamind.cli import render
from megamind.client import (
    ApiError,
    Client,
    ExecutorBusy,
    HardwareItem,
    Task,
    TaskState,
    TransportError,
    Unauthorized,
)
from megamind.client.aio import SETTLED, normalize_api_url
from megamind.client.config import (
    DEFAULT_API_URL,
    ENV_API_KEY,
    ENV_API_URL,
    ConfigError,
    Settings,
    config_path,
    load_settings,
    remove_config,
    save_config,
)
from megamind.imageref import PUBLIC_REGISTRY

EXIT_OK = 0
EXIT_API_ERROR = 1  # the API refused the call; the message says why
EXIT_USAGE = 2  # a wrong option or argument (click's own code)
EXIT_NOT_LOGGED_IN = 3  # no api-key: `megamind login` or MEGAMIND_API_KEY
EXIT_UNREACHABLE = 4  # the API did not answer, or something else did
EXIT_TASK_FAILED = 5  # --wait: the task ended in error
EXIT_TIMEOUT = 6  # --wait: the task was not settled in time (it goes on)
EXIT_INTERRUPTED = 130  # Ctrl-C

STATE_NAMES = [s.name.lower() for s in TaskState]


class Failure(click.ClickException):
    """A failure for a person: ``error: ...`` on stderr and a named exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_API_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of text.")
interval_option = click.option(
    "--interval", default=0.5, show_default=True, type=click.FloatRange(min=0.05),
    help="Seconds between two looks at the task.",
)
wait_options = [
    click.option("--wait", is_flag=True,
                 help="Show each state of the task until it is running, stopped or in error; "
                      f"exit {EXIT_TASK_FAILED} with the reason when it is in error."),
    click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(min=0),
                 help=f"With --wait: give up after this many seconds (exit {EXIT_TIMEOUT}; the task goes on)."),
    interval_option,
]


def _with(options: list[Callable]) -> Callable:
    def decorate(fn: Callable) -> Callable:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise Failure(f"{exc}; run `megamind login` again", EXIT_NOT_LOGGED_IN) from None


@contextlib.contextmanager
def _api() -> Iterator[Client]:
    """A client from the environment or the login file; its errors become exit codes."""
    settings = _settings()
    if not settings.api_key:
        raise Failure(f"no api-key: run `megamind login`, or set {ENV_API_KEY}", EXIT_NOT_LOGGED_IN)
    client = Client(settings.api_url, settings.api_key)
    try:
        yield client
    except Unauthorized as exc:
        source = "the environment" if settings.key_source == "environment" else settings.key_source
        raise Failure(f"{exc.message} (the api-key from {source}); log in again with `megamind login`") from None
    except ApiError as exc:
        raise Failure(_describe(exc)) from None
    except TransportError as exc:
        raise Failure(f"{exc} (API URL from {settings.url_source}: check {ENV_API_URL} or "
                      "`megamind login --api-url`)", EXIT_UNREACHABLE) from None
    except KeyboardInterrupt:
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        client.close()


def _describe(exc: ApiError) -> str:
    return f"{exc.message} ({exc.name}, code {exc.code})"


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


# --- login --------------------------------------------------------------------------------


@click.command()
@click.option("--api-url", metavar="URL",
              help=f"Where the API is, e.g. http://127.0.0.1:8080. Default: ${ENV_API_URL}, "
                   "the URL stored before, or http://127.0.0.1:8080.")
@click.option("--api-key", envvar=ENV_API_KEY, metavar="KEY",
              help=f"Your api-key (default: ${ENV_API_KEY}); asked for, without echo, when not given.")
@click.option("--no-verify", is_flag=True, help="Store the key without checking it against the API.")
@json_option
def login(api_url: str | None, api_key: str | None, no_verify: bool, as_json: bool) -> None:
    """Check an api-key against the API and store both for the other commands.

    The file is ~/.config/megamind/config.json ($MEGAMIND_CONFIG to change it), readable
    by you only (mode 600). MEGAMIND_API_URL and MEGAMIND_API_KEY, when set, win over it.
    """
    if not api_url:
        try:
            api_url = load_settings().api_url
        except ConfigError:  # a broken file is what logging in again replaces
            api_url = os.environ.get(ENV_API_URL) or DEFAULT_API_URL
    url = normalize_api_url(api_url)
    if not api_key:
        api_key = click.prompt("api-key", hide_input=True, err=True).strip()
    if not api_key:
        raise Failure("an empty api-key cannot log in", EXIT_USAGE)
    if not no_verify:
        client = Client(url, api_key)
        try:
            client.task_list()
        except ApiError as exc:
            raise Failure(f"{url} refused the api-key: {_describe(exc)}") from None
        except TransportError as exc:
            raise Failure(str(exc), EXIT_UNREACHABLE) from None
        finally:
            client.close()
    path = config_path()
    try:
        save_config(path, url, api_key)
    except OSError as exc:
        raise Failure(f"cannot write {path}: {exc.strerror or exc}", EXIT_USAGE) from None
    if as_json:
        _print_json({"api_url": url, "config": str(path), "verified": not no_verify})
    else:
        click.echo(f"logged in to {url}; stored in {path} (mode 600)")


@click.command()
@json_option
def logout(as_json: bool) -> None:
    """Forget the stored URL and api-key (remove the login file)."""
    path = config_path()
    removed = remove_config(path)
    if as_json:
        _print_json({"config": str(path), "removed": removed})
    else:
        click.echo(f"removed {path}" if removed else f"not logged in ({path} does not exist)")


# --- hardware -----------------------------------------------------------------------------

SORT_KEYS: dict[str, Callable[[HardwareItem], Any]] = {
    "cost": lambda h: h.cost,
    "rating": lambda h: h.rating,
    "ram": lambda h: h.ram,
    "gpus": lambda h: len(h.gpus),
    "cpus": lambda h: len(h.cpus),
    "network": lambda h: network_mbit(h.network),
}


def network_mbit(text: str) -> float:
    """``"100mbit"`` as 100.0, ``"1gbit"`` as 1000.0; 0 for what is not a speed."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmg]?)(?:bit|b)?(?:/s|ps)?\s*", text.lower())
    if not match:
        return 0.0
    try:
        number = float(match[1])
    except ValueError:
        return 0.0
    return number * {"k": 0.001, "": 1.0, "m": 1.0, "g": 1000.0}[match[2]]


def filter_hardware(
    items: list[HardwareItem], *, gpu: bool = False, gpu_model: str | None = None, min_gpus: int = 0,
    min_cpus: int = 0, min_ram: int = 0, max_cost: float | None = None, min_rating: float | None = None,
    sort: str = "cost", reverse: bool = False,
) -> list[HardwareItem]:
    def keep(h: HardwareItem) -> bool:
        return (
            (not gpu or bool(h.gpus))
            and (gpu_model is None or any(gpu_model.lower() in g.lower() for g in h.gpus))
            and len(h.gpus) >= min_gpus
            and len(h.cpus) >= min_cpus
            and h.ram >= min_ram
            and (max_cost is None or h.cost <= max_cost)
            and (min_rating is None or h.rating >= min_rating)
        )
    key = SORT_KEYS[sort]
    return sorted((h for h in items if keep(h)), key=lambda h: (key(h), h.hwid), reverse=reverse)


@click.command("hw")
@click.option("--gpu", is_flag=True, help="Only executors with at least one GPU.")
@click.option("--gpu-model", metavar="TEXT", help="Only executors with a GPU whose name contains TEXT (any case).")
@click.option("--min-gpus", default=0, type=click.IntRange(min=0), metavar="N", help="At least N GPUs.")
@click.option("--min-cpus", default=0, type=click.IntRange(min=0), metavar="N", help="At least N CPUs (sockets).")
@click.option("--min-ram", default=0, type=click.IntRange(min=0), metavar="MB", help="At least this much RAM, in MB.")
@click.option("--max-cost", type=click.FloatRange(min=0), metavar="PRICE", help="At most this cost per hour.")
@click.option("--min-rating", type=float, metavar="RATING", help="At least this performance rating.")
@click.option("--sort", default="cost", show_default=True, type=click.Choice(sorted(SORT_KEYS)),
              help="Order by this column (ascending).")
@click.option("--reverse", is_flag=True, help="Reverse the order (e.g. highest rating first).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the HWIDs, one per line (the first is the pick).")
@json_option
def hw(gpu: bool, gpu_model: str | None, min_gpus: int, min_cpus: int, min_ram: int, max_cost: float | None,
       min_rating: float | None, sort: str, reverse: bool, quiet: bool, as_json: bool) -> None:
    """List the free executors: their GPUs, CPUs, RAM, network, rating and cost."""
    with _api() as api:
        items = api.hw_list()
    items = filter_hardware(items, gpu=gpu, gpu_model=gpu_model, min_gpus=min_gpus, min_cpus=min_cpus,
                            min_ram=min_ram, max_cost=max_cost, min_rating=min_rating, sort=sort, reverse=reverse)
    if as_json:
        _print_json([h.to_json() for h in items])
    elif not items:
        click.echo("no free executor matches", err=True)
    elif quiet:
        click.echo("\n".join(h.hwid for h in items))
    else:
        click.echo(render.table(
            ["HWID", "GPUS", "CPUS", "RAM", "NETWORK", "RATING", "COST/H"],
            ([h.hwid, render.counted(h.gpus), render.counted(h.cpus), render.megabytes(h.ram), h.network,
              f"{h.rating:.2f}", f"{h.cost:.2f}"] for h in items),
            right={3, 5, 6},
        ))


# --- tasks --------------------------------------------------------------------------------


SETUP_PHASES = {
    "pulling": "setup: pulling the image",
    "creating": "setup: creating the container",
    "starting": "setup: starting the container",
    "restarting": "setup: restarting the container",
}


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
    return task.state_name


def _wait(api: Client, taskid: str, timeout: float, interval: float, as_json: bool) -> Task:
    """Print each new state of the task (stderr) until it is settled; fail on error or timeout."""
    started = time.monotonic()
    last: str | None = None
    while True:
        task = api.task(taskid)
        line = describe_state(task)
        if line != last:
            click.echo(f"[{time.monotonic() - started:5.1f}s] {line}", err=True)
            last = line
        if task.state in SETTLED:
            break
        if time.monotonic() - started >= timeout:
            if as_json:
                _print_json(task.to_json())
            raise Failure(f"task {taskid} is still {task.state_name} after {timeout:g} s; it goes on "
                          f"(see `megamind ps`)", EXIT_TIMEOUT)
        time.sleep(interval)
    if as_json:
        _print_json(task.to_json())
    if task.state == TaskState.ERROR:
        raise Failure(f"task {taskid} failed: {task.error_msg or 'no reason given'}", EXIT_TASK_FAILED)
    return task


@click.command()
@click.argument("image")
@click.option("--hwid", required=True, help="The executor to run on: an HWID from `megamind hw`.")
@click.option("--params", default="", show_default=True,
              help="A string handed unchanged to the task's process, as $MEGAMIND_PARAMS.")
@_with(wait_options)
@json_option
def run(image: str, hwid: str, params: str, wait: bool, timeout: float, interval: float, as_json: bool) -> None:
    """Run IMAGE of the registry as a task on one executor; print the task's id.

    IMAGE is megamind.network/NAME[:TAG], or just NAME[:TAG]. The tag defaults to latest.
    """
    with _api() as api:
        try:
            taskid = api.add_task(full_image(image), hwid, params)
        except ExecutorBusy as exc:
            raise Failure(f"{_describe(exc)}; pick a free one with `megamind hw`") from None
        if not as_json:
            click.echo(taskid)
        if wait:
            _wait(api, taskid, timeout, interval, as_json)
        elif as_json:
            _print_json({"taskid": taskid})


@click.command()
@click.option("--state", "states", multiple=True, type=click.Choice(STATE_NAMES),
              help="Only tasks in this state (repeatable).")
@click.option("--no-trunc", is_flag=True, help="Do not shorten params and error messages.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the task ids, one per line.")
@json_option
def ps(states: tuple[str, ...], no_trunc: bool, quiet: bool, as_json: bool) -> None:
    """List your tasks (not deleted ones), finished ones included, with their states."""
    with _api() as api:
        tasks = api.task_list()
    if states:
        tasks = [t for t in tasks if t.state_name in states]
    if as_json:
        _print_json([t.to_json() for t in tasks])
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
    """Show one task in full: state, executor, pending command, times."""
    with _api() as api:
        task = api.task(taskid)
    if as_json:
        _print_json(task.to_json())
        return
    pending = task.pending_command or "-"
    rows = [
        ("taskid", task.taskid),
        ("state", f"{task.state_name} ({int(task.state)})"),
        ("what", describe_state(task)),
        ("error", task.error_msg or "-"),
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
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines until the task has ended.")
@interval_option
@json_option
def logs(taskid: str, follow: bool, interval: float, as_json: bool) -> None:
    """Print the last 20 lines the task wrote to stdout.

    With -f, new lines follow as they come, until the task stops or fails. The API keeps
    20 lines: more than that between two looks are not all shown.
    """
    with _api() as api:
        if not follow:
            result = api.task_logs(taskid)
            if as_json:
                _print_json(result.to_json())
            else:
                click.echo(result.text, nl=False)
            return
        for line in api.follow_logs(taskid, interval=interval):
            click.echo(json.dumps({"taskid": taskid, "line": line}, ensure_ascii=False) if as_json else line)
        click.echo(f"task {taskid} ended: {describe_state(api.task(taskid))}", err=True)


@click.command()
@click.argument("taskid")
@_with(wait_options)
@json_option
def restart(taskid: str, wait: bool, timeout: float, interval: float, as_json: bool) -> None:
    """Restart a task's container (a finished task starts again)."""
    with _api() as api:
        api.restart_task(taskid)
        if not as_json:
            click.echo(f"restarting {taskid}")
        if wait:
            _wait(api, taskid, timeout, interval, as_json)
        elif as_json:
            _print_json({"taskid": taskid, "restarted": True})


@click.command()
@click.argument("taskids", metavar="TASKID...", nargs=-1, required=True)
@json_option
def rm(taskids: tuple[str, ...], as_json: bool) -> None:
    """Stop tasks and destroy their containers (also while their executor is offline: once back)."""
    removed, failed = [], []
    with _api() as api:
        for taskid in taskids:
            try:
                api.delete_task(taskid)
            except Unauthorized:
                raise
            except ApiError as exc:
                click.echo(f"error: {taskid}: {_describe(exc)}", err=True)
                failed.append(taskid)
                continue
            removed.append(taskid)
            if not as_json:
                click.echo(f"removed {taskid}")
    if as_json:
        _print_json({"removed": removed, "failed": failed})
    if failed:
        raise click.exceptions.Exit(EXIT_API_ERROR)


# --- owners and the registry --------------------------------------------------------------


@click.command()
@json_option
def executors(as_json: bool) -> None:
    """List the executors you registered (as an owner): online or not, free or busy."""
    with _api() as api:
        items = api.executors()
    if as_json:
        _print_json([e.to_json() for e in items])
        return
    if not items:
        click.echo("no executors registered with this account", err=True)
        return
    click.echo(render.table(
        ["HWID", "STATUS", "TASK", "GPUS", "CPUS", "RAM", "NETWORK", "RATING", "COST/H", "LAST SEEN"],
        ([e.hwid, e.status, e.taskid or ("(other account)" if e.busy else "-"), render.counted(e.gpus),
          render.counted(e.cpus), render.megabytes(e.ram), e.network, f"{e.rating:.2f}", f"{e.cost:.2f}",
          render.ago(e.last_seen)] for e in items),
        right={5, 7, 8},
    ))


@click.command()
@json_option
def images(as_json: bool) -> None:
    """List the images of the platform's registry, as `megamind run` takes them."""
    with _api() as api:
        items = api.images()
    if as_json:
        _print_json([i.to_json() for i in items])
    elif not items:
        click.echo("the registry holds no images", err=True)
    else:
        click.echo("\n".join(i.image for i in items))


COMMANDS = [login, logout, hw, run, ps, inspect, logs, restart, rm, executors, images]
