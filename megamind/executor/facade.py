"""An async face on the blocking runtime: one thread hop per operation, bounded.

A pull or an image lookup of a reference already under way is joined rather than
repeated (``joined.InFlight``): a burst of starts of one image (many slots, many tasks)
asks the engine and the registry once.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from megamind.executor import diskquota, network
from megamind.executor.joined import InFlight
from megamind.executor.runtime import (
    ContainerInfo,
    Created,
    DockerRuntime,
    EngineContainer,
    EngineImage,
    LocalImage,
)
from megamind.executor.transfer import ResultsArchive

T = TypeVar("T")


class AsyncDocker:
    def __init__(self, runtime: DockerRuntime, threads: int) -> None:
        self.runtime = runtime
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="docker")
        self._in_flight = InFlight()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args))

    async def ping(self) -> bool:
        return await self._run(self.runtime.ping)

    async def pull(self, reference: str, token: str = "") -> str:
        """Pull with the task's registry token; only pulls with the same token are joined, so
        one task's grant never fetches another's image."""
        return await self._in_flight.join(
            ("pull", reference, token), lambda: self._run(self.runtime.pull, reference, token)
        )

    async def local_image(self, reference: str) -> LocalImage | None:
        return await self._in_flight.join(
            ("image", reference), lambda: self._run(self.runtime.local_image, reference)
        )

    async def create(self, kwargs: dict[str, Any]) -> Created:
        return await self._run(self.runtime.create, kwargs)

    async def start(self, container_id: str) -> None:
        await self._run(self.runtime.start, container_id)

    async def stop(self, container_id: str, timeout: int) -> None:
        await self._run(self.runtime.stop, container_id, timeout)

    async def restart(self, container_id: str, timeout: int) -> None:
        await self._run(self.runtime.restart, container_id, timeout)

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        return await self._run(self.runtime.inspect, container_id)

    async def remove(self, container_id: str) -> None:
        await self._run(self.runtime.remove, container_id)

    async def containers(self, hwid: str) -> list[ContainerInfo]:
        return await self._run(self.runtime.containers, hwid)

    async def results_archive(self, container_id: str, dest: Path, limit_bytes: int) -> ResultsArchive | None:
        return await self._run(self.runtime.results_archive, container_id, dest, limit_bytes)

    async def put_inputs(self, container_id: str, files: list[tuple[str, Path]]) -> None:
        await self._run(self.runtime.put_inputs, container_id, files)

    async def all_containers(self) -> list[EngineContainer]:
        return await self._run(self.runtime.all_containers)

    async def images(self) -> list[EngineImage]:
        return await self._run(self.runtime.images)

    async def remove_image(self, reference: str) -> bool:
        return await self._run(self.runtime.remove_image, reference)

    async def prepare_network(self, mode: str) -> str:
        return await self._run(network.prepare, self.runtime, mode)

    async def disk_quota_refusal(self, gb: int, labels: dict[str, str]) -> str | None:
        return await self._run(diskquota.refusal, self.runtime, gb, labels)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.runtime.close()
