"""The platform as real processes on 127.0.0.1, for the end-to-end tests and the benchmarks.

A registry (Debian's Distribution binary) with token auth, `megamind server`, and helpers
to wait for them and stop them.  Nothing here is used by the platform itself.

The registry trusts one signing key, in a folder every server that uses it is given
(``--registry-auth-dir``), and sends engines to one server for their tokens: start that
server on ``Registry.api_url``'s port.  Images are pushed with an account's credentials.
"""

from __future__ import annotations

import base64
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
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from megamind.client.push import parse_target, push_image
from megamind.protocol import LogBatch, LogCursor, LogEntry, Stream
from megamind.registryauth.distconfig import TOKEN_PATH
from megamind.registryauth.keys import ensure_signing_key
from megamind.registryauth.tokens import (
    PULL,
    PUSH,
    REPOSITORY,
    TOKEN_TTL_S,
    Access,
    mint,
)

MEGAMIND = [sys.executable, "-m", "megamind.cli"]
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


def build_busybox_image(tag: str, context: Path, credentials: tuple[str, str]) -> None:
    """Build BUSYBOX_DOCKERFILE under ``tag`` (REGISTRY/NAME:TAG; no internet needed) and push it
    as ``credentials`` (an account's name and api-key), which makes that account its owner."""
    busybox = shutil.which("busybox") or "/bin/busybox"
    context.mkdir(parents=True, exist_ok=True)
    (context / "Dockerfile").write_text(BUSYBOX_DOCKERFILE)
    shutil.copy(busybox, context / "busybox")
    env = {"DOCKER_BUILDKIT": "0", "PATH": "/usr/bin:/bin:/usr/local/bin:/usr/sbin:/sbin"}
    subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], check=True, capture_output=True, env=env)
    push_as(tag, credentials)


def push_as(tag: str, credentials: tuple[str, str]) -> None:
    """Push the engine's REGISTRY/NAME:TAG as an account (its name, an api-key)."""
    registry, _, rest = tag.partition("/")
    push_image(tag, registry, parse_target(rest), *credentials)


@dataclass
class Registry:
    """Distribution with ``auth: token``: it trusts the key in ``auth_dir`` and sends engines
    for tokens to the API at ``api_url`` (start that server on its port)."""

    root: Path
    api_url: str
    auth_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def api_port(self) -> int:
        return int(urllib.parse.urlsplit(self.api_url).port or 80)

    def start(self) -> None:
        binary = shutil.which("docker-registry")
        if binary is None:
            raise RuntimeError("docker-registry is not installed: scripts/setup.sh installs it")
        self.root.mkdir(parents=True, exist_ok=True)
        config = subprocess.run(
            MEGAMIND + ["registry-config", "--registry-auth-dir", str(self.auth_dir), "--api-url", self.api_url,
                        "--addr", self.address, "--root", str(self.root)],
            check=True, capture_output=True, text=True, timeout=60,
        ).stdout
        config_file = self.root.parent / f"registry-{self.port}.yml"
        config_file.write_text(config)
        env = {**os.environ, "REGISTRY_LOG_LEVEL": "warn"}
        self.proc = spawn([binary, "serve", str(config_file)], self.root.parent / "registry.log", env)
        wait_http(f"http://{self.address}/v2/", proc=self.proc)

    def stop(self) -> None:
        stop(self.proc)

    def token(self, name: str, actions: tuple[str, ...] = (PULL,), ttl_s: int = TOKEN_TTL_S,
              now: float | None = None, subject: str = "test") -> str:
        """A token signed by the servers' key, as the token server would mint it."""
        key = ensure_signing_key(self.auth_dir)
        return mint(key, subject, [Access(REPOSITORY, name, actions)], ttl_s, now).token


@dataclass
class Server:
    db: Path
    registry: str
    extra_args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    # Shared with the registry (Registry.auth_dir), so that it trusts this server's tokens.
    registry_auth_dir: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.db.parent.mkdir(parents=True, exist_ok=True)
        auth = ["--registry-auth-dir", str(self.registry_auth_dir)] if self.registry_auth_dir else []
        self.proc = spawn(
            MEGAMIND + ["server", "--db", str(self.db), "--host", "127.0.0.1", "--port", str(self.port),
                        "--registry", self.registry, *auth, *self.extra_args],
            self.db.parent / f"server-{self.port}.log",
        )
        wait_http(self.url + "/api/v1/gethwlist", proc=self.proc)

    def registry_token(self, scopes: list[str], credentials: tuple[str, str] | None = None) -> dict:
        """The token server's answer, as an engine gets it (anonymous without credentials)."""
        query = urllib.parse.urlencode([("service", "megamind-registry"), *(("scope", s) for s in scopes)])
        request = urllib.request.Request(f"{self.url}{TOKEN_PATH}?{query}")
        if credentials is not None:
            basic = base64.b64encode(":".join(credentials).encode()).decode()
            request.add_header("Authorization", f"Basic {basic}")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def set_image_public(self, name: str, key: str, public: bool = True) -> dict:
        request = urllib.request.Request(f"{self.url}/api/v1/images", method="PATCH",
                                         data=json.dumps({"name": name, "public": public}).encode(),
                                         headers={"api-key": key, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.load(answer)

    def claim_image(self, name: str, credentials: tuple[str, str], public: bool = True) -> None:
        """Make the account the owner of ``name`` on this server (as its first push would) and,
        with ``public``, let every account run it: a server of its own that shares a registry
        whose images another server's accounts pushed."""
        self.registry_token([f"{REPOSITORY}:{name}:{PUSH}"], credentials)
        if public:
            self.set_image_public(name, credentials[1])

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
