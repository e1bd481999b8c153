"""The `megamind` command.

Subcommands are imported when used: a customer's `megamind ps` does not load the
server, the Docker SDK or the database code.
"""

from __future__ import annotations

import importlib
import logging

import click

# name -> "module:attribute", in the order `megamind --help` lists them.
COMMANDS = {
    "login": "megamind.cli.customer.account:login",
    "logout": "megamind.cli.customer.account:logout",
    "hw": "megamind.cli.customer.hardware:hw",
    "estimate": "megamind.cli.customer.spending:estimate",
    "run": "megamind.cli.customer.tasks:run",
    "ps": "megamind.cli.customer.tasks:ps",
    "inspect": "megamind.cli.customer.tasks:inspect",
    "logs": "megamind.cli.customer.output:logs",
    "results": "megamind.cli.customer.output:results",
    "upload": "megamind.cli.customer.inputs:upload",
    "restart": "megamind.cli.customer.tasks:restart",
    "rm": "megamind.cli.customer.tasks:rm",
    "cancel": "megamind.cli.customer.queue:cancel",
    "queue": "megamind.cli.customer.queue:queue",
    "images": "megamind.cli.customer.images:images",
    "push": "megamind.cli.customer.push:push",
    "executors": "megamind.cli.customer.hardware:executors",
    "account": "megamind.cli.customer.spending:account",
    "spend-limit": "megamind.cli.customer.spending:spend_limit",
    "history": "megamind.cli.customer.history:history",
    "usage": "megamind.cli.customer.history:usage",
    "earnings": "megamind.cli.customer.history:earnings",
    "server": "megamind.cli.server:server",
    "executor": "megamind.cli.executor:executor",
    "admin": "megamind.cli.admin:admin",
    "registry-config": "megamind.cli.registryconfig:registry_config",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, _, attribute = target.partition(":")
        return getattr(importlib.import_module(module), attribute)


@click.group(cls=LazyGroup,
             context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "MEGAMIND"},
             epilog="Customers: `megamind login`, then `megamind hw`, `megamind run IMAGE --hwid ID --wait`, "
                    "`megamind logs -f TASKID`, `megamind results TASKID`. "
                    "Owners: `megamind executor`, `megamind executors`. "
                    "Exit codes: 0 ok, 1 the API refused the call, 2 bad usage, 3 not logged in, "
                    "4 API unreachable, 5 the task ended in error (--wait), 6 timed out waiting, "
                    "130 interrupted.")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]), help="How much to log on stderr.")
def cli(log_level: str) -> None:
    """Megamind: run registry images as tasks on executors offered by hardware owners."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def main() -> None:
    cli()
