"""Where the 50-slot agent's CPU goes: ``python -m bench.profile burst|agentcpu|engine [...]``.

Starts the engine platform of the benchmarks (bench/engine.py), then samples the
50-slot agent with ``py-spy record --nonblocking --gil -f raw`` (stacks holding the GIL:
the agent's own Python CPU, not its threads waiting on the engine) while it works:

    burst      bursts of 50 addtask at once, sampled from the first request until all
               run (the burst benchmark's makespan); the clean-up is not sampled
    agentcpu   50 tasks printing ~100 lines/s each, sampled over a window
    engine     no sampling: bursts of the SDK, of the SDK with a log follower opened on
               each container as it runs (as the agent does), and of Megamind, in turn;
               the makespan and the CPU seconds of each process over it (the agent,
               the API, this process, dockerd, containerd, the shims, the containers,
               others), the machine's busy total, and its busy cores in the 2 s before

Prints the functions with the most samples on their own (self) and anywhere in the
stack (inclusive), and the CPU seconds of the agent, the API and dockerd over the
sampled spans.  Raw stacks are kept in the output folder (``--out``) for a flamegraph.
Runs as root (py-spy attaches with ptrace).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import agentcpu, burst
from bench.client import Customer
from bench.engine import EnginePlatform
from bench.procs import CpuMeter, dockerd_pid, machine_busy_seconds
from bench.sharing import Proc, kind_of, read_processes

BACKGROUND_S = 2.0
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    """py-spy's raw output (``frame;frame;... count``, outermost first) as (frames, count)."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def frame_name(frame: str) -> str:
    """``function (path/file.py:12)`` -> ``file.py:function`` (lines dropped: one entry a function)."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    return f"{match['file'].rsplit('/', 1)[-1]}:{match['func']}"


def summarize(stacks: list[tuple[list[str], int]], top: int = 25) -> dict[str, list[tuple[str, int]]]:
    """The functions with the most samples on their own ("self") and anywhere in the stack
    ("inclusive", each function counted once a sample), and the total."""
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    for frames, count in stacks:
        total += count
        names = [frame_name(f) for f in frames if not f.startswith(("process ", "thread "))]
        if not names:
            continue
        own[names[-1]] += count
        for name in set(names):
            anywhere[name] += count
    return {"total": [("samples", total)], "self": own.most_common(top), "inclusive": anywhere.most_common(top)}


def report(summary: dict[str, list[tuple[str, int]]]) -> str:
    (_, total), = summary["total"]
    out = [f"{total} samples"]
    for kind in ("self", "inclusive"):
        out.append(f"\n  {kind}:")
        for name, count in summary[kind]:
            out.append(f"    {count / max(total, 1) * 100:5.1f}%  {name}")
    return "\n".join(out)


class Sampler:
    """py-spy on one process, from start() until stop()."""

    def __init__(self, pid: int, out: Path, rate: int, gil: bool) -> None:
        self.pid, self.out, self.rate, self.gil = pid, out, rate, gil
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking",
             "-p", str(self.pid), "-r", str(self.rate), "-f", "raw", "-o", str(self.out),
             *(["--gil"] if self.gil else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        time.sleep(1.0)  # attached

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(30)


class CpuSpan:
    """CPU seconds of some processes over the spans between start() and stop()."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.used: dict[str, float | None] = dict.fromkeys(pids, 0.0)
        self.wall = 0.0

    def start(self) -> None:
        self._at = time.monotonic()
        self._meters = {k: CpuMeter(p) for k, p in self.pids.items()}

    def stop(self) -> None:
        self.wall += time.monotonic() - self._at
        for k, meter in self._meters.items():
            used, so_far = meter.used(), self.used[k]
            self.used[k] = None if used is None or so_far is None else so_far + used

    def text(self) -> str:
        return f"over {self.wall:.1f} s: " + ", ".join(
            f"{k} {'?' if v is None else f'{v:.2f}'} CPU s" for k, v in self.used.items())


