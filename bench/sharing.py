"""Whether others used the machine during a run: whose processes used its CPU.

A thread reads every process's CPU time (/proc/<pid>/stat) every few seconds while the
benchmarks run and sorts what each used since the last look:

    ours     this process and its descendants (the API, the agents, the registry, wrk,
             `docker logs`, the simulated executors)
    engine   dockerd, containerd, the shims, and every container's processes (ours and
             anybody else's: a container's cgroup does not say whose it is)
    kernel   kernel threads
    others   everything else: other people's tests, servers and tools

The load average is no measure of sharing here: a burst of 50 starting containers or
50 busy tasks of our own lifts it past 20 on two cores.  Processes born and gone between
two looks are not counted (the machine's busy total from /proc/stat is given beside).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import dockerd_pid, machine_busy_seconds

EVERY_S = 5.0
ENGINE_COMMANDS = frozenset({"dockerd", "containerd", "containerd-shim", "runc", "docker-init", "docker-proxy"})
KINDS = ("ours", "engine", "kernel", "others")


@dataclass(frozen=True)
class Proc:
    ppid: int
    comm: str
    cpu_s: float
    in_container: bool


def read_processes() -> dict[int, Proc]:
    """Every process now: parent, command, CPU seconds so far, whether in a container's cgroup."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cgroup = (entry / "cgroup").read_text()
        except OSError:
            continue  # gone meanwhile
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[int(entry.name)] = Proc(int(fields[1]), comm, (int(fields[11]) + int(fields[12])) / tick,
                                    "/docker/" in cgroup or "docker-" in cgroup)
    return out


def kind_of(pid: int, procs: dict[int, Proc], root: int) -> str:
    """Whose a process is (see the module's docstring)."""
    proc = procs[pid]
    if pid == 2 or proc.ppid == 2:
        return "kernel"
    if proc.comm in ENGINE_COMMANDS or proc.in_container:
        return "engine"
    seen = 0
    while pid and seen < 200:  # up the parents to our root, or to the top
        if pid == root:
            return "ours"
        parent = procs.get(pid)
        pid = parent.ppid if parent else 0
        seen += 1
    return "others"


def cpu_by_kind(before: dict[int, Proc], after: dict[int, Proc], root: int) -> dict[str, float]:
    """CPU seconds each kind used between two looks (processes present at both)."""
    used = dict.fromkeys(KINDS, 0.0)
    for pid, proc in after.items():
        earlier = before.get(pid)
        if earlier is not None and earlier.comm == proc.comm and proc.cpu_s >= earlier.cpu_s:
            used[kind_of(pid, after, root)] += proc.cpu_s - earlier.cpu_s
    return used


def sharing_note(used: dict[str, float], busy_s: float, wall_s: float, nproc: int, engine_pids: list[int | None]) -> str:
    """One line for the results: CPU seconds by whose processes, and engine restarts."""
    if wall_s <= 0:
        return "not sampled"
    parts = ", ".join(f"{k} {used.get(k, 0.0):.0f}" for k in KINDS)
    text = (f"CPU seconds over {wall_s:.0f} s x {nproc} cores: {parts} (the machine: {busy_s:.0f} busy); "
            f"others used {used.get('others', 0.0) / (wall_s * nproc) * 100:.0f}% of the machine")
    seen = [p for p in engine_pids if p is not None]
    restarts = sum(1 for a, b in zip(seen, seen[1:]) if a != b)
    if restarts:
        text += f"; the engine restarted {restarts} time(s) during the run"
    return text


@dataclass
class MachineWatch:
    every_s: float = EVERY_S
    used: dict[str, float] = field(default_factory=lambda: dict.fromkeys(KINDS, 0.0))
    engine_pids: list[int | None] = field(default_factory=list)
    busy_s: float = 0.0
    wall_s: float = 0.0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="machine-watch", daemon=True)

    def _run(self) -> None:
        root = os.getpid()
        before, busy, started = read_processes(), machine_busy_seconds(), time.monotonic()
        while True:
            stopping = self._stop.wait(self.every_s)
            after = read_processes()
            for kind, seconds in cpu_by_kind(before, after, root).items():
                self.used[kind] += seconds
            self.engine_pids.append(dockerd_pid())
            before = after
            if stopping:
                break
        self.busy_s = machine_busy_seconds() - busy
        self.wall_s = time.monotonic() - started

    def note(self) -> str:
        return sharing_note(self.used, self.busy_s, self.wall_s, os.cpu_count() or 0, self.engine_pids)

    def __enter__(self) -> "MachineWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
