"""Burst: 50 tasks at once on the 50 slots of one agent, against 50 parallel SDK starts.

The figure is the makespan: from the first request until the last task is seen
running (Megamind) or the last container is running (SDK).  The per-task latencies
go to the plot.
"""

from __future__ import annotations

import asyncio
import time

from bench.client import Customer
from bench.engine import BURST_SLOTS, TASK_SCRIPT, EnginePlatform
from bench.stats import Row, Summary, ratio

TARGET = 1.10


async def megamind_burst(platform: EnginePlatform, customer: Customer, hwids: list[str]) -> tuple[list[float], float, list[str]]:
    started = time.perf_counter()
    taskids = list(await asyncio.gather(*(customer.addtask(h, TASK_SCRIPT) for h in hwids)))
    seen = await customer.wait_running(taskids, started)
    makespan = max(seen.values())
    return list(seen.values()), makespan, taskids


async def megamind_clear(platform: EnginePlatform, customer: Customer, hwids: list[str], taskids: list[str]) -> None:
    await asyncio.gather(*(customer.deltask(t) for t in taskids))
    await customer.wait_free(hwids, timeout=120)
    await platform.wait_containers_gone(taskids, timeout=120)


async def _megamind_round(platform, customer, hwids) -> tuple[list[float], float]:
    latencies, makespan, taskids = await megamind_burst(platform, customer, hwids)
    await megamind_clear(platform, customer, hwids, taskids)
    return latencies, makespan


async def _sdk_round(platform: EnginePlatform) -> tuple[list[float], float]:
    latencies, makespan, ids = await asyncio.to_thread(platform.sdk_burst, BURST_SLOTS)
    await asyncio.to_thread(platform.sdk_remove, ids)
    return latencies, makespan


async def run(platform: EnginePlatform, quick: bool) -> tuple[list[Row], list]:
    rounds = 2 if quick else 6
    hwids = platform.agent50.hwids
    ours, base, ours_each, base_each = [], [], [], []
    async with Customer(platform.server.url, platform.key) as customer:
        await customer.wait_free(hwids)
        for n in range(rounds):
            sides = [("m", lambda: _megamind_round(platform, customer, hwids)), ("s", lambda: _sdk_round(platform))]
            if n % 2:
                sides.reverse()
            for side, go in sides:
                each, makespan = await go()
                (ours if side == "m" else base).append(makespan * 1000)
                (ours_each if side == "m" else base_each).extend(s * 1000 for s in each)
    ours_s, base_s = Summary(ours, "ms"), Summary(base, "ms")
    r = ratio(ours_s.median, base_s.median)
    row = Row("burst", f"{BURST_SLOTS} tasks on {BURST_SLOTS} slots, all running (makespan)", ours_s, base_s, r,
              f"ratio <= {TARGET}", r <= TARGET)
    series = [(f"burst: per-task time to running ({BURST_SLOTS} at once)", "ms",
               {"megamind": ours_each, "docker SDK": base_each})]
    return [row], series
