"""How a task becomes a container: labels, limits and isolation, as pure data.

Two parties set limits: the executor's owner (``--memory``, ``--cpus``: ``Limits``) and
the task (``RunSpec.limits``).  Where both set one, the smaller applies.  The owner's memory
limit is the slot's share of the RAM (all of it with one slot) unless ``--memory`` is smaller.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docker.types import LogConfig, Ulimit

from megamind.config import AgentConfig
from megamind.executor.gpu import Gpu, device_requests
from megamind.jobspec import RunSpec
from megamind.taskenv import PARAMS_ENV, TASK_ENV

LABEL_MANAGED = "network.megamind.managed"
LABEL_TASK = "network.megamind.task"
LABEL_HWID = "network.megamind.hwid"
LABEL_IMAGE = "network.megamind.image"
# The limits a task's end is explained by, kept on the container itself: an agent
# restarted since the container was made still knows them.
LABEL_RUNTIME = "network.megamind.runtime"  # seconds per run, enforced by the agent
LABEL_MEMORY = "network.megamind.memory"  # MB, the smaller of the owner's and the task's
LABEL_CPUTIME = "network.megamind.cputime"  # seconds of CPU time (RLIMIT_CPU)

# Everything else is dropped: enough for ordinary programs (files they own, users
# they switch to, low ports, signals to their own children), nothing to reach the host.
ALLOWED_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID", "NET_BIND_SERVICE", "KILL")

# The owner's disk is not the tenant's: at most 3 x 10 MB of logs per container.
LOG_CONFIG = LogConfig(type=LogConfig.types.JSON, config={"max-size": "10m", "max-file": "3"})

HOST_NETWORK = "host"
NO_NETWORK = "none"
BRIDGE_NETWORK = "bridge"  # the engine's default bridge: tasks on it can reach each other
# The default mode: every task on one bridge of the host's with inter-container traffic
# off (`network.ensure_isolated` makes it).  Tasks reach the internet and publish ports,
# not each other, whichever slot or agent of the host runs them.
ISOLATED = "isolated"
ISOLATED_NETWORK = "megamind-isolated"
DEFAULT_PUBLISH_ADDRESS = "0.0.0.0"


def network_name(mode: str) -> str:
    """The engine's name for the owner's network mode: ``isolated`` is the host's task network."""
    return ISOLATED_NETWORK if mode == ISOLATED else mode


class HostNetworkRefused(ValueError):
    """The owner did not allow task containers on the host's network."""


class TaskRefused(ValueError):
    """The task asks for what this executor cannot give; the message says what, plainly."""


@dataclass(frozen=True)
class Limits:
    network: str = AgentConfig.network
    memory_mb: int | None = None
    cpus: float | None = None
    pids_limit: int = AgentConfig.pids_limit
    disk_quota_gb: int | None = None  # the writable layer's size, where the storage driver allows it

    @classmethod
    def checked(cls, network: str, allow_host_network: bool, **limits) -> Limits:
        if network == HOST_NETWORK and not allow_host_network:
            raise HostNetworkRefused(
                "--network host gives tasks the host's network stack; pass --allow-host-network to allow it"
            )
        return cls(network=network, **limits)

    @classmethod
    def of(cls, config: AgentConfig) -> Limits:
        """Every limit the owner's settings give a task container."""
        return cls.checked(
            config.network, config.allow_host_network, memory_mb=config.memory_mb, cpus=config.cpus,
            pids_limit=config.pids_limit, disk_quota_gb=config.disk_quota_gb,
        )


def container_name(taskid: str) -> str:
    return f"megamind-{taskid}"


def task_labels(taskid: str, hwid: str, public_image: str, extra: dict[str, str]) -> dict[str, str]:
    return {**extra, LABEL_MANAGED: "1", LABEL_TASK: taskid, LABEL_HWID: hwid, LABEL_IMAGE: public_image}


def _smaller(owner: float | None, task: float | None) -> float | None:
    if owner is None or task is None:
        return task if owner is None else owner
    return min(owner, task)


