"""What a task asks of its container: command, environment, folder, ports and limits.

The API validates these (``megamind/api/schemas.py`` states the ranges from here),
stores them with the task, and sends them in every start and restart command; the
agent turns them into the container's settings and enforces the runtime limit.
The messages a limit ends a task with are written here once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from megamind.wire import ProtocolError, read_field

ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME = re.compile(ENV_NAME_PATTERN)
RESERVED_ENV_PREFIX = "MEGAMIND_"  # the platform's own variables (taskenv.py)

MAX_PORT = 65535
MAX_PORTS = 32
MAX_ENV = 256
MAX_COMMAND_WORDS = 1024

PRIORITY_MIN, PRIORITY_MAX, DEFAULT_PRIORITY = 0, 100, 50
DEFAULT_QUEUE_TIMEOUT_S = 86_400
MAX_QUEUE_TIMEOUT_S = 30 * 86_400
MAX_LIMIT_S = 366 * 86_400  # runtime and cputime

# GET /api/v1/hardware: what an executor can be doing, and the orders of the listing.
EXECUTOR_STATUSES = ("free", "busy", "offline")
HARDWARE_SORTS = ("cost", "rating", "ram", "gpus", "cpus")


def runtime_limit_reached(seconds: int) -> str:
    return f"runtime limit of {seconds} s reached"


def out_of_memory(memory_mb: int | None) -> str:
    return f"out of memory (limit {memory_mb} MB)" if memory_mb else "out of memory"


def cputime_limit_reached(seconds: int) -> str:
    return f"cpu time limit of {seconds} s reached"


def queue_timed_out(seconds: int) -> str:
    return f"no executor found within the queue timeout of {seconds} s"


@dataclass(frozen=True)
class TaskLimits:
    cpus: float | None = None  # CPU share, as docker run --cpus
    memory: int | None = None  # MB
    cputime: int | None = None  # seconds of CPU time (RLIMIT_CPU)
    runtime: int | None = None  # seconds of wall clock per run, enforced by the agent

    def to_wire(self) -> dict[str, Any]:
        return {k: v for k, v in (("cpus", self.cpus), ("memory", self.memory), ("cputime", self.cputime),
                                  ("runtime", self.runtime)) if v is not None}

    @classmethod
    def from_wire(cls, value: Any) -> "TaskLimits":
        if not isinstance(value, dict):
            raise ProtocolError("limits: must be an object")
        cpus = read_field(value, "cpus", (int, float), optional=True)
        return cls(
            float(cpus) if cpus is not None else None,
            read_field(value, "memory", int, optional=True),
            read_field(value, "cputime", int, optional=True),
            read_field(value, "runtime", int, optional=True),
        )


@dataclass(frozen=True)
class PortRequest:
    """A container port to publish; ``host`` None lets the engine pick a free one."""

    container: int
    host: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"container": self.container, "host": self.host}

    @classmethod
    def from_wire(cls, value: Any) -> "PortRequest":
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(_port(value, "ports"))
        if not isinstance(value, dict):
            raise ProtocolError("ports: each item is a port number or an object")
        host = read_field(value, "host", int, optional=True)
        return cls(_port(read_field(value, "container", int), "ports.container"),
                   _port(host, "ports.host") if host else None)


@dataclass(frozen=True)
class PortMapping:
    """A published port as the engine bound it on the executor's host."""

    container: int
    host: int

    def to_wire(self) -> dict[str, Any]:
        return {"container": self.container, "host": self.host}

    @classmethod
    def from_wire(cls, value: Any) -> "PortMapping":
        if not isinstance(value, dict):
            raise ProtocolError("ports: each item is an object")
        return cls(_port(read_field(value, "container", int), "ports.container"),
                   _port(read_field(value, "host", int), "ports.host"))


def _port(value: int, name: str) -> int:
    if not 1 <= value <= MAX_PORT:
        raise ProtocolError(f"{name}: {value} is not a port (1-{MAX_PORT})")
    return value


@dataclass(frozen=True)
class RunSpec:
    """The task's own command and surroundings; empty means the image as built."""

    command: tuple[str, ...] | None = None  # replaces the image's CMD
    env: dict[str, str] = field(default_factory=dict)
    workdir: str | None = None
    ports: tuple[PortRequest, ...] = ()
    limits: TaskLimits = TaskLimits()

    def to_wire(self) -> dict[str, Any]:
        return {
            "command": list(self.command) if self.command is not None else None,
            "env": dict(self.env),
            "workdir": self.workdir,
            "ports": [p.to_wire() for p in self.ports],
            "limits": self.limits.to_wire(),
        }

    @classmethod
    def from_wire(cls, value: Any) -> "RunSpec":
        if not isinstance(value, dict):
            raise ProtocolError("spec: must be an object")
        command = read_field(value, "command", list, optional=True)
        if command is not None and not all(isinstance(word, str) for word in command):
            raise ProtocolError("spec.command: every word is a string")
        env = read_field(value, "env", dict, optional=True, default={})
        for name, text in env.items():
            if not ENV_NAME.match(name) or name.startswith(RESERVED_ENV_PREFIX) or not isinstance(text, str):
                raise ProtocolError(f"spec.env: {name!r} is not a variable a task may set")
        return cls(
            tuple(command) if command is not None else None,
            dict(env),
            read_field(value, "workdir", str, optional=True),
            tuple(PortRequest.from_wire(p) for p in read_field(value, "ports", list, optional=True, default=[])),
            TaskLimits.from_wire(read_field(value, "limits", dict, optional=True, default={})),
        )
