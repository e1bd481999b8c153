"""Real processes for the benchmarks: the registry, `megamind server`, agents, helpers.

Everything runs on 127.0.0.1.  Every container a benchmark makes (task containers
through the agents' ``--label``, and the SDK baseline's own) carries the label
``megamind.bench=<run id>`` and is removed by that label at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from megamind.testing import (  # noqa: F401  (free_port, wait_http: used by the fleet benchmark)
    MEGAMIND,
    Registry,
    Server,
    build_busybox_image,
    free_port,
    spawn,
    stop,
    wait_http,
)

BENCH_LABEL = "megamind.bench"
IMAGE_NAME = "benchbox"


def rss_mb(pid: int, field_name: str = "VmRSS") -> float:
    """Resident memory of a process in MB, from /proc/<pid>/status (VmHWM: the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field_name} for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy (not idle, not waiting on I/O) since boot."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def dockerd_pid() -> int | None:
    """The engine's process, when there is exactly one."""
    pids = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True).stdout.split()
    return int(pids[0]) if len(pids) == 1 else None


class CpuMeter:
    """CPU seconds a process used between two reads; None when it is gone or was replaced
    (the engine restarted by someone else on a shared machine)."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.start_seconds = self._read()
        self.started = time.monotonic()

    def _read(self) -> float | None:
        try:
            return cpu_seconds(self.pid) if self.pid else None
        except (OSError, ValueError, IndexError):
            return None

    def used(self) -> float | None:
        now = self._read()
        return None if now is None or self.start_seconds is None else now - self.start_seconds

    def share(self) -> float | None:
        """Of one core, since this meter was made."""
        used = self.used()
        return None if used is None else used / max(time.monotonic() - self.started, 1e-9)


def bench_server(db: Path, registry: str, registry_auth_dir: Path | None = None, port: int | None = None) -> Server:
    """A server whose limiter stays in the request path, but never refuses a benchmark request;
    with ``registry_auth_dir`` and ``port``, the token server of a Registry (`megamind.testing`)."""
    args = ("--no-local-account", "--rate-limit", "1000000/second",
            "--register-rate-limit", "none", "--max-executors-per-account", "0")
    if port is None:
        return Server(db, registry, args, registry_auth_dir=registry_auth_dir)
    return Server(db, registry, args, port=port, registry_auth_dir=registry_auth_dir)


def push_bench_image(registry: Registry, workdir: Path, credentials: tuple[str, str]) -> str:
    """The busybox image FROM scratch, pushed to the registry by an account (its name, an
    api-key), which owns it; returns the pull reference."""
    tag = f"{registry.address}/{IMAGE_NAME}:latest"
    build_busybox_image(tag, workdir / "image", credentials)
    return tag


@dataclass
class Agent:
    """`megamind executor` with N slots, its task containers labelled for this run."""

    api_url: str
    api_key: str
    state_dir: Path
    run_id: str
    slots: int = 1
    proc: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.state_dir / "agent.log"

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(
            MEGAMIND + ["executor", "--api", self.api_url, "--api-key", self.api_key,
                        "--state-dir", str(self.state_dir), "--network", "none",
                        "--slots", str(self.slots), "--label", f"{BENCH_LABEL}={self.run_id}"],
            self.log,
        )

    def wait_connected(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace") if self.log.exists() else ""
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}:\n{text[-3000:]}")
            if text.count("megamind.executor.link: connected to") >= self.slots:
                return
            time.sleep(0.1)
        raise TimeoutError(f"agent with {self.slots} slot(s) not connected within {timeout}s")

    @property
    def hwids(self) -> list[str]:
        dirs = [self.state_dir] if self.slots == 1 else [self.state_dir / f"slot-{i}" for i in range(self.slots)]
        return [json.loads((d / "identity.json").read_text())["hwid"] for d in dirs]

    def stop(self) -> None:
        stop(self.proc)


def remove_containers(client: docker.DockerClient, run_id: str) -> int:
    """Remove every container of this benchmark run (both sides), by label."""
    removed = 0
    for container in client.containers.list(all=True, filters={"label": f"{BENCH_LABEL}={run_id}"}):
        try:
            container.remove(force=True)
            removed += 1
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            if exc.status_code != 409:
                raise
    return removed
