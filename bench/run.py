"""Run the benchmarks and print the table: ``python -m bench.run [--quick] [--only NAME ...]``.

Each benchmark runs Megamind and its baseline in this one run, alternating, for several
rounds, and reports the median, the p95 and the ratio, since absolute times on a
shared machine drift.  Only a full run (neither ``--quick`` nor ``--only``) rewrites the
results section of BENCHMARKS.md, the plots in bench/plots/ and bench/last-run.json, so
that they always hold one full run; ``--write``/``--no-write`` overrides that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform as pyplatform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from bench import agentcpu, api, burst, follow, footprint, launch, lines, logs, money, placement, scale
from bench.engine import EnginePlatform
from bench.fleet import ScalePlatform
from bench.plots import plot_series
from bench.sharing import MachineWatch
from bench.stats import Row, table

ROOT = Path(__file__).resolve().parents[1]
ENGINE_BENCHMARKS = {"launch": launch, "burst": burst, "logs": logs, "lines": lines, "follow": follow,
                     "agentcpu": agentcpu, "footprint": footprint}
SCALE_BENCHMARKS = {"api": api, "scale": scale}
# Each starts and stops its own platform: run(quick, workdir).
OWN_PLATFORM_BENCHMARKS = {"placement": placement, "money": money}
ORDER = ["launch", "burst", "logs", "lines", "follow", "agentcpu", "footprint", "api", "scale", "placement", "money"]
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def machine() -> dict[str, str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    try:
        engine = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        engine = "unknown"
    wrk = shutil.which("wrk")
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("\n")[0] if wrk else "-"
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "cpu": cpu,
        "docker": engine,
        "kernel": pyplatform.release(),
        "python": pyplatform.python_version(),
        "wrk": wrk_version.strip(),
    }


def run_engine(names: list[str], quick: bool, workdir: Path, run_id: str) -> tuple[list[Row], list]:
    rows, series = [], []
    platform = EnginePlatform(workdir, run_id)
    try:
        print("[bench] starting registry, API, an agent and a 50-slot agent ...", file=sys.stderr)
        platform.start()

        async def go():
            for name in names:
                print(f"[bench] {name} ...", file=sys.stderr)
                started = time.monotonic()
                try:
                    r, s = await ENGINE_BENCHMARKS[name].run(platform, quick)
                except Exception as exc:  # one benchmark's failure is its row; the others still run
                    traceback.print_exc()
                    r, s = [failed_row(name, exc)], []
                print(f"[bench] {name} done in {time.monotonic() - started:.0f} s\n{table(r)}", file=sys.stderr)
                rows.extend(r)
                series.extend(s)

        asyncio.run(go())
    except Exception as exc:
        traceback.print_exc()
        done = {r.benchmark.split()[0] for r in rows}
        rows.extend(failed_row(n, exc) for n in names if n not in done)
    finally:
        platform.stop()
        if platform.image:
            subprocess.run(["docker", "rmi", "-f", platform.image], capture_output=True)
    return rows, series


def run_scale(names: list[str], quick: bool, workdir: Path) -> tuple[list[Row], list]:
    rows, series = [], []
    platform = ScalePlatform(workdir)
    try:
        print("[bench] seeding 100,000 tasks, starting the API and 1,000 simulated executors ...", file=sys.stderr)
        platform.start()
        for name in names:
            r, s = _run_one(name, lambda name=name: SCALE_BENCHMARKS[name].run(platform, quick))
            rows.extend(r)
            series.extend(s)
    except Exception as exc:
        traceback.print_exc()
        done = {r.benchmark.split()[0] for r in rows}
        rows.extend(failed_row(n, exc) for n in names if n not in done)
    finally:
        platform.stop()
    return rows, series


def run_own_platform(names: list[str], quick: bool, workdir: Path) -> tuple[list[Row], list]:
    rows, series = [], []
    for name in names:
        r, s = _run_one(name, lambda name=name: OWN_PLATFORM_BENCHMARKS[name].run(quick, workdir))
        rows.extend(r)
        series.extend(s)
    return rows, series


def _run_one(name: str, run: Callable[[], tuple[list[Row], list]]) -> tuple[list[Row], list]:
    """One benchmark, timed; a failure is its row, and the others still run."""
    print(f"[bench] {name} ...", file=sys.stderr)
    started = time.monotonic()
    try:
        r, s = run()
    except Exception as exc:
        traceback.print_exc()
        r, s = [failed_row(name, exc)], []
    print(f"[bench] {name} done in {time.monotonic() - started:.0f} s\n{table(r)}", file=sys.stderr)
    return r, s


def failed_row(name: str, exc: BaseException) -> Row:
    """A benchmark that could not run: its row says so, and why."""
    reason = " ".join(f"{exc.__class__.__name__}: {exc}".split())[:300]
    return Row(name, "did not run to its end", None, None, None, "-", False,
               [f"{name}: failed: {reason}"])


def results_markdown(rows: list[Row], info: dict[str, str], command: str, plots: list[Path]) -> str:
    lines = [
        BEGIN,
        f"Latest run: `{command}`, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        "| machine | |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v} |" for k, v in info.items()]
    lines += ["", table(rows, markdown=True), ""]
    notes = [n for r in rows for n in r.notes]
    if notes:
        lines += [f"- {n}" for n in notes] + [""]
    for path in plots:
        lines.append(f"![{path.stem}]({path.relative_to(ROOT)})")
    lines.append(END)
    return "\n".join(lines)


def write_benchmarks_md(block: str) -> None:
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n" + BEGIN + "\n" + END + "\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + "\n\n" + BEGIN + "\n" + END + "\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(head + block + tail)


def writes_results(quick: bool, only: list[str] | None, write: bool | None) -> bool:
    """Whether this run rewrites BENCHMARKS.md's results: a full run does, nothing else
    unless asked, so a quick or partial run never replaces the recorded full one."""
    return write if write is not None else not (quick or only)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a few minutes in all")
    parser.add_argument("--only", nargs="+", choices=ORDER, metavar="NAME",
                        help=f"run only these: {', '.join(ORDER)}")
    parser.add_argument("--write", action=argparse.BooleanOptionalAction, default=None,
                        help="rewrite BENCHMARKS.md's results, the plots and last-run.json "
                             "(default: only for a full run, neither --quick nor --only)")
    args = parser.parse_args(argv)
    names = [n for n in ORDER if not args.only or n in args.only]
    write = writes_results(args.quick, args.only, args.write)
    command = "scripts/bench" + (" --quick" if args.quick else "") + (f" --only {' '.join(args.only)}" if args.only else "")

    run_id = uuid.uuid4().hex[:12]
    workdir = Path(tempfile.mkdtemp(prefix="megamind-bench-"))
    info = machine()
    print(f"[bench] run {run_id}, work folder {workdir}", file=sys.stderr)
    rows: list[Row] = []
    series: list = []
    started = time.monotonic()
    engine_names = [n for n in names if n in ENGINE_BENCHMARKS]
    scale_names = [n for n in names if n in SCALE_BENCHMARKS]
    own_names = [n for n in names if n in OWN_PLATFORM_BENCHMARKS]
    with MachineWatch() as watch:
        if engine_names:
            r, s = run_engine(engine_names, args.quick, workdir, run_id)
            rows += r
            series += s
        if scale_names:
            r, s = run_scale(scale_names, args.quick, workdir)
            rows += r
            series += s
        if own_names:
            r, s = run_own_platform(own_names, args.quick, workdir)
            rows += r
            series += s
    elapsed = time.monotonic() - started
    info["shared?"] = watch.note()

    print()
    print(table(rows))
    for row in rows:
        for note in row.notes:
            print(f"  - {note}")
    print(f"\n{sum(r.met for r in rows)} of {len(rows)} targets met; {elapsed:.0f} s; {info['nproc']} CPUs "
          f"({info['cpu']}), {info['memory']}, docker {info['docker']}\n{info['shared?']}")

    result = {"command": command, "machine": info, "elapsed_s": elapsed, "rows": [r.to_dict() for r in rows],
              "series": [{"title": t, "unit": u, "samples": d} for t, u, d in series]}
    if write:
        (ROOT / "bench" / "last-run.json").write_text(json.dumps(result, indent=1))
        plots = plot_series(series, ROOT / "bench" / "plots")
        write_benchmarks_md(results_markdown(rows, info, command, plots))
        print("[bench] BENCHMARKS.md and bench/plots/ updated", file=sys.stderr)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(r.met for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
