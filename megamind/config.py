"""Settings, given once at start-up; nothing reads the environment after this."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_HOME = Path(".megamind")
MiB = 1024 * 1024
# Polling gettasklist ten times a second is how the contract says to watch a task:
# the default per-key limit leaves room for that and for a few other calls beside it.
DEFAULT_RATE_LIMIT = "30/second;3000/minute"
# Executors registered per api-key: room for an agent that registers a few dozen slots at once.
DEFAULT_REGISTER_RATE_LIMIT = "30/minute;300/hour"
# The GPU job market's own limits per api-key, as its document states them.
DEFAULT_MARKET_RATE_LIMIT = "60/minute;1000/hour"
# What a dialect's job runs in when it names no image (the demo pushes it: a static busybox).
DEFAULT_IMAGE = "megamind.network/base:latest"
FLUX_SECRET_ENV = "MEGAMIND_FLUX_SECRET_KEY"


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
    # How often queued tasks past their queue_timeout are ended.
    queue_sweep_s: float = 1.0
    log_flush_s: float = 0.25
    # Each stream of each task is kept up to this; past it the oldest lines go.
    log_limit_bytes: int = 64 * MiB
    # A task's results archive, as the agent uploads it when the task ends.
    results_limit_bytes: int = 256 * MiB
    # One input file a customer uploads.
    max_file_bytes: int = 256 * MiB
    # Results and input files; None: `blobs` beside the database.
    blobs_dir: Path | None = None
    # A followed log ends after this long even while the task runs: the client asks again.
    follow_max_s: float = 3600.0
    key_cache_ttl_s: float = 2.0
    # A `limits` string per api-key ("none": unlimited); keys may carry their own.
    rate_limit: str = DEFAULT_RATE_LIMIT
    # Registrations of executors per api-key, counted apart from the calls above.
    register_rate_limit: str = DEFAULT_REGISTER_RATE_LIMIT
    # Executors an account may hold, removed ones not counted (None: no cap).
    max_executors_per_account: int | None = 100
    # With no flags, server and executor share this folder; see `local_account_key_file`.
    home: Path = DEFAULT_HOME
    create_local_account: bool = False
    # The platform's share of every charge (0.2: a fifth); owners earn the rest.
    platform_fee: float = 0.0
    # Off: runs are neither metered nor charged (a private fleet where money plays no part).
    metering: bool = True
    # How often runs of prepaid or spend-limited accounts are charged and their limits
    # checked: a balance goes below zero by at most this much run time.
    meter_interval_s: float = 5.0
    # Every other run under way is charged this often (its usage shows as it goes).
    meter_checkpoint_s: float = 60.0
    # Records of deleted tasks older than this many days are purged (None: kept).
    history_days: int | None = None
    # The key that signs registry tokens and its certificate; None: `registry-auth` beside
    # the database.  API processes that share a registry share this folder.
    registry_auth_dir: Path | None = None
    # Jobs of dialects that name no image run in this one.
    default_image: str = DEFAULT_IMAGE
    # Signs the JWTs of Flux's token flow (its users' `FLUX_SECRET_KEY`); None: a random
    # one per start, so only the api-key ways into /flux work across restarts.
    flux_secret_key: str | None = None
    market_rate_limit: str = DEFAULT_MARKET_RATE_LIMIT

    @property
    def local_account_key_file(self) -> Path:
        return self.home / "api-key"

    @property
    def blob_root(self) -> Path:
        return self.blobs_dir if self.blobs_dir is not None else self.db_path.parent / "blobs"

    @property
    def registry_auth_root(self) -> Path:
        return registry_auth_root(self.db_path, self.registry_auth_dir)


def registry_auth_root(db_path: Path, registry_auth_dir: Path | None = None) -> Path:
    """Where the registry's token key is, for the server and for `megamind registry-config` alike."""
    return registry_auth_dir if registry_auth_dir is not None else db_path.parent / "registry-auth"


@dataclass(frozen=True)
class AgentConfig:
    api_url: str = "http://127.0.0.1:8080"
    api_key: str | None = None
    state_dir: Path = DEFAULT_HOME / "executor"
    cost: float = 0.0
    # "isolated": the host's task network, a bridge with inter-container traffic off
    # (`executor.network`); or "bridge", "none", "host" (with allow_host_network), a network name.
    network: str = "isolated"
    labels: dict[str, str] = field(default_factory=dict)
    heartbeat_s: float = 5.0
    # Lines are shipped this long after they arrive, so lines of many tasks travel together.
    log_flush_s: float = 0.05
    docker_threads: int = 8
    pull_timeout_s: float = 600.0
    stop_timeout_s: int = 5
    resync_s: float = 30.0
    # Container limits the owner sets; None leaves the engine's default (with slots > 1,
    # each task's memory is its slot's share of the RAM all the same).
    memory_mb: int | None = None
    cpus: float | None = None
    pids_limit: int = 4096
    # One agent process can offer its host as several executors (slots); each slot
    # gets its own hwid and credential, a share of the GPUs and 1/slots of the RAM.
    slots: int = 1
    # Task containers never share the host's network stack unless the owner says so.
    allow_host_network: bool = False
    # The host address task ports are published on (0.0.0.0: all of them); sent to the API.
    publish_address: str = "0.0.0.0"
    # Images the agent pulled are kept to this many GB: unused ones go, least recently
    # used first (`executor.imagecache`); None: never pruned.
    image_cache_gb: float | None = 50.0
    # How often the image cache is pruned besides after each removed task.
    image_prune_s: float = 600.0
    # Size limit of each task container's writable layer, where the storage driver has one
    # (`executor.diskquota`); None: unbounded.
    disk_quota_gb: int | None = None
