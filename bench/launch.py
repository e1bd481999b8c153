"""Launch: `addtask` until a customer sees state 3, against `docker run -d` through the SDK.

Rounds alternate the side that goes first.  Each Megamind round deletes its task and
waits until the executor is free and the container gone; each SDK round removes its
container, so every round starts from the same engine.
"""

from __future__ import annotations

import asyncio
import time

from bench.client import Customer
from bench.engine import TASK_SCRIPT, EnginePlatform
from bench.stats import Row, Summary, ratio

TARGET = 1.15


async def _megamind_once(platform: EnginePlatform, customer: Customer, hwid: str) -> float:
    started = time.perf_counter()
    taskid = await customer.addtask(hwid, TASK_SCRIPT)
    seen = await customer.wait_running([taskid], started)
    await customer.deltask(taskid)
    await customer.wait_free([hwid])
    await platform.wait_containers_gone([taskid])
    return seen[taskid]


async def _sdk_once(platform: EnginePlatform) -> float:
    cid, seconds = await asyncio.to_thread(platform.sdk_run)
    await asyncio.to_thread(platform.sdk_remove, [cid])
    return seconds


async def run(platform: EnginePlatform, quick: bool) -> tuple[list[Row], list]:
    rounds = 8 if quick else 30
    (hwid,) = platform.agent1.hwids
    ours: list[float] = []
    base: list[float] = []
    async with Customer(platform.server.url, platform.key) as customer:
        await _megamind_once(platform, customer, hwid)  # warm-up: the first pull, caches
        await _sdk_once(platform)
        for n in range(rounds):
            if n % 2 == 0:
                ours.append(await _megamind_once(platform, customer, hwid))
                base.append(await _sdk_once(platform))
            else:
                base.append(await _sdk_once(platform))
                ours.append(await _megamind_once(platform, customer, hwid))
    ours_ms = Summary([s * 1000 for s in ours], "ms")
    base_ms = Summary([s * 1000 for s in base], "ms")
    r = ratio(ours_ms.median, base_ms.median)
    row = Row("launch", "addtask -> state 3 seen vs SDK run -d -> running", ours_ms, base_ms, r,
              f"ratio <= {TARGET}", r <= TARGET)
    series = [("launch: time to running", "ms", {"megamind": ours_ms.samples, "docker SDK": base_ms.samples})]
    return [row], series
