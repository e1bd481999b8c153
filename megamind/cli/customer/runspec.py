"""`megamind run`'s options: the image, where it goes, its params and inputs, and the job
options (what the executor must have, the task's command, environment, folder, ports,
limits and its place in the queue); parsed into add_task's fields, with the ranges of
megamind.jobspec.

`megamind estimate` takes the same options (``run_options``), so that what it says is
what `run` with them would do. The requirement options are `megamind hw`'s filters too,
so that what `hw` lists is where `run` with the same options may go.
"""

from __future__ import annotations

import shlex
from typing import Any

import click

from megamind.cli.customer.inputs import file_argument
from megamind.client import PortRequest, Requirements, TaskLimits
from megamind.client.spec import check_env, port_request
from megamind.imageref import PUBLIC_REGISTRY
from megamind.jobspec import (
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE_TIMEOUT_S,
    MAX_LIMIT_S,
    MAX_QUEUE_TIMEOUT_S,
    PRIORITY_MAX,
    PRIORITY_MIN,
)

# Requirements' fields, and the option that gives each (for messages).
REQUIREMENT_OPTIONS = {"gpus": "--gpus", "gpu_model": "--gpu-model", "min_vram_mb": "--min-vram", "cpus": "--cpus",
                       "ram": "--ram", "max_cost": "--max-cost", "min_rating": "--min-rating"}


def requirement_options(*, old_hw_names: bool = False) -> list:
    """--gpus, --gpu-model, --min-vram, --cpus, --ram, --max-cost, --min-rating.

    ``old_hw_names``: `hw` also takes the names it had before (--min-gpus, ...).
    """
    def names(new: str, old: str) -> tuple[str, ...]:
        return (new, old) if old_hw_names else (new,)
    return [
        click.option(*names("--gpus", "--min-gpus"), "gpus", type=click.IntRange(min=0), metavar="N",
                     help="At least N GPUs."),
        click.option("--gpu-model", metavar="TEXT", help="Every GPU's name contains TEXT (any case), e.g. 1060."),
        click.option("--min-vram", "min_vram_mb", type=click.IntRange(min=0), metavar="MB",
                     help="Every GPU has at least this much memory, in MB."),
        click.option(*names("--cpus", "--min-cpus"), "cpus", type=click.IntRange(min=0), metavar="N",
                     help="At least N logical CPUs."),
        click.option(*names("--ram", "--min-ram"), "ram", type=click.IntRange(min=0), metavar="MB",
                     help="At least this much RAM, in MB."),
        click.option("--max-cost", type=click.FloatRange(min=0), metavar="PRICE", help="At most this price per hour."),
        click.option("--min-rating", type=float, metavar="RATING", help="At least this performance rating."),
    ]


def take_requirements(values: dict[str, Any]) -> Requirements | None:
    """The requirement options out of a command's values; None when none was given."""
    given = {name: values.pop(name) for name in REQUIREMENT_OPTIONS}
    given = {name: value for name, value in given.items() if value is not None}
    return Requirements(**given) if given else None


