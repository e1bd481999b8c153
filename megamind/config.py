"""Settings, given once at start-up; nothing reads the environment after this."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOME = Path(".megamind")
# Polling gettasklist ten times a second is how the contract says to watch a task:
# the default per-key limit leaves room for that and for a few other calls beside it.
DEFAULT_RATE_LIMIT = "30/second;3000/minute"


@dataclass(frozen=True)
class ServerConfig:
    db_path: Path = DEFAULT_HOME / "megamind.db"
    host: str = "127.0.0.1"
    port: int = 8080
    # Where `megamind.network/...` really lives, as the executors' engines reach it.
    registry: str = "127.0.0.1:5000"
    max_body_bytes: int = 256 * 1024
    # WebSocket pings both ways; a silent agent is dropped after 1.5 heartbeats.
    heartbeat_s: float = 5.0
    # Nothing stays in setup forever, even if an agent never answers.
    setup_timeout_s: float = 900.0
    log_flush_s: float = 0.25
    key_cache_ttl_s: float = 2.0
    # A `limits` string per api-key ("none": unlimited); keys may carry their own.
    rate_limit: str = DEFAULT_RATE_LIMIT
    # With no flags, server and executor share this folder; see `local_account_key_file`.
    home: Path = DEFAULT_HOME
    create_local_account: bool = False

    @property
    def local_account_key_file(self) -> Path:
        return self.home / "api-key"


@dataclass(frozen=True)
class AgentConfig:
    api_url: str = "http://127.0.0.1:8080"
    api_key: str | None = None
    state_dir: Path = DEFAULT_HOME / "executor"
    cost: float = 0.0
    network: str = "bridge"
    labels: dict[str, str] = field(default_factory=dict)
    heartbeat_s: float = 5.0
    log_flush_s: float = 0.2
    docker_threads: int = 8
    pull_timeout_s: float = 600.0
    stop_timeout_s: int = 5
    resync_s: float = 30.0
    # Container limits the owner sets; None leaves the engine's default.
    memory_mb: int | None = None
    cpus: float | None = None
    pids_limit: int = 4096
    # One agent process can offer its host as several executors (slots); each slot
    # gets its own hwid and credential, a share of the GPUs and 1/slots of the RAM.
    slots: int = 1
    # Task containers never share the host's network stack unless the owner says so.
    allow_host_network: bool = False
