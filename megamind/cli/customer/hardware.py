"""What there is to run on and to run: free executors, an owner's executors, the registry's images."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import click

from megamind.cli import render
from megamind.cli.customer.session import api, json_option, print_json
from megamind.client import HardwareItem

SORT_KEYS: dict[str, Callable[[HardwareItem], Any]] = {
    "cost": lambda h: h.cost,
    "rating": lambda h: h.rating,
    "ram": lambda h: h.ram,
    "gpus": lambda h: len(h.gpus),
    "cpus": lambda h: len(h.cpus),
    "network": lambda h: network_mbit(h.network),
}


def network_mbit(text: str) -> float:
    """``"100mbit"`` as 100.0, ``"1gbit"`` as 1000.0; 0 for what is not a speed."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([kmg]?)(?:bit|b)?(?:/s|ps)?\s*", text.lower())
    if not match:
        return 0.0
    try:
        number = float(match[1])
    except ValueError:
        return 0.0
    return number * {"k": 0.001, "": 1.0, "m": 1.0, "g": 1000.0}[match[2]]


def filter_hardware(
    items: list[HardwareItem], *, gpu: bool = False, gpu_model: str | None = None, min_gpus: int = 0,
    min_cpus: int = 0, min_ram: int = 0, max_cost: float | None = None, min_rating: float | None = None,
    sort: str = "cost", reverse: bool = False,
) -> list[HardwareItem]:
    def keep(h: HardwareItem) -> bool:
        return (
            (not gpu or bool(h.gpus))
            and (gpu_model is None or any(gpu_model.lower() in g.lower() for g in h.gpus))
            and len(h.gpus) >= min_gpus
            and len(h.cpus) >= min_cpus
            and h.ram >= min_ram
            and (max_cost is None or h.cost <= max_cost)
            and (min_rating is None or h.rating >= min_rating)
        )
    key = SORT_KEYS[sort]
    return sorted((h for h in items if keep(h)), key=lambda h: (key(h), h.hwid), reverse=reverse)


@click.command("hw")
@click.option("--gpu", is_flag=True, help="Only executors with at least one GPU.")
@click.option("--gpu-model", metavar="TEXT", help="Only executors with a GPU whose name contains TEXT (any case).")
@click.option("--min-gpus", default=0, type=click.IntRange(min=0), metavar="N", help="At least N GPUs.")
@click.option("--min-cpus", default=0, type=click.IntRange(min=0), metavar="N", help="At least N CPUs (sockets).")
@click.option("--min-ram", default=0, type=click.IntRange(min=0), metavar="MB", help="At least this much RAM, in MB.")
@click.option("--max-cost", type=click.FloatRange(min=0), metavar="PRICE", help="At most this cost per hour.")
@click.option("--min-rating", type=float, metavar="RATING", help="At least this performance rating.")
@click.option("--sort", default="cost", show_default=True, type=click.Choice(sorted(SORT_KEYS)),
              help="Order by this column (ascending).")
@click.option("--reverse", is_flag=True, help="Reverse the order (e.g. highest rating first).")
@click.option("-q", "--quiet", is_flag=True, help="Print only the HWIDs, one per line (the first is the pick).")
@json_option
def hw(gpu: bool, gpu_model: str | None, min_gpus: int, min_cpus: int, min_ram: int, max_cost: float | None,
       min_rating: float | None, sort: str, reverse: bool, quiet: bool, as_json: bool) -> None:
    """List the free executors: their GPUs, CPUs, RAM, network, rating and cost."""
    with api() as client:
        items = client.hw_list()
    items = filter_hardware(items, gpu=gpu, gpu_model=gpu_model, min_gpus=min_gpus, min_cpus=min_cpus,
                            min_ram=min_ram, max_cost=max_cost, min_rating=min_rating, sort=sort, reverse=reverse)
    if as_json:
        print_json([h.to_json() for h in items])
    elif not items:
        click.echo("no free executor matches", err=True)
    elif quiet:
        click.echo("\n".join(h.hwid for h in items))
    else:
        click.echo(render.table(
            ["HWID", "GPUS", "CPUS", "RAM", "NETWORK", "RATING", "COST/H"],
            ([h.hwid, render.counted(h.gpus), render.counted(h.cpus), render.megabytes(h.ram), h.network,
              f"{h.rating:.2f}", f"{h.cost:.2f}"] for h in items),
            right={3, 5, 6},
        ))


@click.command()
@json_option
def executors(as_json: bool) -> None:
    """List the executors you registered (as an owner): online or not, free or busy."""
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


@click.command()
@json_option
def images(as_json: bool) -> None:
    """List the images of the platform's registry, as `megamind run` takes them."""
    with api() as client:
        items = client.images()
    if as_json:
        print_json([i.to_json() for i in items])
    elif not items:
        click.echo("the registry holds no images", err=True)
    else:
        click.echo("\n".join(i.image for i in items))
