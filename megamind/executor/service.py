"""Starting an agent: identity, hardware, engine, then the agent itself.

With ``--slots N`` one process offers its host as N executors.  Each slot is an
`Agent` with its own hwid, credential and state folder (``<state-dir>/slot-<i>``;
one slot keeps the plain ``<state-dir>`` layout), its share of the GPUs and
1/N of the RAM and of the CPUs; each task's memory is limited to its slot's share.  The
slots share the engine connection pool, the HTTP session, one engine event stream and one
image cache, so a slot costs little more than its WebSocket.

Before anything registers, the engine is made ready for the owner's settings (the task
network) or found unable to honour them (a disk quota the storage driver cannot give):
then the agent refuses to start (``SettingRefused``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import docker

from megamind.config import AgentConfig
from megamind.executor.agent import Agent, Unregistered
from megamind.executor.events import EngineEvents
from megamind.executor.facade import AsyncDocker
from megamind.executor.follow import EngineLogs
from megamind.executor.gpu import Gpu, split_gpus
from megamind.executor.hardware import (
    Hardware,
    gpu_rating,
    probe_hardware,
    task_cpu_count,
)
from megamind.executor.identity import IDENTITY_FILE, Identity
from megamind.executor.imagecache import ImageCache
from megamind.executor.images import ImageFetcher
from megamind.executor.network import NetworkRefused
from megamind.executor.runtime import DockerRuntime
from megamind.protocol import REGISTER_PATH, SPEEDTEST_PATH, TOKEN_HEADER

log = logging.getLogger(__name__)

# Engine calls in flight at once: enough for a burst on many slots, not a thread per slot.
MAX_DOCKER_THREADS = 32


class RegistrationFailed(Exception):
    pass


class SettingRefused(Exception):
    """An owner's setting this engine cannot honour; the message names the option and why."""


async def register(http: aiohttp.ClientSession, config: AgentConfig) -> Identity:
    if not config.api_key:
        raise RegistrationFailed("an api-key is needed to register this executor (--api-key)")
    url = config.api_url.rstrip("/") + REGISTER_PATH
    async with http.post(url, json={"cost": config.cost}, headers={"api-key": config.api_key}) as resp:
        body = await resp.json(content_type=None)
        if resp.status != 201:
            raise RegistrationFailed(f"the API refused registration: {body.get('message', resp.status)}")
    identity = Identity(config.api_url, body["hwid"], body["token"])
    identity.save(config.state_dir)
    return identity


async def _identity(http: aiohttp.ClientSession, config: AgentConfig) -> Identity:
    identity = Identity.load(config.state_dir)
    if identity is None or identity.api_url != config.api_url:
        identity = await register(http, config)
    return identity


def slot_configs(config: AgentConfig) -> list[AgentConfig]:
    """One config per slot, each with its own state folder."""
    if config.slots == 1:
        return [config]
    return [dataclasses.replace(config, state_dir=config.state_dir / f"slot-{i}") for i in range(config.slots)]


def with_memory_share(config: AgentConfig, share: dict[str, Any]) -> AgentConfig:
    """A slot's config whose memory limit is its share of the RAM (``share["ram"]``, already
    no more than ``--memory``): the whole RAM with one slot, so a task never takes more than
    the executor advertises."""
    if not share["ram"]:
        return config
    return dataclasses.replace(config, memory_mb=share["ram"])


async def prepare_engine(docker_: AsyncDocker, config: AgentConfig) -> str:
    """Make the engine ready for the owner's settings: the task network's name."""
    try:
        network = await docker_.prepare_network(config.network)
    except NetworkRefused as exc:
        raise SettingRefused(f"--network {config.network}: {exc}") from None
    if config.disk_quota_gb:
        reason = await docker_.disk_quota_refusal(config.disk_quota_gb, config.labels)
        if reason:
            raise SettingRefused(f"--disk-quota-gb: this engine cannot limit a task's disk: {reason}")
    return network