async def _profile_burst(platform: EnginePlatform, sampler_for, rounds: int, cpu: CpuSpan) -> list[float]:
    hwids = platform.agent50.hwids
    makespans = []
    async with Customer(platform.server.url, platform.key) as customer:
        await customer.wait_free(hwids)
        _, _, taskids = await burst.megamind_burst(platform, customer, hwids)  # warm-up
        await burst.megamind_clear(platform, customer, hwids, taskids)
        for n in range(rounds):
            sampler = sampler_for(n)
            sampler.start()
            cpu.start()
            _, makespan, taskids = await burst.megamind_burst(platform, customer, hwids)
            cpu.stop()
            sampler.stop()
            makespans.append(makespan)
            await burst.megamind_clear(platform, customer, hwids, taskids)
    return makespans


async def _profile_output(platform: EnginePlatform, sampler_for, seconds: float, cpu: CpuSpan) -> None:
    hwids = platform.agent50.hwids
    async with Customer(platform.server.url, platform.key) as customer:
        await customer.wait_free(hwids)
        started = time.perf_counter()
        taskids = list(await asyncio.gather(*(customer.addtask(h, agentcpu.BUSY_SCRIPT) for h in hwids)))
        await customer.wait_running(taskids, started)
        await asyncio.sleep(agentcpu.SETTLE_S)
        sampler = sampler_for(0)
        sampler.start()
        cpu.start()
        await asyncio.sleep(seconds)
        cpu.stop()
        sampler.stop()
        await burst.megamind_clear(platform, customer, hwids, taskids)


def _sdk_burst_following(platform: EnginePlatform, count: int) -> tuple[float, list[str], list]:
    """The SDK burst, and as each container runs, a log follower on it opened the way the
    agent opens its own (``GET /containers/{id}/logs?follow=1``, timestamps, both streams)."""
    def run_and_follow(_):
        cid, _ = platform.sdk_run()
        url = platform.client.api._url("/containers/{0}/logs", cid)
        params = {"follow": 1, "stdout": 1, "stderr": 1, "timestamps": 1}
        return cid, platform.client.api._get(url, params=params, stream=True)

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(run_and_follow, range(count)))
    return time.perf_counter() - started, [cid for cid, _ in results], [r for _, r in results]


def cpu_breakdown(before: dict[int, Proc], after: dict[int, Proc], root: int, names: dict[int, str]) -> dict[str, float]:
    """CPU seconds between two looks at the processes, by who used them: the processes in
    ``names`` by name, the rest of ours as "bench", the engine's by command (every
    container's processes as "containers"), then "kernel" and "others"."""
    used: dict[str, float] = collections.defaultdict(float)
    for pid, proc in after.items():
        earlier = before.get(pid)
        if earlier is None or earlier.comm != proc.comm or proc.cpu_s < earlier.cpu_s:
            continue
        kind = kind_of(pid, after, root)
        if pid in names:
            label = names[pid]
        elif kind == "ours":
            label = "bench"
        elif kind == "engine":
            label = "containers" if proc.in_container else proc.comm
        else:
            label = kind
        used[label] += proc.cpu_s - earlier.cpu_s
    return dict(used)


