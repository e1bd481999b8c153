"""The `megamind` command."""

from __future__ import annotations

import logging

import click

from megamind.cli.admin import admin
from megamind.cli.executor import executor
from megamind.cli.server import server


@click.group(context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "MEGAMIND"})
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="How much to log on stderr.")
def cli(log_level: str) -> None:
    """Megamind: run registry images as tasks on executors offered by hardware owners."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


cli.add_command(server)
cli.add_command(executor)
cli.add_command(admin)


def main() -> None:
    cli()
