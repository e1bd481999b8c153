"""The placement benchmark's customers: concurrent clients submitting tasks, and waiting
on what the simulated executors saw (`bench/simevents.py`)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.hardwaremix import limits_met_by, requirements_met_by
from bench.simevents import EventLog

IMAGE = "megamind.network/benchbox:latest"
PRIORITIES = (30, 50, 70)
POLL_S = 0.05


def task_bodies(items: list[dict[str, Any]], count: int, rng: random.Random,
                run_s: tuple[float, float]) -> list[dict[str, Any]]:
    """addtask bodies without hwid: each asks what one listed executor meets, and runs briefly."""
    bodies = []
    for _ in range(count):
        item = rng.choice(items)
        body = {"image": IMAGE, "params": f"sim-run={rng.uniform(*run_s):.3f}",
                "requirements": requirements_met_by(item, rng), "priority": rng.choice(PRIORITIES)}
        limits = limits_met_by(item, rng)
        if limits:
            body["limits"] = limits
        bodies.append(body)
    return bodies


# A start this long after the addtask answer: the task waited for a fitting executor to free
# up (one placed at once is sent its start before the answer is written).
WAITED_S = 0.05


def placement_rate(sent: dict[str, float], starts: dict[str, float]) -> float:
    """Tasks placed a second: from the first submission to the last start an executor got."""
    return len(sent) / max(max(starts[t] for t in sent) - min(sent.values()), 1e-9)


def waited(answered: dict[str, float], starts: dict[str, float]) -> list[str]:
    """The tasks that were queued at submission rather than placed at once."""
    return [t for t, at in answered.items() if starts[t] - at > WAITED_S]


@dataclass
class Submitted:
    sent: dict[str, float] = field(default_factory=dict)  # taskid -> wall time its addtask was sent
    answered: dict[str, float] = field(default_factory=dict)  # ... and when the answer came
    answer_ms: list[float] = field(default_factory=list)
    refused: Counter = field(default_factory=Counter)  # "status: message" -> times
    busy: int = 0  # pinned: 409, the executor still held by the previous task


class Api:
    """One customer's keep-alive session; at most `connections` requests at once."""

    def __init__(self, base: str, key: str, connections: int) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.http = aiohttp.ClientSession(headers={"api-key": key},
                                          connector=aiohttp.TCPConnector(limit=connections),
                                          timeout=aiohttp.ClientTimeout(total=300))

    async def close(self) -> None:
        await self.http.close()

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def get(self, path: str) -> Any:
        status, data = await self.call("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status} {data}")
        return data

    async def executors(self, status: str = "any") -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self.get(f"/hardware?status={status}&limit=1000&offset={len(items)}")
            items += page["executors"]
            if len(items) >= page["total"] or not page["executors"]:
                return items

    async def count(self, status: str) -> int:
        return (await self.get(f"/hardware?status={status}&limit=1"))["total"]

    async def addtask(self, body: dict[str, Any], into: Submitted) -> int:
        sent, started = time.time(), time.perf_counter()
        status, data = await self.call("POST", "/addtask", body)
        if status == 200:
            into.answer_ms.append((time.perf_counter() - started) * 1000)
            into.sent[data["taskid"]] = sent
            into.answered[data["taskid"]] = time.time()
        elif status != 409 or "hwid" not in body:
            into.refused[f"{status}: {data.get('message', data) if isinstance(data, dict) else data}"] += 1
        return status


async def submit_all(api: Api, bodies: Iterable[dict[str, Any]], clients: int) -> Submitted:
    """Each client sends the next body as soon as its previous one is answered."""
    out = Submitted()
    queue: Iterator[dict[str, Any]] = iter(bodies)

    async def client() -> None:
        for body in queue:  # shared: the clients take turns on one sequence
            await api.addtask(body, out)

    await asyncio.gather(*(client() for _ in range(clients)))
    return out


async def submit_pinned(api: Api, hwids: list[str], runs: list[float], clients: int) -> Submitted:
    """The baseline: the same count of tasks, each pinned with hwid to an executor of the
    client's own share, taken in turn; a busy one (409) is skipped for the next."""
    out = Submitted()
    queue = iter(runs)

    async def client(mine: list[str]) -> None:
        turn = 0
        for run in queue:
            while True:
                hwid = mine[turn % len(mine)]
                turn += 1
                status = await api.addtask({"image": IMAGE, "params": f"sim-run={run:.3f}", "hwid": hwid}, out)
                if status != 409:
                    break
                out.busy += 1
                if turn % len(mine) == 0:
                    await asyncio.sleep(0.01)  # all of this client's executors busy: let one finish

    await asyncio.gather(*(client(hwids[n::clients]) for n in range(min(clients, len(hwids)))))
    return out


async def cancel_all(api: Api, taskids: list[str], clients: int) -> None:
    queue = iter(taskids)

    async def client() -> None:
        for taskid in queue:
            status, data = await api.call("POST", f"/task/{taskid}/cancel")
            if status != 200:
                raise RuntimeError(f"cancel {taskid}: {status} {data}")

    await asyncio.gather(*(client() for _ in range(clients)))


async def timed_one_by_one(api: Api, bodies: list[dict[str, Any]]) -> Submitted:
    """One client, each addtask sent when the previous one is answered: the call's own cost."""
    out = Submitted()
    for body in bodies:
        await api.addtask(body, out)
    return out


async def wait_seen(log: EventLog, taskids: Iterable[str], what: str, timeout_s: float) -> None:
    """Until the simulated executors got every task's start (``what="starts"``) or ended it ("stops")."""
    wanted = list(taskids)
    deadline = time.monotonic() + timeout_s
    while True:
        log.read()
        seen = getattr(log, what)
        missing = sum(1 for t in wanted if t not in seen)
        if not missing:
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{missing} of {len(wanted)} tasks: no {what[:-1]} seen in {timeout_s:.0f} s")
        await asyncio.sleep(POLL_S)


async def timed_get(api: Api, path: str) -> float:
    """Seconds one GET took."""
    started = time.perf_counter()
    await api.get(path)
    return time.perf_counter() - started


async def wait_count(api: Api, status: str, count: int, timeout_s: float) -> None:
    """Until the API lists exactly ``count`` executors in ``status`` (free, busy)."""
    deadline = time.monotonic() + timeout_s
    while (now := await api.count(status)) != count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{now} executors {status}, expected {count}, after {timeout_s:.0f} s")
        await asyncio.sleep(POLL_S * 4)
