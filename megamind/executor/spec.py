"""How a task becomes a container: labels, limits and isolation, as pure data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docker.types import LogConfig

from megamind.executor.gpu import Gpu, device_requests
from megamind.taskenv import PARAMS_ENV, TASK_ENV

LABEL_MANAGED = "network.megamind.managed"
LABEL_TASK = "network.megamind.task"
LABEL_HWID = "network.megamind.hwid"
LABEL_IMAGE = "network.megamind.image"

# Everything else is dropped: enough for ordinary programs (files they own, users
# they switch to, low ports, signals to their own children), nothing to reach the host.
ALLOWED_CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID", "NET_BIND_SERVICE", "KILL")

# The owner's disk is not the tenant's: at most 3 x 10 MB of logs per container.
LOG_CONFIG = LogConfig(type=LogConfig.types.JSON, config={"max-size": "10m", "max-file": "3"})



HOST_NETWORK = "host"


class HostNetworkRefused(ValueError):
    """The owner did not allow task containers on the host's network."""


@dataclass(frozen=True)
class Limits:
    network: str = "bridge"
    memory_mb: int | None = None
    cpus: float | None = None
    pids_limit: int = 4096

    @classmethod
    def checked(cls, network: str, allow_host_network: bool, **limits) -> "Limits":
        if network == HOST_NETWORK and not allow_host_network:
            raise HostNetworkRefused(
                "--network host gives tasks the host's network stack; pass --allow-host-network to allow it"
            )
        return cls(network=network, **limits)


def container_name(taskid: str) -> str:
    return f"megamind-{taskid}"


def task_labels(taskid: str, hwid: str, public_image: str, extra: dict[str, str]) -> dict[str, str]:
    return {**extra, LABEL_MANAGED: "1", LABEL_TASK: taskid, LABEL_HWID: hwid, LABEL_IMAGE: public_image}


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
) -> dict[str, Any]:
    """Keyword arguments for ``DockerClient.containers.create``."""
    kwargs: dict[str, Any] = {
        "image": image,
        "name": container_name(taskid),
        "labels": task_labels(taskid, hwid, public_image, extra_labels),
        "environment": {PARAMS_ENV: params, TASK_ENV: taskid},
        "detach": True,
        "tty": False,  # keeps stdout and stderr apart in the engine's log
        "stdin_open": False,
        "init": True,  # signals reach the process: a stop takes milliseconds
        "privileged": False,
        "network_mode": limits.network,
        "cap_drop": ["ALL"],
        "cap_add": list(ALLOWED_CAPABILITIES),
        "security_opt": ["no-new-privileges"],
        "pids_limit": limits.pids_limit,
        "log_config": LOG_CONFIG,
        "restart_policy": {"Name": "no"},
    }
    if limits.memory_mb:
        kwargs["mem_limit"] = f"{limits.memory_mb}m"
        kwargs["memswap_limit"] = f"{limits.memory_mb}m"
    if limits.cpus:
        kwargs["nano_cpus"] = int(limits.cpus * 1e9)
    requests = device_requests(gpus)
    if requests:
        kwargs["device_requests"] = requests
    return kwargs
