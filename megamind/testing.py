"""The platform as real processes on 127.0.0.1, for the end-to-end tests and the benchmarks.

A registry (Debian's Distribution binary), `megamind server`, and helpers to wait
for them and stop them.  Nothing here is used by the platform itself.
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

from megamind.protocol import LogBatch, LogCursor, LogEntry, Stream

MEGAMIND = [sys.executable, "-m", "megamind.cli"]
REGISTRY_CONFIG = Path(__file__).resolve().parents[1] / "registry" / "config.yml"
# A test or benchmark image: a static busybox FROM scratch; the task's params are its script.
BUSYBOX_DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh", "-c", "eval \\"$MEGAMIND_PARAMS\\""]
"""


# The contract's own example executor: what fake agents of the tests report.
SAMPLE_HARDWARE = {
    "gpus": ["nVidia 1060 6G", "nVidia 1060 6G"],
    "cpus": ["Intel i7 7700K 3.4 GHz"],
    "ram": 32000,
    "network": "100mbit",
    "calculated_perfomance_rating": 4.5,
}


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


def stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int | None:
    """Signal and wait; kill past the timeout. Returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _more_files() -> None:
    """In the child: as many open files as allowed (1,000 WebSockets need more than 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=out, env=env, preexec_fn=_more_files)


def build_busybox_image(tag: str, context: Path) -> None:
    """Build BUSYBOX_DOCKERFILE under ``tag`` (no internet needed) and push it."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    shutil.copy(busybox, context / "busybox")
    env = {"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin:/usr/sbin:/sbin"}
    subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, capture_output=True, env=env)
    subprocess.run(["docker", "push", tag], check=True, capture_output=True)


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
            raise RuntimeError("docker-registry is not installed: scripts/setup.sh installs it")
        self.root.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "REGISTRY_HTTP_ADDR": self.address,
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(self.root),
            "REGISTRY_LOG_LEVEL": "warn",
        }
        self.proc = spawn([binary, "serve", str(REGISTRY_CONFIG)], self.root.parent / "registry.log", env)
        wait_http(f"http://{self.address}/v2/", proc=self.proc)

    def stop(self) -> None:
        stop(self.proc)


@dataclass
class Server:
    db: Path
    registry: str
    extra_args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        self.proc = spawn(
            MEGAMIND + ["server", "--db", str(self.db), "--host", "127.0.0.1", "--port", str(self.port),
                        "--registry", self.registry, *self.extra_args],
            self.db.parent / f"server-{self.port}.log",
        )
        wait_http(self.url + "/api/v1/gethwlist", proc=self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> int | None:
        return stop(self.proc, sig)

    def create_account(self, name: str) -> str:
        """A new account; its api-key (the last line `megamind admin create-account` prints)."""
        out = subprocess.run(
            MEGAMIND + ["admin", "create-account", name, "--db", str(self.db)],
            check=True, capture_output=True, text=True, timeout=60,
        )
        return out.stdout.strip().splitlines()[-1]

    def set_rate_limit(self, name: str, limit: str) -> None:
        """Give every key of the account this limit (`megamind admin set-rate-limit`)."""
        listed = subprocess.run(
            MEGAMIND + ["admin", "list-keys", name, "--db", str(self.db), "--json"],
            check=True, capture_output=True, text=True, timeout=60,
        )
        for key in json.loads(listed.stdout):
            subprocess.run(
                MEGAMIND + ["admin", "set-rate-limit", name, str(key["id"]), limit, "--db", str(self.db)],
                check=True, capture_output=True, text=True, timeout=60,
            )


class ScriptedOutput:
    """A fake agent's side of task output: batches that continue each task's cursor,
    one engine nanosecond apart, as a real agent's follower would make them."""

    def __init__(self, clock_ns: int = 1_700_000_000_000_000_000) -> None:
        self.cursors: dict[str, LogCursor] = {}
        self._clock = clock_ns

    def batch(self, taskid: str, lines: list[str], stream: Stream = Stream.STDOUT) -> LogBatch:
        since = cursor = self.cursors.get(taskid, LogCursor())
        entries = []
        for line in lines:
            self._clock += 1
            entries.append(LogEntry(stream, self._clock, line))
            cursor = cursor.advanced(stream, self._clock)
        self.cursors[taskid] = cursor
        return LogBatch(taskid, since, cursor, tuple(entries))
