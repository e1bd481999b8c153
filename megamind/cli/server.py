from __future__ import annotations

from pathlib import Path

import click
from aiohttp import web

from megamind.api.app import create_app
from megamind.api.ratelimit import DEFAULT_RATE_LIMIT, DEFAULT_REGISTER_RATE_LIMIT, parse_rate_limit
from megamind.config import DEFAULT_HOME, FLUX_SECRET_ENV, MiB, ServerConfig
from megamind.errors import ImageNotAllowed
from megamind.imageref import parse_image


def _check_image(ctx, param, value: str) -> str:
    try:
        return parse_image(value).public
    except ImageNotAllowed as exc:
        raise click.BadParameter(exc.message) from None


def _check_rate_limit(ctx, param, value: str) -> str:
    try:
        parse_rate_limit(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


@click.command()
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_HOME / "megamind.db", show_default=True, help="SQLite file (created if missing).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--registry", default="127.0.0.1:5000", show_default=True,
              help="HOST:PORT of the registry that megamind.network/... images are pulled from.")
@click.option("--setup-timeout", default=900.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds a task may stay in setup before it is an error.")
@click.option("--rate-limit", default=DEFAULT_RATE_LIMIT, show_default=True, callback=_check_rate_limit,
              help="Requests allowed per api-key, as `limits` strings joined by ';' "
                   "(e.g. '60/minute;1000/hour'), or 'none'. Keys may carry their own "
                   "(megamind admin set-rate-limit).")
@click.option("--register-rate-limit", default=DEFAULT_REGISTER_RATE_LIMIT, show_default=True,
              callback=_check_rate_limit,
              help="Executors each api-key may register, as --rate-limit's strings, or 'none'; "
                   "counted apart from every other call.")
@click.option("--max-executors-per-account", default=ServerConfig.max_executors_per_account, show_default=True,
              type=click.IntRange(min=0), metavar="N",
              help="Executors an account may hold (removed ones do not count); 0: no cap.")
@click.option("--log-limit-mb", default=ServerConfig.log_limit_bytes // MiB, show_default=True,
              type=click.IntRange(min=1),
              help="MB kept of each stream (stdout, stderr) of each task; past it the oldest lines go.")
@click.option("--results-limit-mb", default=ServerConfig.results_limit_bytes // MiB, show_default=True,
              type=click.IntRange(min=1), help="MB of results (a tar.gz) kept per task.")
@click.option("--blobs-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for results and input files.  [default: blobs beside the database]")
@click.option("--local-account/--no-local-account", default=True, show_default=True,
              help="Create an account 'local' and write its api-key next to the database, "
                   "so that `megamind executor` with no flags can use it.")
@click.option("--platform-fee", default=ServerConfig.platform_fee, show_default=True, type=click.FloatRange(0, 1),
              help="The platform's share of every charge (0.2: a fifth); owners earn the rest.")
@click.option("--meter-interval", default=ServerConfig.meter_interval_s, show_default=True,
              type=click.FloatRange(min=0.1),
              help="Seconds between charges of prepaid and spend-limited accounts' runs: a balance goes "
                   "below zero by at most this much run time.")
@click.option("--metering/--no-metering", default=ServerConfig.metering, show_default=True,
              help="Meter and charge task runs; without, nothing is billed (a private fleet).")
@click.option("--history-days", default=None, type=click.IntRange(min=1),
              help="Purge the records of deleted tasks older than this many days.  [default: keep them]")
@click.option("--registry-auth-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the key that signs registry tokens and its certificate (created at the "
                   "first start; `megamind registry-config` points the registry at it).  Servers sharing "
                   "a registry share it.  [default: registry-auth beside the database]")
@click.option("--default-image", default=ServerConfig.default_image, show_default=True, callback=_check_image,
              help="The image a dialect's job runs in when it names none.")
@click.option("--flux-secret-key", envvar=FLUX_SECRET_ENV, default=None, show_envvar=True,
              help="The secret Flux RESTful clients sign their token requests with (their FLUX_SECRET_KEY). "
                   "[default: a random one per start]")
@click.option("--market-rate-limit", default=ServerConfig.market_rate_limit, show_default=True,
              callback=_check_rate_limit, help="Requests per api-key to the GPU job market's calls (/market).")
def server(db_path: Path, host: str, port: int, registry: str, setup_timeout: float, rate_limit: str,
           register_rate_limit: str, max_executors_per_account: int,
           log_limit_mb: int, results_limit_mb: int, blobs_dir: Path | None, local_account: bool,
           platform_fee: float, meter_interval: float, metering: bool, history_days: int | None,
           registry_auth_dir: Path | None, default_image: str, flux_secret_key: str | None,
           market_rate_limit: str) -> None:
    """Serve the API until SIGTERM or SIGINT."""
    config = ServerConfig(
        db_path=db_path,
        host=host,
        port=port,
        registry=registry,
        setup_timeout_s=setup_timeout,
        rate_limit=rate_limit,
        register_rate_limit=register_rate_limit,
        max_executors_per_account=max_executors_per_account or None,
        log_limit_bytes=log_limit_mb * MiB,
        results_limit_bytes=results_limit_mb * MiB,
        blobs_dir=blobs_dir,
        home=db_path.parent,
        create_local_account=local_account,
        platform_fee=platform_fee,
        meter_interval_s=meter_interval,
        metering=metering,
        history_days=history_days,
        registry_auth_dir=registry_auth_dir,
        default_image=default_image,
        flux_secret_key=flux_secret_key,
        market_rate_limit=market_rate_limit,
    )
    web.run_app(
        create_app(config),
        host=host,
        port=port,
        shutdown_timeout=5.0,
        print=lambda msg: click.echo(f"megamind API on http://{host}:{port}/api/ (registry {registry})", err=True),
        access_log=None,
    )
