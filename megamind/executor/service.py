"""Starting an agent: identity, hardware, engine, then the agent itself."""

from __future__ import annotations

import logging
from collections.abc import Callable

import aiohttp

from megamind.config import AgentConfig
from megamind.executor.agent import Agent, Unregistered
from megamind.executor.facade import AsyncDocker
from megamind.executor.hardware import probe_hardware
from megamind.executor.identity import Identity
from megamind.executor.runtime import DockerRuntime
from megamind.protocol import REGISTER_PATH, SPEEDTEST_PATH, TOKEN_HEADER

log = logging.getLogger(__name__)


class RegistrationFailed(Exception):
    pass


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


async def run_executor(config: AgentConfig, announce: Callable[[str], None] = print) -> None:
    """Run the agent until cancelled; containers outlive it, to be re-adopted."""
    runtime = DockerRuntime()
    docker = AsyncDocker(runtime, config.docker_threads)
    timeout = aiohttp.ClientTimeout(total=None, connect=10, sock_connect=10)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                identity = Identity.load(config.state_dir)
                if identity is None or identity.api_url != config.api_url:
                    identity = await register(http, config)
                hardware, gpus = await probe_hardware(
                    http,
                    config.api_url.rstrip("/") + SPEEDTEST_PATH,
                    {TOKEN_HEADER: identity.token},
                )
                announce(f"executor {identity.hwid}: {hardware.to_dict()}")
                agent = Agent(config, docker, http, identity, hardware.to_dict(), gpus)
                try:
                    await agent.run()
                except Unregistered:
                    log.warning("the API forgot executor %s; registering again", identity.hwid)
                    (config.state_dir / "identity.json").unlink(missing_ok=True)
    finally:
        docker.close()
