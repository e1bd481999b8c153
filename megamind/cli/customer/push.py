"""`megamind push`: a local image to the platform's registry, through the local engine."""

from __future__ import annotations

import click

from megamind.cli.customer.session import (
    EXIT_API_ERROR,
    Failure,
    api,
    json_option,
    print_json,
    settings,
)
from megamind.client.push import PushError, parse_target, push_image


@click.command()
@click.argument("local_image")
@click.argument("name")
@click.option("--registry", metavar="HOST:PORT",
              help="Push there instead of the address the API gives (the one executors reach).")
@click.option("--public", is_flag=True, help="Publish it once pushed: every account may run it.")
@json_option
def push(local_image: str, name: str, registry: str | None, public: bool, as_json: bool) -> None:
    """Push LOCAL_IMAGE (a name or id the local Docker engine knows) as NAME[:TAG].

    Customers then run it as megamind.network/NAME:TAG.  The engine logs in to the
    registry with your account's name and api-key; a repository belongs to the account
    that pushed it first, and only that account may push to it.  Progress goes to
    stderr; the image's name, as `run` takes it, to stdout.
    """
    try:
        target = parse_target(name)
    except PushError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from None
    with api() as client:
        info = client.registry()
    address = registry or info.registry
    key = settings().api_key or ""
    try:
        digest = push_image(local_image, address, target, info.account, key,
                            progress=lambda line: click.echo(line, err=True))
    except PushError as exc:
        raise Failure(str(exc), EXIT_API_ERROR) from None
    if public:
        with api() as client:
            client.set_image_public(target.name, True)
    if as_json:
        print_json({"image": target.public, "pushed_to": target.at(address), "digest": digest,
                    "owner": info.account})
    else:
        click.echo(target.public)
