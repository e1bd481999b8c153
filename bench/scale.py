"""Scale: 1,000 executors connected and heartbeating to one API process that stores
100,000 tasks.  `gethwlist` latency (one client, requests one after another, in
alternating blocks with the bare handler) and the API's resident memory.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from bench.fleet import ScalePlatform
from bench.procs import rss_mb
from bench.stats import Row, Summary, ratio

TARGET_P99_MS = 50.0
TARGET_RSS_MB = 150.0
BLOCK = 50


async def _timed(http: aiohttp.ClientSession, url: str, count: int, expect: int) -> list[float]:
    out = []
    for _ in range(count):
        started = time.perf_counter()
        async with http.get(url) as resp:
            body = await resp.read()
        out.append((time.perf_counter() - started) * 1000)
        if resp.status != 200 or len(json.loads(body)) != expect:
            raise RuntimeError(f"{url}: {resp.status}, {len(body)} bytes; expected {expect} items")
    return out


async def _latencies(platform: ScalePlatform, rounds: int) -> tuple[list[float], list[float]]:
    ours: list[float] = []
    base: list[float] = []
    async with aiohttp.ClientSession(headers={"api-key": platform.bench_key}) as http:
        url, bare = platform.server.url + "/api/v1/gethwlist", platform.bare_url + "/hw"
        await _timed(http, url, 10, platform.executors)
        await _timed(http, bare, 10, 1000)
        for n in range(rounds):
            order = [(ours, url, platform.executors), (base, bare, 1000)]
            if n % 2:
                order.reverse()
            for sink, target, expect in order:
                sink += await _timed(http, target, BLOCK, expect)
    return ours, base


def run(platform: ScalePlatform, quick: bool) -> tuple[list[Row], list]:
    rounds = 6 if quick else 20
    ours, base = asyncio.run(_latencies(platform, rounds))
    ours_s, base_s = Summary(ours, "ms"), Summary(base, "ms")
    latency = Row(
        "scale gethwlist", f"{platform.executors:,} executors heartbeating; p99 {ours_s.p99:.1f} ms "
        f"(bare {base_s.p99:.1f} ms)", ours_s, base_s, ratio(ours_s.p99, base_s.p99),
        f"p99 < {TARGET_P99_MS:g} ms", ours_s.p99 < TARGET_P99_MS,
        [f"all {platform.executors:,} simulated executors registered and connected in {platform.connect_s:.1f} s"],
    )
    api_pid, bare_pid = platform.server.proc.pid, platform.bare.pid
    api_rss = [rss_mb(api_pid)]
    for _ in range(4):
        time.sleep(0.25)
        api_rss.append(rss_mb(api_pid))
    memory = Row(
        "scale memory", f"API RSS, {platform.tasks:,} tasks stored, {platform.executors:,} executors (vs bare server)",
        Summary(api_rss, "MB"), Summary([rss_mb(bare_pid)], "MB"), ratio(api_rss[-1], rss_mb(bare_pid)),
        f"<= {TARGET_RSS_MB:g} MB", max(api_rss) <= TARGET_RSS_MB,
        [f"API peak RSS (VmHWM) over the whole run: {rss_mb(api_pid, 'VmHWM'):.1f} MB"],
    )
    series = [("scale: gethwlist latency, 1,000 executors", "ms", {"megamind": ours, "bare aiohttp": base})]
    return [latency, memory], series