def parse_env(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in values:
        name, equals, value = item.partition("=")
        if not equals:
            raise click.BadParameter(f"{item!r} is not NAME=VALUE", ctx, param)
        try:
            check_env({name: value})
        except ValueError as exc:
            raise click.BadParameter(str(exc).removeprefix("env: "), ctx, param) from None
        env[name] = value  # given twice: the last wins, as in a shell
    return env


def parse_ports(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[PortRequest, ...]:
    ports = []
    for item in values:
        container, colon, host = item.partition(":")
        try:
            if not container.isdigit() or (colon and not host.isdigit()):
                raise ValueError(f"{item!r} is not PORT or PORT:HOST_PORT")
            ports.append(port_request((int(container), int(host)) if colon else int(container)))
        except ValueError as exc:
            raise click.BadParameter(str(exc).removeprefix("ports: "), ctx, param) from None
    return tuple(ports)


def parse_workdir(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.startswith("/"):
        raise click.BadParameter(f"{value!r} is not an absolute path", ctx, param)
    return value


def parse_command_text(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Checked here as the API will split it, so that a stray quote is a usage error now."""
    if value is None:
        return None
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} cannot be split into words: {exc}", ctx, param) from None
    if not words:
        raise click.BadParameter("the command is empty", ctx, param)
    return value


class CommandAfterDashes(click.Command):
    """A command whose trailing words (the task's command) are taken only after ``--``, so
    that a stray word or a misspelt option is a usage error, not a command the task runs."""

    words_param = "command_words"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)
        rest = super().parse_args(ctx, args)
        words = list(ctx.params.get(self.words_param) or ())
        if words and not ctx.resilient_parsing:
            # Click takes words after IMAGE with or without ``--``; after it, they end the list.
            if given[len(given) - len(words) - 1:] != ["--", *words]:
                raise click.UsageError(
                    f"unexpected {words[0]!r}: the task's command goes last, after `--` "
                    "(megamind run IMAGE [OPTIONS] -- COMMAND [ARG]...), or in --cmd", ctx)
        return rest


run_job_options = [
    click.argument("command_words", nargs=-1, metavar="[-- COMMAND [ARG]...]"),
    *requirement_options(),
    click.option("--cmd", "command_text", callback=parse_command_text, metavar="TEXT",
                 help="The command instead of the image's own, as one string split as a shell would "
                      "(no shell runs it). Or give it as words after `--`."),
    click.option("-e", "--env", "env", multiple=True, callback=parse_env, metavar="NAME=VALUE",
                 help="Set an environment variable in the task (repeatable); MEGAMIND_* are the platform's."),
    click.option("--workdir", callback=parse_workdir, metavar="PATH",
                 help="The folder the command runs in (absolute); the image's own by default."),
    click.option("-p", "--port", "ports", multiple=True, callback=parse_ports, metavar="PORT[:HOST_PORT]",
                 help="Publish the container's PORT on the executor's host, on HOST_PORT or a free port "
                      "the engine picks (repeatable); `megamind inspect` shows the address."),
    click.option("--cpu-limit", type=click.FloatRange(min=0, min_open=True), metavar="CPUS",
                 help="CPU share the task may use, as `docker run --cpus` (e.g. 1.5)."),
    click.option("--memory-limit", type=click.IntRange(min=1), metavar="MB",
                 help="Memory the task may use, in MB; past it the task ends out of memory."),
    click.option("--cputime", type=click.IntRange(1, MAX_LIMIT_S), metavar="SECONDS",
                 help="CPU time the task may use; then it ends."),
    click.option("--timeout", "runtime", type=click.IntRange(1, MAX_LIMIT_S), metavar="SECONDS",
                 help="How long the task may run (each run, counted in state running); then it is stopped."),
    click.option("--priority", type=click.IntRange(PRIORITY_MIN, PRIORITY_MAX), metavar="N",
                 help=f"Place before lower priorities while queued ({PRIORITY_MIN}-{PRIORITY_MAX}; "
                      f"default {DEFAULT_PRIORITY})."),
    click.option("--queue-timeout", type=click.IntRange(1, MAX_QUEUE_TIMEOUT_S), metavar="SECONDS",
                 help=f"How long it may wait for an executor before it ends in error "
                      f"(default {DEFAULT_QUEUE_TIMEOUT_S})."),
]


# Everything `run` and `estimate` both take: the image, then where and what it runs.
run_options = [
    click.argument("image"),
    click.option("--hwid", help="Run on exactly this executor (an HWID from `megamind hw`); without it the "
                                "platform picks the cheapest free one that meets the requirements below, "
                                "or queues the task until one is free."),
    click.option("--params", default="", show_default=True,
                 help="A string handed unchanged to the task's process, as $MEGAMIND_PARAMS."),
    click.option("--input", "inputs", multiple=True, type=file_argument, metavar="FILE",
                 help="Upload FILE and give it to the task as /megamind/input/<its name> (repeatable)."),
    *run_job_options,
]


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


def job_fields(hwid: str | None, values: dict[str, Any]) -> dict[str, Any]:
    """add_task's job fields from `run`'s job options (``values``, by parameter name);
    only those given. Options that exclude each other are a usage error."""
    values = dict(values)
    requirements = take_requirements(values)
    if hwid is not None and requirements is not None:
        first = REQUIREMENT_OPTIONS[next(iter(requirements.to_dict()))]
        raise click.UsageError(f"--hwid and {first} exclude each other: name the executor, "
                               "or say what it needs and let the platform place the task")
    words, text = values.pop("command_words"), values.pop("command_text")
    if words and text is not None:
        raise click.UsageError("--cmd and a command after `--` exclude each other")
    limits = TaskLimits(cpus=values.pop("cpu_limit"), memory=values.pop("memory_limit"),
                        cputime=values.pop("cputime"), runtime=values.pop("runtime"))
    fields = {
        "requirements": requirements,
        "command": list(words) if words else text,
        "env": values.pop("env") or None,
        "workdir": values.pop("workdir"),
        "ports": values.pop("ports") or None,
        "limits": limits if limits.to_wire() else None,
        "priority": values.pop("priority"),
        "queue_timeout": values.pop("queue_timeout"),
    }
    if values:
        raise TypeError(f"job_fields: unknown options {sorted(values)}")
    return {name: value for name, value in fields.items() if value is not None}
