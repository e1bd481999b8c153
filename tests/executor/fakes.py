"""A fake engine facade, image fetcher and log source for the agent's rooms.

They keep containers as plain records and answer as `AsyncDocker` does, so the
runner, the watcher and the shipper can be tested without an engine.  The real
engine is exercised by tests/e2e and tests/executor/test_follow.py.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from docker.errors import APIError

from megamind.executor.follow import ContainerGone, LogsRead
from megamind.executor.runtime import ContainerInfo, Created, PullError
from megamind.jobspec import PortMapping
from megamind.protocol import LogCursor, LogEntry, Stream


def engine_stamp(unix_s: float) -> str:
    """A Unix time as the engine writes it (RFC 3339, nanoseconds, UTC)."""
    seconds, ns = divmod(round(unix_s * 1e9), 1_000_000_000)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{ns:09d}Z"


@dataclass
class FakeContainer:
    id: str
    taskid: str
    image_id: str
    status: str = "created"
    exit_code: int | None = None
    finished_at: str = ""
    runs: int = 0
    inputs: list[tuple[str, bytes]] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)  # as the runner created it
    started_at: str = ""
    oom_killed: bool = False
    ports: tuple[PortMapping, ...] = ()


class FakeDocker:
    def __init__(self, hwid: str = "hw") -> None:
        self.hwid = hwid
        self.containers_by_id: dict[str, FakeContainer] = {}
        self.remove_failures = 0  # the next N removes fail as the engine would
        self.removes = 0
        self._ids = itertools.count(1)
        self.image_id = "sha256:image"
        self.clock = time.time  # the engine's wall clock, for start and finish times
        self.stops = 0
        self.start_error: Exception | None = None  # the next start raises it
        self.next_host_port = 32768

    def by_task(self, taskid: str) -> FakeContainer | None:
        return next((c for c in self.containers_by_id.values() if c.taskid == taskid), None)

    def _find(self, ref: str) -> FakeContainer | None:
        if ref in self.containers_by_id:
            return self.containers_by_id[ref]
        return self.by_task(ref.removeprefix("megamind-"))

    async def create(self, kwargs) -> Created:
        taskid = kwargs["labels"]["network.megamind.task"]
        existing = self.by_task(taskid)
        if existing is not None:
            return Created(existing.id, existing.image_id)
        container = FakeContainer(f"c{next(self._ids)}", taskid, self.image_id, kwargs=dict(kwargs))
        self.containers_by_id[container.id] = container
        return Created(container.id, container.image_id)

    async def start(self, container_id: str) -> None:
        if self.start_error is not None:
            error, self.start_error = self.start_error, None
            raise error
        container = self.containers_by_id[container_id]
        container.status, container.runs = "running", container.runs + 1
        container.started_at, container.finished_at, container.oom_killed = engine_stamp(self.clock()), "", False
        # In order of container port, as the runtime reads them from the engine.
        container.ports = tuple(sorted(self._publish(container.kwargs.get("ports") or {}), key=lambda m: m.container))

    def _publish(self, ports: dict[str, tuple[str, int | None]]):
        for key, (_, host) in ports.items():
            if host is None:
                host, self.next_host_port = self.next_host_port, self.next_host_port + 1
            yield PortMapping(int(key.partition("/")[0]), host)

    async def restart(self, container_id: str, timeout: int) -> None:
        await self.start(container_id)

    async def stop(self, container_id: str, timeout: int) -> None:
        self.stops += 1
        container = self._find(container_id)
        if container is not None and container.status == "running":
            self.exit(container.taskid, 137)

    def exit(self, taskid: str, code: int, oom_killed: bool = False) -> None:
        container = self.by_task(taskid)
        container.status, container.exit_code, container.oom_killed = "exited", code, oom_killed
        container.finished_at, container.ports = engine_stamp(self.clock()), ()

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        container = self._find(container_id)
        if container is None:
            return None
        return ContainerInfo(container.taskid, container.id, container.status, container.exit_code,
                             container.finished_at, container.started_at, container.oom_killed,
                             dict(container.kwargs.get("labels") or {}), container.ports)

    async def remove(self, container_id: str) -> None:
        self.removes += 1
        if self.remove_failures:
            self.remove_failures -= 1
            raise APIError("device or resource busy")
        container = self._find(container_id)
        if container is not None:
            del self.containers_by_id[container.id]

    async def containers(self, hwid: str) -> list[ContainerInfo]:
        return [await self.inspect(c.id) for c in list(self.containers_by_id.values())]

    async def put_inputs(self, container_id: str, files: list[tuple[str, Path]]) -> None:
        self.containers_by_id[container_id].inputs = [(name, path.read_bytes()) for name, path in files]

    async def results_archive(self, container_id: str, dest: Path, limit_bytes: int):
        return None  # no /megamind/output in these containers


class FakeImages:
    def __init__(self, docker: FakeDocker) -> None:
        self.docker = docker
        self.error: str | None = None
        self.tokens: list[str] = []  # the pull token of each fetch

    async def fetch(self, image: str, token: str = "", shown_as: str = "") -> str:
        self.tokens.append(token)
        if self.error:
            raise PullError(self.error)
        return self.docker.image_id


class FakeLogs:
    """Each container's lines; a follow gives those after the cursor, and ends when the
    container is not running (as the engine's stream does)."""

    CHUNK_LINES = 2_000
    follow_ends_early = False  # a follow of a stopped container gives only its first chunk

    def __init__(self, docker: FakeDocker) -> None:
        self.docker = docker
        self.lines: dict[str, list[LogEntry]] = {}
        self.follows = 0
        self._clock = itertools.count(1_000)

    def print(self, taskid: str, *texts: str, stream: Stream = Stream.STDOUT) -> None:
        container = self.docker.by_task(taskid)
        self.lines.setdefault(container.id, []).extend(LogEntry(stream, next(self._clock), t) for t in texts)

    async def follow(self, container_id: str, cursor: LogCursor, *, follow: bool = True):
        self.follows += 1
        if container_id not in self.docker.containers_by_id:
            raise ContainerGone(container_id)
        sent = 0
        while True:
            container = self.docker.containers_by_id.get(container_id)
            # Looked at before the read, so a follow gets the last lines; a plain read ends at once.
            stopped = not follow or container is None or container.status != "running"
            lines = self.lines.get(container_id, [])
            fresh = [e for e in lines[sent:] if not cursor.of(e.stream).has_read(e.ns, 1)]
            sent = len(lines)
            for start in range(0, len(fresh), self.CHUNK_LINES):  # as the engine's stream comes: in chunks
                chunk = fresh[start:start + self.CHUNK_LINES]
                for entry in chunk:
                    cursor = cursor.advanced(entry.stream, entry.ns)
                yield LogsRead(tuple(chunk), cursor)
                if follow and stopped and self.follow_ends_early:
                    return
            if stopped:
                return
            await asyncio.sleep(0.005)
