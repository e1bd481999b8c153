"""Real processes for the benchmarks: the registry, `megamind server`, agents, helpers.

Everything runs on 127.0.0.1.  Every container a benchmark makes (task containers
through the agents' ``--label``, and the SDK baseline's own) carries the label
``megamind.bench=<run id>`` and is removed by that label at the end.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import docker

MEGAMIND = [sys.executable, "-m", "megamind.cli"]
BENCH_LABEL = "megamind.bench"
ROOT = Path(__file__).resolve().parents[1]
IMAGE_NAME = "benchbox"
# The task image: a static busybox FROM scratch; the task's params are its shell script.
DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh", "-c", "eval \\"$MEGAMIND_PARAMS\\""]
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return  # it answers, even if not 2xx
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _more_files() -> None:
    """In the child: as many open files as allowed (1,000 WebSockets need more than 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=out, env=env, preexec_fn=_more_files)


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


@dataclass
class Registry:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed: run scripts/bench, which installs it")
        self.root.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "REGISTRY_HTTP_ADDR": self.address,
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(self.root),
            "REGISTRY_LOG_LEVEL": "warn",
        }
        self.proc = spawn([binary, "serve", str(ROOT / "registry" / "config.yml")],
                          self.root.parent / "registry.log", env)
        wait_http(f"http://{self.address}/v2/", proc=self.proc)

    def push_bench_image(self, workdir: Path) -> str:
        """Build the busybox image FROM scratch, push it; returns the pull reference."""
        busybox = shutil.which("busybox") or "/bin/busybox"
        context = workdir / "image"
        context.mkdir(parents=True, exist_ok=True)
        (context / "Dockerfile").write_text(DOCKERFILE)
        shutil.copy(busybox, context / "busybox")
        tag = f"{self.address}/{IMAGE_NAME}:latest"
        env = {"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin:/usr/sbin:/sbin"}
        subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, capture_output=True, env=env)
        subprocess.run(["docker", "push", tag], check=True, capture_output=True)
        return tag

    def stop(self) -> None:
        stop(self.proc)


@dataclass
class Server:
    db: Path
    registry: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(
            MEGAMIND + ["server", "--db", str(self.db), "--host", "127.0.0.1", "--port", str(self.port),
                        "--registry", self.registry, "--no-local-account",
                        # The limiter stays in the request path, but never refuses a benchmark.
                        "--rate-limit", "1000000/second"],
            self.db.parent / f"server-{self.port}.log",
        )
        wait_http(self.url + "/api/v1/gethwlist", proc=self.proc)

    def create_account(self, name: str) -> str:
        out = subprocess.run(
            MEGAMIND + ["admin", "create-account", name, "--db", str(self.db)],
            check=True, capture_output=True, text=True, timeout=60,
        )
        return out.stdout.strip().splitlines()[-1]

    def stop(self) -> None:
        stop(self.proc)


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
            if text.count("megamind.executor.agent: connected to") >= self.slots:
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
