"""The network task containers join, made ready before the first task starts.

The default mode, ``isolated``, puts every task of the host on one bridge network of its
own (``megamind-isolated``) with inter-container traffic off: the engine drops packets
between two containers of that bridge, so tasks of different slots, agents or customers
on one host cannot reach each other, while each still reaches the internet and publishes
its ports.  One network per host, not one per agent: an agent registered again, or a
test suite starting hundreds of agents, would otherwise use up the engine's address pools
(about 30 bridges by default).  The network outlives the agent, as its tasks do.

The other modes are the owner's: ``bridge`` (the engine's default bridge, where tasks can
reach each other), ``none``, ``host`` (only with ``--allow-host-network``), or the name of
a network the owner made, which must exist when the agent starts.

Plain blocking functions over `DockerRuntime`: the facade runs each in its thread pool.
"""

from __future__ import annotations

from typing import Any

from megamind.executor.runtime import DockerRuntime
from megamind.executor.spec import (
    BRIDGE_NETWORK,
    HOST_NETWORK,
    ISOLATED,
    LABEL_MANAGED,
    NO_NETWORK,
    network_name,
)

ICC_OPTION = "com.docker.network.bridge.enable_icc"
ISOLATED_OPTIONS = {ICC_OPTION: "false"}
NETWORK_LABELS = {LABEL_MANAGED: "1"}
BUILT_IN = (BRIDGE_NETWORK, NO_NETWORK, HOST_NETWORK)


class NetworkRefused(Exception):
    """The owner's network mode cannot be used on this engine; the message says why."""


def unfit(attrs: dict[str, Any]) -> str | None:
    """Why an existing network cannot serve as the isolated one, or None when it can."""
    name = attrs.get("Name", "?")
    if attrs.get("Driver") != "bridge":
        return f"network {name} exists with driver {attrs.get('Driver')}, not bridge"
    if (attrs.get("Options") or {}).get(ICC_OPTION) != "false":
        return f"network {name} exists and lets its containers reach each other ({ICC_OPTION} is not false)"
    return None


def ensure_isolated(runtime: DockerRuntime, name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The isolated network of this name as the engine describes it, made if missing.

    Two agents starting together may both make it; the oldest is kept and the twins are
    removed (an engine refuses to remove one in use).  ``NetworkRefused`` if a network of
    that name exists that lets containers reach each other: it is the owner's to mend.
    """
    found = runtime.networks(name)
    if not found:
        runtime.create_network(name, ISOLATED_OPTIONS, {**(labels or {}), **NETWORK_LABELS})
        found = runtime.networks(name)
    if not found:
        raise NetworkRefused(f"network {name} vanished as it was made")
    kept, *twins = found
    reason = unfit(kept)
    if reason:
        raise NetworkRefused(f"{reason}; remove it (docker network rm {name}) or choose another --network")
    for twin in twins:
        runtime.remove_network(twin["Id"])
    return kept


def prepare(runtime: DockerRuntime, mode: str) -> str:
    """Make the owner's network mode usable before the first task; its name in the engine."""
    name = network_name(mode)
    if mode == ISOLATED:
        ensure_isolated(runtime, name)
    elif mode not in BUILT_IN and not runtime.networks(name):
        raise NetworkRefused(f"there is no network {name} on this engine (docker network create {name})")
    return name
