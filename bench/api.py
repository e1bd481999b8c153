"""API throughput: requests/s of authenticated `gettasklist` (100 tasks) and `gethwlist`
(1,000 executors) on one server process, against a bare aiohttp JSON handler giving the
same answers, measured by `wrk` on 127.0.0.1 in alternating rounds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from bench.fleet import ScalePlatform
from bench.stats import Row, Summary, ratio

TARGET = 0.5
CONNECTIONS = 16
REPORT_LUA = Path(__file__).with_name("wrk_report.lua")


def wrk(url: str, key: str, seconds: float) -> dict:
    """One wrk run; its report as a dict (requests/s, latency percentiles in ms, errors)."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed: run scripts/bench, which installs it (apt-get install wrk)")
    out = subprocess.run(
        [binary, "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "-s", str(REPORT_LUA), "-H", f"api-key: {key}", url],
        check=True, capture_output=True, text=True, timeout=seconds + 60,
    ).stdout
    report = json.loads(out[out.index("{"):])
    report["rps"] = report["requests"] / (report["duration_us"] / 1e6)
    return report


def run(platform: ScalePlatform, quick: bool) -> tuple[list[Row], list]:
    rounds, seconds = (2, 3) if quick else (4, 8)
    rows = []
    series_rps: dict[str, list[float]] = {}
    for name, path, bare_path, what in (
        ("api gettasklist", "/api/v1/gettasklist", "/tasks", "100 tasks"),
        ("api gethwlist", "/api/v1/gethwlist", "/hw", f"{platform.executors:,} executors"),
    ):
        ours, base, bad, p99s = [], [], 0, []
        url = platform.server.url + path
        bare_url = platform.bare_url + bare_path
        wrk(url, platform.bench_key, 1)  # warm-up
        wrk(bare_url, platform.bench_key, 1)
        for n in range(rounds):
            order = [(ours, url), (base, bare_url)]
            if n % 2:
                order.reverse()
            for sink, target in order:
                report = wrk(target, platform.bench_key, seconds)
                sink.append(report["rps"])
                if sink is ours:
                    bad += report["errors"] + report["non2xx"]
                    p99s.append(report["p99_ms"])
        ours_s, base_s = Summary(ours, "req/s"), Summary(base, "req/s")
        r = ratio(ours_s.median, base_s.median)
        row = Row(name, f"authenticated, {what}, wrk -c{CONNECTIONS}, {seconds:g} s x {rounds}", ours_s, base_s, r,
                  f"ratio >= {TARGET}", r >= TARGET and bad == 0,
                  [f"{name}: wrk latency p99 {max(p99s):.1f} ms (worst round); failed or non-2xx answers: {bad}"])
        rows.append(row)
        series_rps[name] = ours
    return rows, []
