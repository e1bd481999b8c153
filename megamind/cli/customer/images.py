"""The registry's images: what the account may run, who owns each, and publishing one's own."""

from __future__ import annotations

import click

from megamind.cli import render
from megamind.cli.customer.session import api, json_option, print_json
from megamind.client import Repository
from megamind.imageref import PUBLIC_REGISTRY


def _visibility(public: bool, owner: str | None) -> str:
    if owner is None:
        return "unclaimed"  # pushed before the registry had auth: nobody may pull it until pushed again
    return "public" if public else "private"


@click.group(invoke_without_command=True)
@click.option("-q", "--quiet", is_flag=True, help="Print only the images, one per line.")
@json_option
@click.pass_context
def images(ctx: click.Context, quiet: bool, as_json: bool) -> None:
    """List the images you may run, as `megamind run` takes them: yours, and the public
    ones of other accounts, with owner and visibility.

    `megamind images publish NAME` lets every account run one of yours; `megamind images
    unpublish NAME` makes it yours alone again.  `megamind push` pushes one.
    """
    if ctx.invoked_subcommand is not None:
        return
    with api() as client:
        items = client.images()
    if as_json:
        print_json([i.to_json() for i in items])
    elif not items:
        click.echo("no images you may run", err=True)
    elif quiet:
        click.echo("\n".join(i.image for i in items))
    else:
        click.echo(render.table(["IMAGE", "OWNER", "VISIBILITY"],
                                ([i.image, i.owner or "-", _visibility(i.public, i.owner)] for i in items)))


def _set_public(name: str, public: bool, as_json: bool) -> None:
    name = name.removeprefix(f"{PUBLIC_REGISTRY}/")
    with api() as client:
        repository: Repository = client.set_image_public(name, public)
    if as_json:
        print_json(repository.to_json())
    else:
        click.echo(f"{repository.image} is {_visibility(repository.public, repository.owner)}"
                   + (": every account may run it" if repository.public else ": only you may run it"))


@images.command()
@click.argument("name")
@json_option
def publish(name: str, as_json: bool) -> None:
    """Let every account pull and run NAME (one of your repositories, every tag)."""
    _set_public(name, True, as_json)


@images.command()
@click.argument("name")
@json_option
def unpublish(name: str, as_json: bool) -> None:
    """Make NAME yours alone again: other accounts' new pulls of it are refused."""
    _set_public(name, False, as_json)
