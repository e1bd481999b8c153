"""Real processes for end-to-end tests: the registry, the API server, agents."""

from __future__ import annotations

import os
import shlex
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

MEGAMIND = [sys.executable, "-m", "megamind.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
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


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


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
            raise RuntimeError("docker-registry is not installed: run scripts/test, which installs it")
        config = Path(__file__).resolve().parents[2] / "registry" / "config.yml"
        env = {
            **os.environ,
            "REGISTRY_HTTP_ADDR": self.address,
            "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": str(self.root),
            "REGISTRY_LOG_LEVEL": "warn",
        }
        with open(self.root.parent / "registry.log", "ab") as log:
            self.proc = subprocess.Popen([binary, "serve", str(config)], env=env, stdout=log, stderr=log)
        wait_http(f"http://{self.address}/v2/", proc=self.proc)

    def stop(self) -> None:
        if self.proc:
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
        with open(self.db.parent / f"server-{self.port}.log", "ab") as log:
            self.proc = subprocess.Popen(
                MEGAMIND + ["server", "--db", str(self.db), "--host", "127.0.0.1",
                            "--port", str(self.port), "--registry", self.registry],
                stdout=log, stderr=log,
            )
        wait_http(self.url + "/api/v1/gethwlist", proc=self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        return stop(self.proc, sig)

    def create_account(self, name: str) -> str:
        out = subprocess.run(
            MEGAMIND + ["admin", "create-account", name, "--db", str(self.db)],
            check=True, capture_output=True, text=True, timeout=30,
        )
        return out.stdout.strip().splitlines()[-1]


@dataclass
class Executor:
    api_url: str
    api_key: str
    state_dir: Path
    labels: dict[str, str]
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None

    @property
    def hwid(self) -> str | None:
        import json

        try:
            return json.loads((self.state_dir / "identity.json").read_text())["hwid"]
        except FileNotFoundError:
            return None

    def start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        args = MEGAMIND + ["executor", "--api", self.api_url, "--api-key", self.api_key,
                           "--state-dir", str(self.state_dir), "--network", "none", "--cost", "0.5"]
        for key, value in self.labels.items():
            args += ["--label", f"{key}={value}"]
        args += list(self.extra_args)
        with open(self.state_dir / "agent.log", "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        return stop(self.proc, sig)

    def log_text(self) -> str:
        try:
            return (self.state_dir / "agent.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def connections(self) -> int:
        """How many times the agent has said it is connected (the API welcomed it)."""
        return self.log_text().count("megamind.executor.agent: connected to")


def restart_dockerd(downtime_s: float, timeout: float = 60.0) -> None:
    """Stop the engine, keep it down for ``downtime_s``, start it again as it was started."""
    pid = int(subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=True).stdout.split()[0])
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            raise TimeoutError("dockerd did not stop")
        time.sleep(0.1)
    time.sleep(downtime_s)
    # Detached through a shell: the engine outlives this test process, as it was before.
    command = " ".join(shlex.quote(a.decode()) for a in argv)
    subprocess.run(["sh", "-c", f"setsid {command} >>/var/log/megamind-dockerd.log 2>&1 &"], check=True)
    while subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        if time.monotonic() > deadline:
            raise TimeoutError("dockerd did not come back")
        time.sleep(0.2)
