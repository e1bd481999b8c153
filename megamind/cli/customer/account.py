"""Logging in and out: the API's URL and an api-key, checked and stored for the other commands."""

from __future__ import annotations

import os

import click

from megamind.cli.customer.session import (
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    Failure,
    describe,
    json_option,
    print_json,
)
from megamind.client import ApiError, Client, TransportError
from megamind.client.config import (
    DEFAULT_API_URL,
    ENV_API_KEY,
    ENV_API_URL,
    ConfigError,
    config_path,
    load_settings,
    remove_config,
    save_config,
)
from megamind.client.transport import normalize_api_url


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
            raise Failure(f"{url} refused the api-key: {describe(exc)}") from None
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
        print_json({"api_url": url, "config": str(path), "verified": not no_verify})
    else:
        click.echo(f"logged in to {url}; stored in {path} (mode 600)")


@click.command()
@json_option
def logout(as_json: bool) -> None:
    """Forget the stored URL and api-key (remove the login file)."""
    path = config_path()
    removed = remove_config(path)
    if as_json:
        print_json({"config": str(path), "removed": removed})
    else:
        click.echo(f"removed {path}" if removed else f"not logged in ({path} does not exist)")
