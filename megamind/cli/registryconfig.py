"""`megamind registry-config`: the registry's configuration, with token auth pointing at the API."""

from __future__ import annotations

from pathlib import Path

import click

from megamind.config import DEFAULT_HOME, registry_auth_root
from megamind.registryauth.distconfig import (
    DEFAULT_ADDR,
    DEFAULT_ROOT,
    distribution_config,
)
from megamind.registryauth.keys import UnusableKey, ensure_signing_key


@click.command("registry-config")
@click.option("--db", "db_path", type=click.Path(dir_okay=False, path_type=Path),
              default=DEFAULT_HOME / "megamind.db", show_default=True,
              help="The server's SQLite file: its token key is beside it (as `megamind server --db`).")
@click.option("--registry-auth-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="The folder of the token key, as given to `megamind server`.  [default: "
                   "registry-auth beside the database]")
@click.option("--api-url", default="http://127.0.0.1:8080", show_default=True,
              help="The API as the Docker engines that push and pull reach it: the token realm.")
@click.option("--addr", default=DEFAULT_ADDR, show_default=True, help="HOST:PORT the registry listens on.")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_ROOT, show_default=True,
              help="Where the registry stores images.")
@click.option("--cert", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The certificate's path as the registry sees it (in a container, where it is "
                   "mounted).  [default: the file on this machine]")
def registry_config(db_path: Path, registry_auth_dir: Path | None, api_url: str, addr: str, root: Path,
                    cert: Path | None) -> None:
    """Print a Distribution registry configuration that trusts this API's tokens.

    The key that signs them is created now if the server has not made it yet (it is the
    same key the server uses), so the registry can start first:

        megamind registry-config --api-url http://127.0.0.1:8080 > registry.yml
        docker-registry serve registry.yml
    """
    try:
        key = ensure_signing_key(registry_auth_root(db_path, registry_auth_dir))
    except (OSError, ValueError, UnusableKey) as exc:
        raise click.ClickException(f"the registry's token key: {exc}") from None
    click.echo(distribution_config(api_url, cert or key.cert_path.resolve(), addr, root), nl=False)
