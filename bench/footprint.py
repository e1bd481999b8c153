"""Agent footprint: RSS of the agent offering 50 slots, with 50 tasks running on it.

The baseline is the same agent idle (no task), measured just before.  The agent's
CPU use while it watches 50 running tasks is noted too.
"""

from __future__ import annotations

import asyncio

from bench.burst import megamind_burst, megamind_clear
from bench.client import Customer
from bench.engine import EnginePlatform
from bench.procs import cpu_seconds, rss_mb
from bench.stats import Row, Summary, ratio

TARGET_MB = 80.0


async def _sample_rss(pid: int, count: int, every: float) -> list[float]:
    out = []
    for _ in range(count):
        out.append(rss_mb(pid))
        await asyncio.sleep(every)
    return out


async def run(platform: EnginePlatform, quick: bool) -> tuple[list[Row], list]:
    agent = platform.agent50
    pid = agent.proc.pid
    hwids = agent.hwids
    samples = 5 if quick else 15
    async with Customer(platform.server.url, platform.key) as customer:
        await customer.wait_free(hwids)
        idle = await _sample_rss(pid, samples, 0.2)
        _, _, taskids = await megamind_burst(platform, customer, hwids)
        await asyncio.sleep(2.0)  # log polling of 50 running tasks under way
        cpu_before = cpu_seconds(pid)
        busy = await _sample_rss(pid, samples * 2, 0.25)
        cpu_share = (cpu_seconds(pid) - cpu_before) / (samples * 2 * 0.25)
        peak = rss_mb(pid, "VmHWM")
        await megamind_clear(platform, customer, hwids, taskids)
    busy_s, idle_s = Summary(busy, "MB"), Summary(idle, "MB")
    row = Row("footprint", f"agent RSS, {len(hwids)} slots, {len(taskids)} tasks running (vs idle)", busy_s, idle_s,
              ratio(busy_s.median, idle_s.median), f"<= {TARGET_MB:g} MB", busy_s.median <= TARGET_MB,
              [f"agent peak RSS (VmHWM) {peak:.1f} MB; agent CPU with 50 running tasks: "
               f"{cpu_share * 100:.0f}% of one core"])
    return [row], []
