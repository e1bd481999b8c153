"""Logs: `gettasklogs` of a task that printed 2,000,000 lines, against one that printed 20.

Both tasks keep running (they sleep after printing).  Requests go one at a time on a
kept-alive connection, in alternating blocks, once each tail shows the last line.
The API keeps whole logs, so the big task's lines are all shipped and stored first;
how many it holds is read back (the logs call) and named in the metric: the engine's
json-file log rotates every 10 MB, and Docker 20.10's follow stream loses and repeats
lines across rotations, so the API holds fewer than were printed (see BENCHMARKS.md).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time

from bench.client import Customer
from bench.engine import EnginePlatform
from bench.stats import Row, Summary, ratio
from bench.streams import check_sequence

BIG, SMALL = 2_000_000, 20
TARGET_MS, TARGET_RATIO = 5.0, 1.2
BLOCK = 25


async def _wait_last_line(customer: Customer, taskid: str, last: str, timeout: float) -> float:
    started = time.monotonic()
    while True:
        body = json.loads(await customer.logs_raw(taskid))
        lines = base64.b64decode(body["logs_b64"]).decode().splitlines()
        if lines and lines[-1] == last:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"logs of {taskid} never reached {last!r}: {lines[-3:]}")
        await asyncio.sleep(0.2)


async def _timed(customer: Customer, taskid: str, count: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        await customer.logs_raw(taskid)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def run(platform: EnginePlatform, quick: bool) -> tuple[list[Row], list]:
    rounds = 8 if quick else 40
    hw_big, hw_small = platform.agent50.hwids[:2]
    async with Customer(platform.server.url, platform.key) as customer:
        await customer.wait_free([hw_big, hw_small])
        big = await customer.addtask(hw_big, f"seq 1 {BIG}; sleep 3600")
        small = await customer.addtask(hw_small, f"seq 1 {SMALL}; sleep 3600")
        printed_in = await _wait_last_line(customer, big, str(BIG), timeout=300)
        await _wait_last_line(customer, small, str(SMALL), timeout=30)
        # The API keeps whole logs now: what it holds of the big one is what the calls below read past.
        held = check_sequence(await customer.log_lines(big), BIG, first=1)
        await _timed(customer, big, 10)  # warm-up
        await _timed(customer, small, 10)
        ours: list[float] = []
        base: list[float] = []
        for n in range(rounds):
            if n % 2 == 0:
                ours += await _timed(customer, big, BLOCK)
                base += await _timed(customer, small, BLOCK)
            else:
                base += await _timed(customer, small, BLOCK)
                ours += await _timed(customer, big, BLOCK)
        for taskid in (big, small):
            await customer.deltask(taskid)
        await customer.wait_free([hw_big, hw_small])
        await platform.wait_containers_gone([big, small])
    ours_s, base_s = Summary(ours, "ms"), Summary(base, "ms")
    r = ratio(ours_s.median, base_s.median)
    row = Row("logs", f"gettasklogs, {held.lines:,} lines stored ({BIG:,} printed) vs {SMALL}", ours_s, base_s, r,
              f"<= {TARGET_MS:g} ms, ratio <= {TARGET_RATIO}", ours_s.median <= TARGET_MS and r <= TARGET_RATIO,
              [f"logs: the {BIG:,}-line task's last line reached gettasklogs {printed_in:.1f} s after addtask; "
               f"the API's whole stdout of it (logs call): {held.text()}"])
    series = [("logs: gettasklogs latency", "ms", {f"{BIG:,} lines": ours, f"{SMALL} lines": base})]
    return [row], series
