"""The platform at scale: one `megamind server` on a database seeded with 100,000 tasks,
1,000 simulated executors connected to it from a separate process, and the bare
aiohttp server that the API benchmarks compare against.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Server, bench_server, free_port, spawn, stop, wait_http
from bench.seed import seed


@dataclass
class ScalePlatform:
    workdir: Path
    executors: int = 1000
    tasks: int = 100_000
    server: Server | None = None
    sim = None
    bare = None
    bare_url: str = ""
    keys: dict | None = None
    connect_s: float = 0.0

    def start(self) -> None:
        home = self.workdir / "scale-api"
        home.mkdir(parents=True, exist_ok=True)
        db = home / "megamind.db"
        self.keys = seed(db, self.tasks)
        self.server = bench_server(db, "127.0.0.1:9")  # no image is pulled at this scale
        self.server.start()
        ready = home / "sim-ready"
        started = time.monotonic()
        self.sim = spawn([sys.executable, "-m", "bench.simagents", "--api", self.server.url,
                          "--api-key", self.keys["owner"], "--count", str(self.executors), "--ready", str(ready)],
                         home / "simagents.log")
        deadline = started + 300
        while not ready.exists():
            if self.sim.poll() is not None:
                raise RuntimeError(f"simulated agents exited:\n{(home / 'simagents.log').read_text()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError("the simulated executors did not all connect")
            time.sleep(0.2)
        self.connect_s = time.monotonic() - started
        port = free_port()
        self.bare = spawn([sys.executable, "-m", "bench.bare", "--port", str(port)], home / "bare.log")
        self.bare_url = f"http://127.0.0.1:{port}"
        wait_http(self.bare_url + "/hw", proc=self.bare)

    @property
    def bench_key(self) -> str:
        return self.keys["bench"]

    def stop(self) -> None:
        stop(self.sim)
        stop(self.bare)
        if self.server is not None:
            self.server.stop()
