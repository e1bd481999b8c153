"""Agent CPU: the 50-slot agent following 50 tasks that each print 100 lines a second.

The baseline is the same agent with 50 tasks that print nothing (``sleep 3600``),
measured in the same run (rounds: quiet, busy, busy, quiet).  Each round starts its
50 tasks, lets them settle, then samples the agent's user + system CPU time from
/proc/<pid>/stat once a second over the window: the figures are % of one core per
second.  Lines delivered per second are read from the API (each task's whole stdout
through the logs call, at the window's start and end); every task's lines are
numbered, so a line lost on the way shows as a gap.
"""

from __future__ import annotations

import asyncio
import time

from bench.burst import megamind_clear
from bench.client import Customer
from bench.engine import TASK_SCRIPT, EnginePlatform
from bench.procs import CpuMeter, cpu_seconds, dockerd_pid
from bench.stats import Row, Summary
from bench.streams import check_sequence

# About 100 lines a second: ten numbered lines, then a tenth of a second's pause.
BUSY_SCRIPT = ('n=0; while :; do i=0; while [ $i -lt 10 ]; do echo $n; n=$((n+1)); i=$((i+1)); done; '
               'sleep 0.1; done')
TARGET_PERCENT = 25.0
MIN_LINES_S = 4000.0
SETTLE_S = 3.0


async def _start(customer: Customer, hwids: list[str], script: str) -> list[str]:
    started = time.perf_counter()
    taskids = list(await asyncio.gather(*(customer.addtask(h, script) for h in hwids)))
    await customer.wait_running(taskids, started)
    return taskids


async def _stored(customer: Customer, taskids: list[str]) -> tuple[float, list[list[str]]]:
    logs = await asyncio.gather(*(customer.log_lines(t) for t in taskids))
    return time.monotonic(), list(logs)


async def _window(pid: int, seconds: int) -> tuple[list[float], float]:
    """% of one core the process used in each second of the window, and the window's mean."""
    samples = []
    first_t, first_cpu = time.monotonic(), cpu_seconds(pid)
    last_t, last_cpu = first_t, first_cpu
    for _ in range(seconds):
        await asyncio.sleep(1.0)
        now, cpu = time.monotonic(), cpu_seconds(pid)
        samples.append((cpu - last_cpu) / (now - last_t) * 100)
        last_t, last_cpu = now, cpu
    return samples, (last_cpu - first_cpu) / (last_t - first_t) * 100


async def _round(platform: EnginePlatform, customer: Customer, busy: bool, seconds: int) -> dict:
    pid = platform.agent50.proc.pid
    hwids = platform.agent50.hwids
    taskids = await _start(customer, hwids, BUSY_SCRIPT if busy else TASK_SCRIPT)
    await asyncio.sleep(SETTLE_S)
    t0, before = await _stored(customer, taskids)
    engine = CpuMeter(dockerd_pid())
    samples, mean = await _window(pid, seconds)
    engine_share = engine.share()
    t1, after = await _stored(customer, taskids)
    delivered = (sum(map(len, after)) - sum(map(len, before))) / (t1 - t0)
    checks = [check_sequence(lines, int(lines[-1]) + 1) if lines and lines[-1].isdigit() else None for lines in after]
    await megamind_clear(platform, customer, hwids, taskids)
    return {"samples": samples, "mean": mean, "delivered": delivered,
            "engine": None if engine_share is None else engine_share * 100,
            "lost": sum(c.lost + c.duplicated + c.out_of_order + c.foreign for c in checks if c),
            "silent": sum(1 for c in checks if c is None)}


def _engine(runs: list[dict]) -> str:
    shares = [r["engine"] for r in runs if r["engine"] is not None]
    return f"{max(shares):.0f}%" if shares else "? (the engine restarted)"


async def run(platform: EnginePlatform, quick: bool) -> tuple[list[Row], list]:
    seconds = 10 if quick else 20
    plan = [False, True] if quick else [False, True, True, False]
    busy_runs, quiet_runs = [], []
    async with Customer(platform.server.url, platform.key) as customer:
        await customer.wait_free(platform.agent50.hwids)
        for busy in plan:
            (busy_runs if busy else quiet_runs).append(await _round(platform, customer, busy, seconds))
    busy_s = Summary([s for r in busy_runs for s in r["samples"]], "% core")
    quiet_s = Summary([s for r in quiet_runs for s in r["samples"]], "% core")
    delivered = min(r["delivered"] for r in busy_runs)
    lost = sum(r["lost"] for r in busy_runs)
    silent = sum(r["silent"] for r in busy_runs)
    mean = max(r["mean"] for r in busy_runs)
    met = mean <= TARGET_PERCENT and delivered >= MIN_LINES_S and lost == 0 and silent == 0
    n = len(platform.agent50.hwids)
    notes = [
        f"agentcpu: {n} tasks x ~100 lines/s: {delivered:,.0f} lines/s delivered to the API (lowest round), "
        f"agent {mean:.1f}% of one core over the window (highest round; quiet: "
        f"{max(r['mean'] for r in quiet_runs):.1f}%), "
        f"{(mean - max(r['mean'] for r in quiet_runs)) * 10_000 / max(delivered, 1):.1f} us of agent CPU per line",
        f"agentcpu: the engine (dockerd alone, not containerd or the shims) used {_engine(busy_runs)} of one core "
        f"busy, {_engine(quiet_runs)} quiet; lines lost/duplicated/out of order in the API's copies: {lost}; "
        f"tasks with no line stored: {silent}",
    ]
    # No ratio: the quiet agent's CPU is near zero.
    row = Row("agentcpu", f"agent CPU, {n} tasks printing 100 lines/s each (vs {n} quiet tasks)", busy_s, quiet_s,
              None,
              f"<= {TARGET_PERCENT:g}% of a core at >= {MIN_LINES_S:,.0f} lines/s, 0 lost", met, notes)
    series = [(f"agentcpu: agent CPU per second, {n} tasks", "% of one core",
               {"100 lines/s each": busy_s.samples, "quiet": quiet_s.samples})]
    return [row], series