async def _compare_engine(platform: EnginePlatform, rounds: int) -> dict[str, list[tuple[float, dict[str, float]]]]:
    """Bursts of the SDK, of the SDK with a follower per container, and of Megamind, in
    turn: each one's makespan and CPU seconds by process (and "machine": /proc/stat's
    busy total, processes born and gone during the burst included; "before": the busy
    cores in the 2 s before it, other users)."""
    hwids = platform.agent50.hwids
    names = {platform.agent50.proc.pid: "agent", platform.server.proc.pid: "api"}
    out: dict[str, list[tuple[float, dict[str, float]]]] = {"sdk": [], "sdk+followers": [], "megamind": []}
    async with Customer(platform.server.url, platform.key) as customer:
        await customer.wait_free(hwids)
        for n in range(rounds + 1):
            for kind in list(out) if n % 2 else list(reversed(out)):
                idle = machine_busy_seconds()
                await asyncio.sleep(BACKGROUND_S)
                background = (machine_busy_seconds() - idle) / BACKGROUND_S
                before, busy = read_processes(), machine_busy_seconds()
                if kind == "megamind":
                    _, makespan, taskids = await burst.megamind_burst(platform, customer, hwids)
                    clear = burst.megamind_clear(platform, customer, hwids, taskids)
                elif kind == "sdk":
                    _, makespan, ids = await asyncio.to_thread(platform.sdk_burst, len(hwids))
                    clear = asyncio.to_thread(platform.sdk_remove, ids)
                else:
                    makespan, ids, streams = await asyncio.to_thread(_sdk_burst_following, platform, len(hwids))
                    for stream in streams:
                        stream.close()
                    clear = asyncio.to_thread(platform.sdk_remove, ids)
                used = cpu_breakdown(before, read_processes(), os.getpid(), names)
                used["machine"] = machine_busy_seconds() - busy
                used["before"] = background
                await clear
                if n:  # the first pass warms up
                    out[kind].append((makespan, used))
    return out


def engine_report(results: dict[str, list[tuple[float, dict[str, float]]]]) -> str:
    """Per kind of burst: the median makespan and the mean CPU seconds of each process."""
    lines = []
    for kind, runs in results.items():
        if not runs:
            continue
        makespans = sorted(m for m, _ in runs)
        labels = sorted({k for _, used in runs for k in used}, key=lambda k: -sum(u.get(k, 0.0) for _, u in runs))
        means = {k: sum(u.get(k, 0.0) for _, u in runs) / len(runs) for k in labels}
        machine = means.pop("machine", 0.0)
        before = means.pop("before", 0.0)
        median = makespans[len(makespans) // 2]
        lines.append(f"{kind}: makespan {', '.join(f'{m * 1000:.0f}' for m, _ in runs)} ms (median "
                     f"{median * 1000:.0f}); machine {machine:.2f} CPU s = {machine / median:.2f} cores busy "
                     f"(before: {before:.2f})")
        lines.append("    " + ", ".join(f"{k} {v:.2f}" for k, v in means.items() if v >= 0.01))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["burst", "agentcpu", "engine"])
    parser.add_argument("--rounds", type=int, default=3, help="bursts sampled (burst)")
    parser.add_argument("--seconds", type=float, default=20.0, help="window sampled (agentcpu)")
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples a second")
    parser.add_argument("--gil", action=argparse.BooleanOptionalAction, default=True,
                        help="only stacks holding the GIL: Python's own CPU (--no-gil: threads waiting "
                             "on a socket count too)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the raw stacks (default: a temp folder)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="megamind-profile-"))
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="megamind-bench-"))
    platform = EnginePlatform(workdir, uuid.uuid4().hex[:12])
    try:
        print("[profile] starting registry, API and agents ...", file=sys.stderr)
        platform.start()
        pid = platform.agent50.proc.pid
        cpu = CpuSpan({"agent": pid, "api": platform.server.proc.pid, "dockerd": dockerd_pid()})

        def sampler_for(n: int) -> Sampler:
            return Sampler(pid, out / f"{args.what}-{n}.txt", args.rate, args.gil)

        if args.what == "engine":
            print(engine_report(asyncio.run(_compare_engine(platform, args.rounds))))
            return 0
        if args.what == "burst":
            makespans = asyncio.run(_profile_burst(platform, sampler_for, args.rounds, cpu))
            print(f"[profile] makespans while sampled: {', '.join(f'{m * 1000:.0f} ms' for m in makespans)}")
        else:
            asyncio.run(_profile_output(platform, sampler_for, args.seconds, cpu))
    finally:
        platform.stop()
        if platform.image:
            subprocess.run(["docker", "rmi", "-f", platform.image], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)
    stacks = [s for path in sorted(out.glob(f"{args.what}-*.txt")) for s in parse_collapsed(path.read_text())]
    print(f"[profile] {cpu.text()}")
    print(f"[profile] raw stacks in {out}")
    print(report(summarize(stacks)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
