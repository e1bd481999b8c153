"""A task's output read as it comes, two ways side by side, and what the reads are worth.

`HttpFollower` reads Megamind's ``GET /api/v1/task/{id}/logs?follow=1``; `DockerFollower`
runs ``docker logs -f --timestamps`` on the task's container, the engine's own answer.
Both note, for every line, the wall-clock time (``time.time_ns()``) its bytes reached
this process; the docker side also keeps the engine's timestamp of the line (the moment
the engine read it from the container's pipe), which is the reference both sides'
latencies are measured from.  Engine, API, agent and this process share one host clock.

The pure helpers below (sequence checks, rates, latencies) are unit-tested in
tests/bench/test_streams.py.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import NamedTuple

import aiohttp
import docker

from megamind.client.follow import LineSplitter
from megamind.executor.follow import parse_timestamp_ns
from megamind.executor.spec import container_name

# --- pure helpers ---------------------------------------------------------------------


class SequenceCheck(NamedTuple):
    """What a read of the lines "0", "1", ... "count-1" got, against what was printed."""

    lines: int  # lines read
    lost: int  # numbers never read
    duplicated: int  # reads of a number beyond its first
    out_of_order: int  # first reads of a number lower than one read before it
    foreign: int  # lines that are no number of the sequence (an agent's dropped-lines marker...)

    @property
    def exact(self) -> bool:
        return self.lost == self.duplicated == self.out_of_order == self.foreign == 0

    def text(self) -> str:
        return (f"{self.lines:,} lines read: {self.lost} lost, {self.duplicated} duplicated, "
                f"{self.out_of_order} out of order, {self.foreign} foreign")


def check_sequence(texts: list[str], count: int, first: int = 0) -> SequenceCheck:
    """Compare lines read with the ``count`` numbered lines a task printed
    (``seq FIRST FIRST+COUNT-1``: one number a line)."""
    times = [0] * count
    foreign = out_of_order = 0
    highest = -1
    for text in texts:
        if not text.isdigit() or not text.isascii():
            foreign += 1
            continue
        n = int(text) - first
        if not 0 <= n < count:
            foreign += 1
            continue
        times[n] += 1
        if times[n] == 1:
            if n < highest:
                out_of_order += 1
            highest = max(highest, n)
    lost = times.count(0)
    duplicated = sum(t - 1 for t in times if t > 1)
    return SequenceCheck(len(texts), lost, duplicated, out_of_order, foreign)


def lines_per_second(at_ns: list[int]) -> float | None:
    """Lines a reader got per second, from its first line to its last (None: fewer than two)."""
    if len(at_ns) < 2 or at_ns[-1] <= at_ns[0]:
        return None
    return (len(at_ns) - 1) / ((at_ns[-1] - at_ns[0]) / 1e9)


def longest_pause_ms(at_ns: list[int]) -> float:
    """The longest wait between two lines' arrivals (0 with fewer than two)."""
    return max((b - a for a, b in zip(at_ns, at_ns[1:])), default=0) / 1e6


def first_arrivals(texts: list[str], at_ns: list[int]) -> dict[str, int]:
    """Each distinct line's first arrival time."""
    out: dict[str, int] = {}
    for text, at in zip(texts, at_ns):
        out.setdefault(text, at)
    return out


def latencies_ms(stamped_ns: dict[str, int], arrived_ns: dict[str, int]) -> list[float]:
    """Arrival minus the engine's stamp, in ms, for every line both know, in stamp order."""
    keys = sorted((k for k in stamped_ns if k in arrived_ns), key=stamped_ns.__getitem__)
    return [(arrived_ns[k] - stamped_ns[k]) / 1e6 for k in keys]


def parse_docker_line(line: str) -> tuple[int, str]:
    """A ``docker logs --timestamps`` line: (the engine's stamp in ns, the text)."""
    stamp, _, text = line.partition(" ")
    return parse_timestamp_ns(stamp), text


# --- readers ----------------------------------------------------------------------------


@dataclass
class Reader:
    texts: list[str] = field(default_factory=list)
    at_ns: list[int] = field(default_factory=list)

    def _take(self, lines: list[str], now: int) -> None:
        self.texts.extend(lines)
        self.at_ns.extend([now] * len(lines))


@dataclass
class HttpFollower(Reader):
    """``GET .../logs?follow=1`` on one connection, to its end (the task ended, all sent)."""

    status: int = 0

    async def run(self, http: aiohttp.ClientSession, url: str, timeout: float) -> None:
        splitter = LineSplitter()
        async with http.get(url, params={"follow": "1"},
                            timeout=aiohttp.ClientTimeout(total=timeout)) as response:
            self.status = response.status
            if response.status != 200:
                raise RuntimeError(f"follow {url}: {response.status} {(await response.read())[:200]!r}")
            async for chunk in response.content.iter_any():
                self._take(splitter.feed(chunk), time.time_ns())
        self._take(splitter.end(), time.time_ns())


@dataclass
class DockerFollower(Reader):
    """``docker logs -f --timestamps NAME``: until the container stops (stdout lines only)."""

    stamped_ns: list[int] = field(default_factory=list)
    spawned_ns: int = 0

    async def run(self, name: str, timeout: float) -> None:
        self.spawned_ns = time.time_ns()
        proc = await asyncio.create_subprocess_exec(
            "docker", "logs", "-f", "--timestamps", name,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )
        splitter = LineSplitter()
        try:
            async with asyncio.timeout(timeout):
                while chunk := await proc.stdout.read(256 * 1024):
                    self._take_stamped(splitter.feed(chunk), time.time_ns())
                self._take_stamped(splitter.end(), time.time_ns())
                await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    def _take_stamped(self, lines: list[str], now: int) -> None:
        for line in lines:
            ns, text = parse_docker_line(line)
            self.stamped_ns.append(ns)
            self.texts.append(text)
            self.at_ns.append(now)


async def wait_container_running(client: docker.DockerClient, taskid: str, timeout: float = 60.0) -> None:
    """Until the task's container exists and runs (the agent makes it after addtask)."""
    deadline = time.monotonic() + timeout
    name = container_name(taskid)
    while True:
        try:
            info = await asyncio.to_thread(client.api.inspect_container, name)
            if info["State"]["Running"] or info["State"]["Status"] == "exited":
                return
        except docker.errors.NotFound:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"container of {taskid} not running after {timeout}s")
        await asyncio.sleep(0.01)


@dataclass
class Pair:
    """Both readers of one task, started as close together as the engine allows."""

    megamind: HttpFollower
    docker: DockerFollower


async def follow_both(client: docker.DockerClient, http: aiohttp.ClientSession, api_base: str, taskid: str,
                      timeout: float) -> Pair:
    """Follow the task through the API (from right after addtask) and through `docker logs -f`
    (from the moment its container runs) until both reads end."""
    pair = Pair(HttpFollower(), DockerFollower())
    ours = asyncio.create_task(pair.megamind.run(http, f"{api_base}/task/{taskid}/logs", timeout))
    try:
        await wait_container_running(client, taskid)
        await pair.docker.run(container_name(taskid), timeout)
        await ours
    finally:
        if not ours.done():
            ours.cancel()
    return pair
