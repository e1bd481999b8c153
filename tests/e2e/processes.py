"""Agents as real processes for the end-to-end tests, and an engine restart.

The registry and the API server come from `megamind.testing`, shared with the benchmarks.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from megamind.testing import MEGAMIND, Registry, Server, stop  # noqa: F401  (re-exported for the tests)


@dataclass
class Executor:
    api_url: str
    api_key: str
    state_dir: Path
    labels: dict[str, str]
    extra_args: tuple[str, ...] = ()
    proc: subprocess.Popen | None = None
    env: dict[str, str] | None = None  # the agent's whole environment; None: this process's

    @property
    def hwid(self) -> str | None:
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
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, env=self.env)

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
        return self.log_text().count("megamind.executor.link: connected to")

    def online(self) -> bool:
        """Whether the API counts this executor online: it is welcomed first, and online once
        the API has read its inventory (only then may tasks be placed on it)."""
        request = urllib.request.Request(f"{self.api_url}/api/v1/executors", headers={"api-key": self.api_key})
        with urllib.request.urlopen(request, timeout=5) as answer:
            return any(item["hwid"] == self.hwid and item["online"] for item in json.load(answer))


def _alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped by its parent) is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def restart_dockerd(downtime_s: float, timeout: float = 60.0) -> None:
    """Stop the engine, keep it down for ``downtime_s``, start it again as it was started."""
    pid = int(subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=True).stdout.split()[0])
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid):
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
