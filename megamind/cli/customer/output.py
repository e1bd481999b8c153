"""What tasks leave: their logs, followed or not, and their results."""

from __future__ import annotations

import json
from pathlib import Path

import click

from megamind.cli.customer.session import EXIT_USAGE, Failure, api, describe, json_option, print_json
from megamind.cli.customer.taskview import describe_state
from megamind.client import ResultsNotFound, UnsafeArchive
from megamind.client.aio import DEFAULT_STREAM
from megamind.protocol import TAIL_LINES


@click.command()
@click.argument("taskid")
@click.option("--stderr", is_flag=True, help="The task's stderr instead of its stdout.")
@click.option("--tail", type=click.IntRange(min=0), metavar="N", help=f"The last N lines (default: {TAIL_LINES}).")
@click.option("--all", "whole", is_flag=True, help="Every line the platform keeps of the stream.")
@click.option("-f", "--follow", is_flag=True,
              help="Then print each new line as it comes, none lost, until the task has ended.")
@json_option
def logs(taskid: str, stderr: bool, tail: int | None, whole: bool, follow: bool, as_json: bool) -> None:
    """Print the last lines the task wrote to stdout (or stderr), and with -f follow them.

    --tail N and --all choose what comes first; -f then goes on with every new line until
    the task stops or fails. With --json: one object, or with -f one object per line.
    """
    if whole and tail is not None:
        raise click.UsageError("--tail and --all exclude each other")
    stream = "stderr" if stderr else DEFAULT_STREAM
    last = None if whole else (TAIL_LINES if tail is None else tail)
    with api() as client:
        if not follow:
            lines = client.logs(taskid, stream, last)
            if as_json:
                print_json({"taskid": taskid, "stream": stream, "lines": lines})
            else:
                for line in lines:
                    click.echo(line)
            return
        for line in client.follow_logs(taskid, stream, last):
            if as_json:
                click.echo(json.dumps({"taskid": taskid, "stream": stream, "line": line}, ensure_ascii=False))
            else:
                click.echo(line)
        click.echo(f"task {taskid} ended: {describe_state(client.task(taskid))}", err=True)


@click.command()
@click.argument("taskid")
@click.option("-o", "--output", "directory", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Unpack into DIR, made when missing (default: ./TASKID-results).")
@json_option
def results(taskid: str, directory: Path | None, as_json: bool) -> None:
    """Download what the task wrote under /megamind/output/, unpack it and list the files.

    Results are collected when the task ends. Nothing is unpacked outside DIR: an archive
    with absolute paths, '..' or links leading out is refused whole.
    """
    directory = Path(f"{taskid}-results") if directory is None else directory
    with api() as client:
        try:
            files = client.download_results(taskid, directory)
        except ResultsNotFound as exc:
            raise Failure(describe(exc)) from None
        except UnsafeArchive as exc:
            raise Failure(str(exc)) from None
        except OSError as exc:
            raise Failure(f"cannot unpack into {directory}: {exc.strerror or exc}", EXIT_USAGE) from None
    if as_json:
        print_json({"taskid": taskid, "directory": str(directory), "files": [str(f) for f in files]})
    elif not files:
        click.echo(f"task {taskid} left no files in /megamind/output/", err=True)
    else:
        click.echo("\n".join(str(f) for f in files))
