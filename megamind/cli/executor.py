from __future__ import annotations

import asyncio
import ipaddress
import signal
import sys
from pathlib import Path

import click

from megamind.config import DEFAULT_HOME, AgentConfig
from megamind.executor.link import RefusedByApi, Unregistered
from megamind.executor.service import RegistrationFailed, SettingRefused, run_executor
from megamind.executor.spec import HostNetworkRefused, Limits

EXIT_REGISTRATION_FAILED = 3
EXIT_REFUSED = 4  # the API speaks another agent protocol version
EXIT_SETTING_REFUSED = 5  # the engine cannot honour an option (--network, --disk-quota-gb)
EXIT_UNREGISTERED = 6  # the API does not know this executor's token: it was removed
UNBOUNDED = "none"


def _parse_labels(values: tuple[str, ...]) -> dict[str, str]:
    labels = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint="--label")
        labels[key] = val
    return labels


def _ip_address(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an IP address") from None


def _gb_or_unbounded(ctx: click.Context, param: click.Parameter, value: str | float | None) -> float | None:
    if value is None or str(value).lower() == UNBOUNDED:
        return None
    try:
        gb = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is neither a number of GB nor {UNBOUNDED!r}") from None
    if not gb >= 0:
        raise click.BadParameter(f"{value!r} is below 0")
    return gb


def _default_api_key() -> str | None:
    key_file = DEFAULT_HOME / "api-key"
    return key_file.read_text().strip() if key_file.exists() else None


@click.command()
@click.option("--api", "api_url", default="http://127.0.0.1:8080", show_default=True, help="Base URL of the API.")
@click.option("--api-key", envvar="MEGAMIND_API_KEY",
              help="The owner's api-key, used once to register. Default: ./.megamind/api-key.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              default=DEFAULT_HOME / "executor", show_default=True,
              help="Where the agent keeps its hwid and credential.")
@click.option("--cost", default=0.0, show_default=True, type=click.FloatRange(min=0),
              help="The owner's price per hour of task run time.")
@click.option("--network", default=AgentConfig.network, show_default=True,
              help="Network for task containers: 'isolated' (one bridge of this host's with "
                   "inter-container traffic off, made at start), 'bridge' (the engine's default, "
                   "where tasks reach each other), 'none', or an existing network's name. "
                   "'host' also needs --allow-host-network.")
@click.option("--allow-host-network", is_flag=True,
              help="Allow --network host: tasks then share this host's network stack.")
@click.option("--publish-address", default="0.0.0.0", show_default=True, callback=_ip_address,
              help="Host address the ports tasks ask for are published on (0.0.0.0: every address); "
                   "told to the API, which shows it to the task's customer.")
@click.option("--memory", "memory_mb", type=click.IntRange(min=6),
              help="Memory limit per task container, MB (with --slots N, each task is limited to "
                   "1/N of the RAM even without it).")
@click.option("--cpus", type=click.FloatRange(min=0.01), help="CPU limit per task container.")
@click.option("--pids-limit", default=4096, show_default=True, type=click.IntRange(min=16),
              help="Most processes a task container may hold.")
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Extra label on every task container (repeatable).")
@click.option("--slots", default=1, show_default=True, type=click.IntRange(1, 1024),
              help="Offer this host as N executors, each with its own hwid, a share of the GPUs "
                   "and 1/N of the RAM (kept in STATE_DIR/slot-<i> when N > 1).")
@click.option("--image-cache-gb", default=AgentConfig.image_cache_gb, show_default=True,
              callback=_gb_or_unbounded, metavar="GB|none",
              help="Keep the images tasks used to this many GB: unused ones are removed, least "
                   "recently used first, after each task and periodically ('none': never).")
@click.option("--disk-quota-gb", type=click.IntRange(min=1),
              help="Size limit of each task container's writable layer, GB. Needs a storage driver "
                   "with quotas (overlay2 on xfs with pquota, devicemapper, btrfs, zfs); refused at "
                   "start where the engine has none.")
def executor(api_url: str, api_key: str | None, state_dir: Path, cost: float, network: str,
             allow_host_network: bool, publish_address: str, memory_mb: int | None, cpus: float | None,
             pids_limit: int, labels: tuple[str, ...], slots: int, image_cache_gb: float | None,
             disk_quota_gb: int | None) -> None:
    """Run the executor agent on the local Docker engine until SIGTERM.

    On SIGTERM the task containers keep running; the next start re-adopts them.
    """
    try:
        Limits.checked(network, allow_host_network)
    except HostNetworkRefused as exc:
        raise click.BadParameter(str(exc), param_hint="--network") from None
    config = AgentConfig(
        api_url=api_url,
        api_key=api_key or _default_api_key(),
        state_dir=state_dir,
        cost=cost,
        network=network,
        labels=_parse_labels(labels),
        memory_mb=memory_mb,
        cpus=cpus,
        pids_limit=pids_limit,
        slots=slots,
        allow_host_network=allow_host_network,
        publish_address=publish_address,
        image_cache_gb=image_cache_gb,
        disk_quota_gb=disk_quota_gb,
    )
    try:
        asyncio.run(_serve(config))
    except RegistrationFailed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_REGISTRATION_FAILED)
    except RefusedByApi as exc:
        click.echo(f"error: the API refused this executor: {exc}", err=True)
        sys.exit(EXIT_REFUSED)
    except Unregistered as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_UNREGISTERED)
    except SettingRefused as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_SETTING_REFUSED)


async def _serve(config: AgentConfig) -> None:
    main = asyncio.current_task()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, main.cancel)
    try:
        await run_executor(config, announce=lambda line: click.echo(line, err=True))
    except asyncio.CancelledError:
        click.echo("executor stopped; task containers left running", err=True)