def limit_labels(limits: Limits, spec: RunSpec) -> dict[str, str]:
    """The limits a task's end may be explained by, as container labels."""
    labels = {}
    memory_mb = _smaller(limits.memory_mb, spec.limits.memory)
    if memory_mb:
        labels[LABEL_MEMORY] = str(memory_mb)
    if spec.limits.cputime:
        labels[LABEL_CPUTIME] = str(spec.limits.cputime)
    if spec.limits.runtime:
        labels[LABEL_RUNTIME] = str(spec.limits.runtime)
    return labels


def storage_opt(disk_quota_gb: int) -> dict[str, str]:
    """The engine's size limit of a writable layer (``diskquota`` says where it has one)."""
    return {"size": f"{disk_quota_gb}G"}


def port_bindings(limits: Limits, spec: RunSpec, publish_address: str) -> dict[str, tuple[str, int | None]]:
    """The task's ports as the SDK's ``ports``: each on the owner's address, None: any free port."""
    if not spec.ports:
        return {}
    if limits.network in (NO_NETWORK, HOST_NETWORK):
        # The engine would ignore the bindings and the task would wait for a port that never opens.
        raise TaskRefused(f"ports cannot be published: this executor runs tasks with --network {limits.network}")
    return {f"{port.container}/tcp": (publish_address, port.host) for port in spec.ports}


def create_kwargs(
    *,
    taskid: str,
    hwid: str,
    image: str,
    public_image: str,
    params: str,
    limits: Limits,
    gpus: list[Gpu],
    extra_labels: dict[str, str],
    spec: RunSpec = RunSpec(),
    publish_address: str = DEFAULT_PUBLISH_ADDRESS,
) -> dict[str, Any]:
    """Keyword arguments for ``DockerClient.containers.create``; ``TaskRefused`` if the
    task cannot run here as it asks."""
    kwargs: dict[str, Any] = {
        "image": image,
        "name": container_name(taskid),
        "labels": task_labels(taskid, hwid, public_image, {**extra_labels, **limit_labels(limits, spec)}),
        # The platform's variables last: a task's env never hides them.
        "environment": {**spec.env, PARAMS_ENV: params, TASK_ENV: taskid},
        "detach": True,
        "tty": False,  # keeps stdout and stderr apart in the engine's log
        "stdin_open": False,
        "init": True,  # signals reach the process: a stop takes milliseconds
        "privileged": False,
        "network_mode": network_name(limits.network),
        "cap_drop": ["ALL"],
        "cap_add": list(ALLOWED_CAPABILITIES),
        "security_opt": ["no-new-privileges"],
        "pids_limit": limits.pids_limit,
        "log_config": LOG_CONFIG,
        "restart_policy": {"Name": "no"},
    }
    if spec.command is not None:
        kwargs["command"] = list(spec.command)  # run as is, after the image's entrypoint
    if spec.workdir:
        kwargs["working_dir"] = spec.workdir
    ports = port_bindings(limits, spec, publish_address)
    if ports:
        kwargs["ports"] = ports
    memory_mb = _smaller(limits.memory_mb, spec.limits.memory)
    if memory_mb:
        # Swap as large as memory: the limit is memory, not memory and as much again on disk.
        kwargs["mem_limit"] = f"{memory_mb}m"
        kwargs["memswap_limit"] = f"{memory_mb}m"
    cpus = _smaller(limits.cpus, spec.limits.cpus)
    if cpus:
        kwargs["nano_cpus"] = int(cpus * 1e9)
    if spec.limits.cputime:
        # The kernel sends SIGXCPU at the soft limit (exit 152 = 128 + 24), SIGKILL a second later.
        kwargs["ulimits"] = [Ulimit(name="cpu", soft=spec.limits.cputime, hard=spec.limits.cputime + 1)]
    if limits.disk_quota_gb:
        kwargs["storage_opt"] = storage_opt(limits.disk_quota_gb)
    requests = device_requests(gpus)
    if requests:
        kwargs["device_requests"] = requests
    return kwargs
