"""What every customer command shares: the client, failures as exit codes, JSON output.

Every command talks to the API through megamind.client, prints text for people on
stdout (or JSON with ``--json``), and says what went wrong on stderr as ``error: ...``
with one of the exit codes below.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import click

from megamind.client import ApiError, Client, TransportError, Unauthorized
from megamind.client.config import ENV_API_KEY, ENV_API_URL, ConfigError, Settings, load_settings

EXIT_OK = 0
EXIT_API_ERROR = 1  # the API refused the call; the message says why
EXIT_USAGE = 2  # a wrong option or argument (click's own code)
EXIT_NOT_LOGGED_IN = 3  # no api-key: `megamind login` or MEGAMIND_API_KEY
EXIT_UNREACHABLE = 4  # the API did not answer, or something else did
EXIT_TASK_FAILED = 5  # --wait: the task ended in error
EXIT_TIMEOUT = 6  # --wait: the task was not settled in time (it goes on)
EXIT_INTERRUPTED = 130  # Ctrl-C


class Failure(click.ClickException):
    """A failure for a person: ``error: ...`` on stderr and a named exit code."""

    def __init__(self, message: str, exit_code: int = EXIT_API_ERROR) -> None:
        super().__init__(message)
        self.exit_code = exit_code

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON for programs instead of text.")


def with_options(options: list[Callable]) -> Callable:
    """Several click options as one decorator, in the order given."""
    def decorate(fn: Callable) -> Callable:
        for option in reversed(options):
            fn = option(fn)
        return fn
    return decorate


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def describe(exc: ApiError) -> str:
    return f"{exc.message} ({exc.name}, code {exc.code})"


def settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise Failure(f"{exc}; run `megamind login` again", EXIT_NOT_LOGGED_IN) from None


@contextlib.contextmanager
def api() -> Iterator[Client]:
    """A client from the environment or the login file; its errors become exit codes."""
    found = settings()
    if not found.api_key:
        raise Failure(f"no api-key: run `megamind login`, or set {ENV_API_KEY}", EXIT_NOT_LOGGED_IN)
    client = Client(found.api_url, found.api_key)
    try:
        yield client
    except Unauthorized as exc:
        source = "the environment" if found.key_source == "environment" else found.key_source
        raise Failure(f"{exc.message} (the api-key from {source}); log in again with `megamind login`") from None
    except ApiError as exc:
        raise Failure(describe(exc)) from None
    except TransportError as exc:
        raise Failure(f"{exc} (API URL from {found.url_source}: check {ENV_API_URL} or "
                      "`megamind login --api-url`)", EXIT_UNREACHABLE) from None
    except KeyboardInterrupt:
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    finally:
        client.close()
