"""What there is to run on: executors with every figure, an owner's executors (the
registry's images are in ``images.py``)."""

from __future__ import annotations

import dataclasses

import click

from megamind.cli import render
from megamind.cli.customer.runspec import requirement_options, take_requirements
from megamind.cli.customer.session import api, json_option, print_json, with_options
from megamind.cli.customer.tasks import on_each_task
from megamind.client import Client, HardwareDetail, Requirements
from megamind.client.spec import HARDWARE_SORTS, HARDWARE_STATUSES


def describe_gpus(item: HardwareDetail) -> str:
    """``2× GTX 1060 (5.9 GB)``: each GPU with its memory, alike ones counted."""
    if len(item.gpu_memory_mb) != len(item.gpus):
        return render.counted(item.gpus)
    return render.counted([f"{name} ({render.megabytes(mb)})" for name, mb in zip(item.gpus, item.gpu_memory_mb)])


def describe_cpus(item: HardwareDetail) -> str:
    """``2× Xeon E5, 32 logical``: the processors, and the logical CPUs a task can use."""
    return f"{render.counted(item.cpus)}, {item.cpu_count} logical"


@click.command("hw")
@click.option("--gpu", is_flag=True, help="At least one GPU (as --gpus 1).")
@with_options(requirement_options(old_hw_names=True))
@click.option("--status", default="free", show_default=True, type=click.Choice(HARDWARE_STATUSES),
              help="Executors in this state: free ones are those a task can go to now.")
@click.option("--sort", default="cost", show_default=True, type=click.Choice(HARDWARE_SORTS),
              help="Order by this column, as the API does.")
@click.option("--reverse", is_flag=True, help="Show the listing in the reverse order.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N executors.")
@click.option("--offset", type=click.IntRange(min=0), metavar="N", help="Leave out the first N (to page on).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the HWIDs, one per line (the first is the pick).")
@json_option
def hw(gpu: bool, status: str, sort: str, reverse: bool, limit: int | None, offset: int | None,
       quiet: bool, as_json: bool, **filters) -> None:
    """List executors (free ones by default): GPUs with their memory, CPUs, RAM, network,
    rating and cost.

    The filters are `megamind run`'s requirements: `run` with the same options and no
    --hwid is placed on the cheapest free executor of those listed.
    """
    requirements = take_requirements(filters) or Requirements()
    if gpu and requirements.gpus is None:
        requirements = dataclasses.replace(requirements, gpus=1)
    with api() as client:
        page = client.hardware(requirements, status=status, sort=sort, limit=limit, offset=offset)
    items = list(reversed(page.executors)) if reverse else page.executors
    if len(items) < page.total:
        first = (offset or 0) + 1
        shown = f"{first}-{first + len(items) - 1}" if items else "none"
        click.echo(f"showing {shown} of {page.total} that match (--offset and --limit page on)", err=True)
    if as_json:
        print_json([h.to_json() for h in items])
    elif not items:
        click.echo("no free executor matches" if status == "free" else "no executor matches", err=True)
    elif quiet:
        click.echo("\n".join(h.hwid for h in items))
    else:
        # The status column only when it can differ from row to row.
        with_status = status != "free"
        headers = ["HWID", *(["STATUS"] if with_status else []), "GPUS", "CPUS", "RAM", "NETWORK", "RATING",
                   "COST/H"]
        click.echo(render.table(
            headers,
            ([h.hwid, *([h.status] if with_status else []), describe_gpus(h), describe_cpus(h),
              render.megabytes(h.ram), h.network, f"{h.rating:.2f}", f"{h.cost:.2f}"] for h in items),
            right={headers.index(name) for name in ("RAM", "RATING", "COST/H")},
        ))


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def executors(ctx: click.Context, as_json: bool) -> None:
    """List the executors you registered (as an owner): online or not, free or busy.

    `megamind executors rm HWID` removes one.
    """
    if ctx.invoked_subcommand is not None:
        return
    with api() as client:
        items = client.executors()
    if as_json:
        print_json([e.to_json() for e in items])
        return
    if not items:
        click.echo("no executors registered with this account", err=True)
        return
    click.echo(render.table(
        ["HWID", "STATUS", "TASK", "GPUS", "CPUS", "RAM", "NETWORK", "RATING", "COST/H", "LAST SEEN"],
        ([e.hwid, e.status, e.taskid or ("(other account)" if e.busy else "-"), render.counted(e.gpus),
          render.counted(e.cpus), render.megabytes(e.ram), e.network, f"{e.rating:.2f}", f"{e.cost:.2f}",
          render.ago(e.last_seen)] for e in items),
        right={5, 7, 8},
    ))


@executors.command("rm")
@click.argument("hwids", metavar="HWID...", nargs=-1, required=True)
@json_option
def remove_executors(hwids: tuple[str, ...], as_json: bool) -> None:
    """Remove executors of yours: their tokens stop working, their agents are disconnected
    and stop, and a task running on one ends in error."""
    on_each_task(hwids, Client.remove_executor, "removed", as_json)