def slot_hardware(
    hardware: Hardware, gpus: list[Gpu], slots: int, memory_mb: int | None = None, cpus: float | None = None,
) -> list[tuple[dict[str, Any], list[Gpu]]]:
    """What each slot reports: the size one task can use there.

    Its GPUs (labels and memory), 1/slots of the RAM, of the logical CPUs and of the
    CPU rating; RAM and CPUs no more than the owner's per-task ``--memory`` and ``--cpus``.
    """
    cpu_rating = hardware.calculated_perfomance_rating - gpu_rating(gpus)
    ram = hardware.ram // slots
    shares = []
    for share in split_gpus(gpus, slots):
        shares.append(({
            **hardware.to_dict(),
            "ram": min(ram, memory_mb) if memory_mb else ram,
            "gpus": [gpu.label for gpu in share],
            "gpu_memory_mb": [gpu.memory_mb for gpu in share],
            "cpu_count": task_cpu_count(hardware.cpu_count, slots, cpus),
            "cpu_limit": cpus,
            "slots": slots,  # how many executors this host is offered as
            # One slot keeps the measured figure as it is: no rounding of a sum it never was.
            "calculated_perfomance_rating": (hardware.calculated_perfomance_rating if slots == 1 else
                                             round(max(cpu_rating, 0.0) / slots + gpu_rating(share), 2)),
        }, share))
    return shares


async def _serve_slot(
    config: AgentConfig,
    docker_: AsyncDocker,
    http: aiohttp.ClientSession,
    identity: Identity,
    hardware: dict[str, Any],
    gpus: list[Gpu],
    events: EngineEvents,
    images: ImageFetcher,
    logs: EngineLogs,
    image_cache: ImageCache | None,
    announce: Callable[[str], None],
) -> None:
    while True:
        announce(f"executor {identity.hwid}: {hardware}")
        agent = Agent(config, docker_, http, identity, hardware, gpus, images, logs, image_cache)
        events.attach(agent)
        try:
            await agent.run()
        except Unregistered:
            # Removed by its owner or an admin: registering again would undo that, so the agent stops.
            raise Unregistered(
                f"the API does not know executor {identity.hwid} any more: it was removed (`megamind executors "
                f"rm`), or the API's database is not the one it registered with; to offer this host again, "
                f"delete {config.state_dir / IDENTITY_FILE} and start the agent again") from None
        finally:
            events.detach(agent)


def _docker_threads(config: AgentConfig) -> int:
    if config.slots == 1:
        return config.docker_threads
    return max(config.docker_threads, min(config.slots, MAX_DOCKER_THREADS))


async def run_executor(config: AgentConfig, announce: Callable[[str], None] = print) -> None:
    """Run the agent (every slot) until cancelled; containers outlive it, to be re-adopted."""
    if config.slots < 1:
        raise ValueError(f"slots must be at least 1, got {config.slots}")
    threads = _docker_threads(config)
    # The SDK's connection pool matches the threads, so no connection is opened per call.
    runtime = DockerRuntime(docker.from_env(version="auto", timeout=60, max_pool_size=threads))
    docker_ = AsyncDocker(runtime, threads)
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10)
    events = EngineEvents(runtime, asyncio.get_running_loop())
    logs = EngineLogs(runtime.api.api_version)  # shared: every slot's followers on one connection pool
    try:
        network = await prepare_engine(docker_, config)
        announce(f"task network: {network}")
        async with aiohttp.ClientSession(timeout=timeout) as http:
            configs = slot_configs(config)
            identities = [await _identity(http, slot) for slot in configs]
            hardware, gpus = await probe_hardware(
                http,
                config.api_url.rstrip("/") + SPEEDTEST_PATH,
                {TOKEN_HEADER: identities[0].token},
            )
            shares = slot_hardware(hardware, gpus, config.slots, config.memory_mb, config.cpus)
            configs = [with_memory_share(slot, share_hw) for slot, (share_hw, _) in zip(configs, shares)]
            events.start()
            images = ImageFetcher(docker_, http)  # shared: a burst of one image asks once
            image_cache = None
            if config.image_cache_gb is not None:
                config.state_dir.mkdir(parents=True, exist_ok=True)
                image_cache = ImageCache(docker_, config.state_dir, config.image_cache_gb, config.image_prune_s)
                image_cache.hwids.update(identity.hwid for identity in identities)
            slots = [
                asyncio.create_task(
                    _serve_slot(slot, docker_, http, identity, share_hw, share_gpus, events, images, logs,
                                image_cache, announce),
                    name=f"slot-{i}",
                )
                for i, (slot, identity, (share_hw, share_gpus)) in enumerate(zip(configs, identities, shares))
            ]
            if image_cache is not None:
                slots.append(asyncio.create_task(image_cache.run(), name="image-cache"))
            try:
                await asyncio.gather(*slots)
            finally:
                for task in slots:
                    task.cancel()
                await asyncio.gather(*slots, return_exceptions=True)
    finally:
        events.stop()
        await logs.close()
        docker_.close()


def slot_state_dirs(state_dir: Path, slots: int) -> list[Path]:
    """Where each slot keeps its identity (for tools and tests)."""
    return [c.state_dir for c in slot_configs(AgentConfig(state_dir=state_dir, slots=slots))]
