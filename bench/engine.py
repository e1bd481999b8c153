"""The platform on the real engine for the engine benchmarks, and the bare-SDK side.

One registry, one `megamind server`, a default agent (one slot) for launch and logs,
and an agent offering the host as 50 slots for the burst and footprint benchmarks.
The SDK side creates containers with exactly the options the agent gives a task
(`megamind.executor.spec.create_kwargs`): the same image, network `none`, init,
dropped capabilities, log limits; only the labels differ.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import docker

from bench.procs import (
    BENCH_LABEL,
    Agent,
    Registry,
    Server,
    bench_server,
    free_port,
    push_bench_image,
    remove_containers,
)
from megamind.executor.spec import LABEL_TASK, Limits, create_kwargs

BURST_SLOTS = 50
TASK_SCRIPT = "sleep 3600"


@dataclass
class EnginePlatform:
    workdir: Path
    run_id: str
    registry: Registry | None = None
    server: Server | None = None
    agent1: Agent | None = None
    agent50: Agent | None = None
    image: str = ""  # the pull reference on the local registry
    key: str = ""
    client: docker.DockerClient = field(default_factory=lambda: docker.from_env(version="auto", timeout=120))

    def start(self) -> None:
        # Token auth on, as everywhere: the server is the registry's token server, and the
        # account that runs the benchmark's tasks pushed (so owns) the image.
        auth = self.workdir / "registry" / "auth"
        self.registry = Registry(self.workdir / "registry" / "storage", f"http://127.0.0.1:{free_port()}", auth)
        self.registry.start()
        self.server = bench_server(self.workdir / "engine-api" / "megamind.db", self.registry.address,
                                   registry_auth_dir=auth, port=self.registry.api_port)
        self.server.start()
        self.key = self.server.create_account("bench")
        self.image = push_bench_image(self.registry, self.workdir, ("bench", self.key))
        owner = self.server.create_account("owner")
        self.agent1 = Agent(self.server.url, owner, self.workdir / "agent1", self.run_id, slots=1)
        self.agent50 = Agent(self.server.url, owner, self.workdir / "agent50", self.run_id, slots=BURST_SLOTS)
        self.agent1.start()
        self.agent50.start()
        self.agent1.wait_connected()
        self.agent50.wait_connected()

    def stop(self) -> None:
        for proc in (self.agent1, self.agent50, self.server, self.registry):
            if proc is not None:
                proc.stop()
        remove_containers(self.client, self.run_id)
        self.client.close()

    # --- the SDK side -------------------------------------------------------------------

    def sdk_kwargs(self) -> dict:
        name = f"bench-{uuid.uuid4().hex[:16]}"
        kwargs = create_kwargs(
            taskid=name, hwid="sdk", image=self.image, public_image=self.image, params=TASK_SCRIPT,
            limits=Limits(network="none"), gpus=[], extra_labels={},
        )
        kwargs["labels"] = {BENCH_LABEL: self.run_id}
        return kwargs

    def sdk_run(self) -> tuple[str, float]:
        """`docker run -d` through the SDK, then inspect until running: (id, seconds)."""
        kwargs = self.sdk_kwargs()
        started = time.perf_counter()
        container = self.client.containers.run(**kwargs)
        while container.status != "running":
            container.reload()
            if container.status in ("exited", "dead"):
                raise RuntimeError(f"baseline container {container.id[:12]} {container.status}")
        return container.id, time.perf_counter() - started

    def sdk_remove(self, ids: list[str]) -> None:
        def remove(cid: str) -> None:
            try:
                self.client.api.remove_container(cid, force=True)
            except docker.errors.NotFound:
                pass

        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(remove, ids))

    def sdk_burst(self, count: int) -> tuple[list[float], float, list[str]]:
        """``count`` parallel SDK starts: per-container seconds, the makespan, the ids."""
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
            results = list(pool.map(lambda _: self.sdk_run(), range(count)))
        makespan = time.perf_counter() - started
        return [s for _, s in results], makespan, [cid for cid, _ in results]

    # --- the Megamind side ----------------------------------------------------------------

    def task_containers(self, taskids: list[str]) -> int:
        wanted = set(taskids)
        listed = self.client.api.containers(all=True, filters={"label": f"{BENCH_LABEL}={self.run_id}"})
        return sum(1 for c in listed if (c.get("Labels") or {}).get(LABEL_TASK) in wanted)

    async def wait_containers_gone(self, taskids: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while await asyncio.to_thread(self.task_containers, taskids):
            if time.monotonic() > deadline:
                raise RuntimeError(f"task containers still there after {timeout}s")
            await asyncio.sleep(0.1)
