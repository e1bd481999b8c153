"""What the API answers, as typed objects."""

from __future__ import annotations

import base64
import binascii
import shlex
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, TypeVar

from megamind.client.errors import TransportError
from megamind.client.spec import Requirements, TaskLimits
from megamind.states import TaskState

__all__ = ["Executor", "FileInfo", "HardwareItem", "Image", "PublishedPort", "QUEUED_PHASE", "Results", "Task",
           "TaskLogs", "TaskState", "state_name"]

T = TypeVar("T")

# The task detail's phase while a task waits for an executor (the agent's own phases are
# megamind.protocol.Phase).
QUEUED_PHASE = "queued"


def state_name(state: TaskState) -> str:
    """``running``, ``error``, ...: the contract's name of a state."""
    return state.name.lower()


def _state(value: Any) -> TaskState:
    try:
        return TaskState(int(value))
    except (TypeError, ValueError):
        raise TransportError(f"the API answered an unknown task state {value!r}") from None


@dataclass(frozen=True)
class HardwareItem:
    """A free executor, as ``gethwlist`` lists it."""

    hwid: str
    gpus: list[str]
    cpus: list[str]
    ram: int  # MB
    network: str
    rating: float  # the contract's calculated_perfomance_rating
    cost: float  # per hour of task run time

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "HardwareItem":
        return cls(
            hwid=data["hwid"],
            gpus=list(data["gpus"]),
            cpus=list(data["cpus"]),
            ram=int(data["ram"]),
            network=data["network"],
            rating=float(data["calculated_perfomance_rating"]),
            cost=float(data["cost"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The contract's shape."""
        return {
            "hwid": self.hwid,
            "gpus": list(self.gpus),
            "cpus": list(self.cpus),
            "ram": self.ram,
            "network": self.network,
            "calculated_perfomance_rating": self.rating,
            "cost": self.cost,
        }


@dataclass(frozen=True)
class Results:
    """What a task left under /megamind/output/, as the task detail describes it."""

    size: int  # bytes of the tar.gz
    truncated: int  # files left out: with them the results would have passed the platform's bound
    created_at: float

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Results":
        return cls(size=int(data["size"]), truncated=int(data["truncated"]), created_at=float(data["created_at"]))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PublishedPort:
    """A task's port as published on its executor's host: reach it at ``address:host``."""

    container: int
    host: int | None  # None until the engine has bound it (the task is not running yet)
    address: str | None  # the executor's address for it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "PublishedPort":
        host, address = data.get("host"), data.get("address")
        return cls(container=int(data["container"]), host=None if host is None else int(host),
                   address=address or None)

    @property
    def endpoint(self) -> str | None:
        """``203.0.113.7:32768``, once both are known."""
        return f"{self.address}:{self.host}" if self.address and self.host else None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _command(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):  # as given to addtask; the API runs it split as a shell would
        try:
            return tuple(shlex.split(value))
        except ValueError:
            return (value,)
    return tuple(str(word) for word in value)


def _optional(value: Any, kind: Callable[[Any], T]) -> T | None:
    return None if value is None else kind(value)


@dataclass(frozen=True)
class Task:
    """A task, as ``gettasklist`` lists it; ``GET /api/v1/task/<id>`` fills in the rest."""

    taskid: str
    ip: str
    image: str
    params: str
    state: TaskState
    error_msg: str
    # Known only from the single-task call (None from gettasklist).
    hwid: str | None = None  # also None while the task is queued
    executor_online: bool | None = None
    pending_command: str | None = None
    phase: str | None = None  # queued, pulling, creating, starting, restarting
    progress: float | None = None  # 0-100, from the task's last MEGAMIND_PROGRESS=<n> line
    results: Results | None = None  # None until the task has left results
    created_at: float | None = None
    updated_at: float | None = None
    # What the task asked for (addtask's job fields).
    requirements: Requirements | None = None
    command: tuple[str, ...] | None = None  # None: the image's CMD
    env: dict[str, str] | None = None
    workdir: str | None = None
    ports: tuple[PublishedPort, ...] | None = None
    limits: TaskLimits | None = None
    priority: int | None = None
    # While it waits for an executor; None once placed.
    queue_position: int | None = None  # 1 is next
    pending_reason: str | None = None  # why it waits, for a person
    # How it went.
    exit_code: int | None = None
    cancelled: bool | None = None
    price: float | None = None  # per hour, fixed when the task was placed
    billed_seconds: float | None = None
    cost: float | None = None
    placed_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    deleted: bool | None = None  # known from history, which keeps deleted tasks

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Task":
        ports = data.get("ports")
        return cls(
            taskid=data["taskid"],
            ip=data["ip"],
            image=data["image"],
            params=data["params"],
            state=_state(data["state"]),
            error_msg=data["error_msg"],
            hwid=data.get("hwid"),
            executor_online=data.get("executor_online"),
            pending_command=data.get("pending_command"),
            phase=data.get("phase"),
            progress=_optional(data.get("progress"), float),
            results=_optional(data.get("results"), Results.from_json),
            created_at=data.get("created_at"),
            updated_at=data.get("updated_at"),
            requirements=_optional(data.get("requirements"), Requirements.from_dict),
            command=_command(data.get("command")),
            env=_optional(data.get("env"), dict),
            workdir=data.get("workdir"),
            ports=None if ports is None else tuple(PublishedPort.from_json(p) for p in ports),
            limits=_optional(data.get("limits"), TaskLimits.from_wire),
            priority=_optional(data.get("priority"), int),
            queue_position=_optional(data.get("queue_position"), int),
            pending_reason=data.get("pending_reason"),
            exit_code=_optional(data.get("exit_code"), int),
            cancelled=_optional(data.get("cancelled"), bool),
            price=_optional(data.get("price"), float),
            billed_seconds=_optional(data.get("billed_seconds"), float),
            cost=_optional(data.get("cost"), float),
            placed_at=data.get("placed_at"),
            started_at=data.get("started_at"),
            finished_at=data.get("finished_at"),
            deleted=_optional(data.get("deleted"), bool),
        )

    @property
    def state_name(self) -> str:
        return state_name(self.state)

    @property
    def finished(self) -> bool:
        """Stopped or error: nothing changes until it is restarted."""
        return self.state.finished

    @property
    def queued(self) -> bool:
        """Waiting for an executor that meets its requirements."""
        return self.phase == QUEUED_PHASE

    def to_json(self) -> dict[str, Any]:
        """The contract's shape, the state's name, and whatever else is known."""
        data = {
            "taskid": self.taskid,
            "ip": self.ip,
            "image": self.image,
            "params": self.params,
            "state": int(self.state),
            "state_name": self.state_name,
            "error_msg": self.error_msg,
        }
        for name in ("hwid", "executor_online", "pending_command", "phase", "progress", "created_at",
                     "updated_at", "workdir", "priority", "queue_position", "pending_reason", "exit_code",
                     "cancelled", "price", "billed_seconds", "cost", "placed_at", "started_at", "finished_at",
                     "deleted"):
            if getattr(self, name) is not None:
                data[name] = getattr(self, name)
        if self.results is not None:
            data["results"] = self.results.to_json()
        if self.requirements is not None:
            data["requirements"] = self.requirements.to_dict()
        if self.command is not None:
            data["command"] = list(self.command)
        if self.env is not None:
            data["env"] = dict(self.env)
        if self.ports is not None:
            data["ports"] = [p.to_json() for p in self.ports]
        if self.limits is not None:
            data["limits"] = self.limits.to_wire()
        return data


@dataclass(frozen=True)
class FileInfo:
    """A file uploaded for tasks' inputs (``POST /api/v1/files``): addtask takes its ``file_id``."""

    file_id: str
    name: str  # where a task finds it: /megamind/input/<name>
    size: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "FileInfo":
        return cls(file_id=str(data["file_id"]), name=str(data["name"]), size=int(data["size"]))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def file_ids(inputs: Iterable[str | FileInfo]) -> list[str]:
    """Uploaded files (their ids, or what an upload returned) as addtask's ``inputs``."""
    return [i.file_id if isinstance(i, FileInfo) else str(i) for i in inputs]


@dataclass(frozen=True)
class TaskLogs:
    """The last 20 lines a task wrote to stdout, decoded from ``logs_b64``."""

    taskid: str
    data: bytes = field(repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TaskLogs":
        try:
            raw = base64.b64decode(data["logs_b64"], validate=True)
        except (binascii.Error, ValueError):
            raise TransportError("the API answered logs_b64 that is not base64") from None
        return cls(taskid=data["taskid"], data=raw)

    @property
    def text(self) -> str:
        """The lines as text, each ended by a newline (bytes that are not UTF-8 are replaced)."""
        return self.data.decode("utf-8", errors="replace")

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()

    def to_json(self) -> dict[str, Any]:
        return {"taskid": self.taskid, "lines": self.lines}


_EXECUTOR_KEYS = ("hwid", "status", "online", "busy", "taskid", "gpus", "cpus", "ram", "network",
                  "calculated_perfomance_rating", "cost", "ip", "last_seen")


@dataclass(frozen=True)
class Executor(HardwareItem):
    """One of the caller's own executors (``GET /api/v1/executors``): gethwlist's item,
    and what its owner may know besides."""

    status: str  # offline, free or busy
    online: bool
    busy: bool
    taskid: str | None  # the holding task when it is the caller's own
    ip: str
    last_seen: float | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Executor":
        return cls(
            **vars(HardwareItem.from_json(data)),
            status=data["status"],
            online=bool(data["online"]),
            busy=bool(data["busy"]),
            taskid=data.get("taskid"),
            ip=data["ip"],
            last_seen=data.get("last_seen"),
        )

    def to_json(self) -> dict[str, Any]:
        """The API's shape."""
        data = asdict(self)
        data["calculated_perfomance_rating"] = data.pop("rating")
        return {key: data[key] for key in _EXECUTOR_KEYS}


@dataclass(frozen=True)
class Image:
    """A name:tag of the platform's registry (``GET /api/v1/images``)."""

    image: str  # megamind.network/<name>:<tag>, what addtask takes
    name: str
    tag: str
    owner: str | None = None  # the account that pushed it first; None: nobody since auth
    public: bool = False  # any account may run it

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Image":
        return cls(image=data["image"], name=data["name"], tag=data["tag"], owner=data.get("owner"),
                   public=bool(data.get("public", False)))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
