"""Files for tasks' inputs: `megamind upload`, and the uploads behind `megamind run --input`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from megamind.cli import render
from megamind.cli.customer.session import EXIT_USAGE, Failure, api, json_option, print_json
from megamind.client import Client, FileInfo
from megamind.taskenv import INPUT_DIR


file_argument = click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)


def check_names(paths: Sequence[Path]) -> None:
    """Each input is /megamind/input/<its name> in the task: two with one name cannot both be."""
    names = [p.name for p in paths]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise Failure(f"two inputs would both be {INPUT_DIR}/{twice[0]}: rename one", EXIT_USAGE)


def upload_inputs(client: Client, paths: Sequence[Path]) -> list[FileInfo]:
    """Upload each file, saying so on stderr."""
    uploaded = []
    for path in paths:
        info = client.upload_file(path)
        click.echo(f"uploaded {path} ({render.size(info.size)}) as {info.file_id}: "
                   f"{INPUT_DIR}/{info.name} in the task", err=True)
        uploaded.append(info)
    return uploaded


@click.command()
@click.argument("file", type=file_argument)
@click.option("--name", help=f"The name the task sees it by ({INPUT_DIR}/NAME); the file's own by default.")
@json_option
def upload(file: Path, name: str | None, as_json: bool) -> None:
    """Upload FILE for tasks' inputs and print its file id (`megamind run --input` does this for you)."""
    with api() as client:
        info = client.upload_file(file, name)
    if as_json:
        print_json(info.to_json())
    else:
        click.echo(info.file_id)
