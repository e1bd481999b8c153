"""The placement benchmark's platform: one `megamind server` on a fresh database and N
simulated executors of mixed hardware (`bench/simagents.py --hardware mixed`) in a
separate process, recording each start they receive (`bench/simevents.py`).
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.procs import Server, bench_server, spawn, stop
from bench.seed import create_bench_accounts
from bench.simevents import EventLog


@dataclass
class PlacementPlatform:
    workdir: Path
    executors: int
    server: Server | None = None
    sim = None
    keys: dict[str, str] = field(default_factory=dict)
    events: EventLog | None = None
    connect_s: float = 0.0

    @property
    def home(self) -> Path:
        return self.workdir / "placement-api"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        db = self.home / "megamind.db"
        self.keys = asyncio.run(create_bench_accounts(db))
        self.server = bench_server(db, "127.0.0.1:9")  # no image is pulled: the executors are simulated
        self.server.start()
        ready, events = self.home / "sim-ready", self.home / "sim-events"
        self.events = EventLog(events)
        started = time.monotonic()
        self.sim = spawn([sys.executable, "-m", "bench.simagents", "--api", self.server.url,
                          "--api-key", self.keys["owner"], "--count", str(self.executors), "--ready", str(ready),
                          "--hardware", "mixed", "--events", str(events)],
                         self.home / "simagents.log")
        deadline = started + 300
        while not ready.exists():
            if self.sim.poll() is not None:
                raise RuntimeError(f"simulated agents exited:\n{self.sim_log()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the simulated executors did not all connect:\n{self.sim_log()}")
            time.sleep(0.2)
        self.connect_s = time.monotonic() - started

    def sim_log(self) -> str:
        path = self.home / "simagents.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    @property
    def api_pid(self) -> int:
        return self.server.proc.pid

    def stop(self) -> None:
        stop(self.sim)
        if self.server is not None:
            self.server.stop()
