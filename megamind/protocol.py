"""Every message between the API and its agents, typed and written once.

One WebSocket per agent carries JSON objects with a ``type``.  A connection goes:

    agent -> api   hello {protocol, hardware, cost, publish_address}
    api -> agent   welcome {hwid, cursors, results_limit}   (or refused {message}, then close)
    agent -> api   inventory {containers}                  the executor is online from here
    api -> agent   command {id, op, taskid, ...}            pending ones first, then new ones
    agent -> api   state, phase, logs, ack, inventory       whenever they happen

Commands carry ids: the API resends every command not yet acknowledged after a
reconnect, and the agent applies each id at most once.  Log batches carry the
follower's position after them (a ``LogCursor``); the API keeps it with the lines
and hands it back in ``welcome``, so an agent resumes exactly where the API's copy ends.

``decode`` is the only way in: whatever an agent or an API sends that does not fit
raises ``ProtocolError``, and nothing else.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

# Output positions and the field reader's error are part of the protocol: named from here too.
from megamind.jobspec import PortMapping, RunSpec
from megamind.logpos import MAX_LINE_CHARS, LogCursor, LogEntry, Stream, StreamPosition  # noqa: F401
from megamind.states import TaskState
from megamind.wire import ProtocolError, read_enum, read_field, read_moment, read_taskid, storable_text

AGENT_PATH = "/api/agent/v1/connect"
REGISTER_PATH = "/api/agent/v1/register"
SPEEDTEST_PATH = "/api/agent/v1/speedtest"
RESULTS_PATH = "/api/agent/v1/results/{taskid}"  # PUT: the task's results as tar.gz
FILES_PATH = "/api/agent/v1/files/{file_id}"  # GET: an input file of a task on this executor
TOKEN_HEADER = "executor-token"
# 3: commands carry the task's own command, env, ports and limits (an agent of 2 would drop them).
PROTOCOL_VERSION = 4

# The contract's gettasklogs is the last 20 stdout lines.
TAIL_LINES = 20
# A WebSocket message, either way: a log batch is kept well under it by the agent.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_ERROR_CHARS = 4096
# Containers one inventory may name: far beyond what one engine runs for one executor.
MAX_INVENTORY = 10_000


class Op(str, Enum):
    START = "start"
    RESTART = "restart"
    REMOVE = "remove"
    STOP = "stop"  # stop the container, keep it (a task that must not run now)


class Phase(str, Enum):
    """Where a task in setup has got to, as the agent reports it."""

    PULLING = "pulling"
    CREATING = "creating"
    STARTING = "starting"
    RESTARTING = "restarting"


class ContainerStatus(str, Enum):
    """What an agent says of a container in its inventory."""

    RUNNING = "running"
    EXITED = "exited"
    # An operation, or the shipping of its last output, is under way: its outcome
    # will be reported by a state message.
    BUSY = "busy"
    CREATED = "created"  # made, never started


# --- the messages --------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerReport:
    taskid: str
    status: ContainerStatus
    exit_code: int | None = None
    started_at: float | None = None  # the engine's start of its last run, on the agent's clock

    def to_wire(self) -> dict[str, Any]:
        return {"taskid": self.taskid, "status": self.status.value, "exit_code": self.exit_code,
                "started_at": self.started_at}

    @classmethod
    def from_wire(cls, value: Any) -> "ContainerReport":
        if not isinstance(value, dict):
            raise ProtocolError("inventory.containers: each item is an object")
        return cls(
            read_taskid(value),
            read_enum(ContainerStatus, read_field(value, "status", str), "status"),
            read_field(value, "exit_code", int, optional=True),
            read_moment(value, "started_at"),
        )


@dataclass(frozen=True)
class Message:
    type: ClassVar[str]

    def body(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_wire(self) -> dict[str, Any]:
        return {"type": self.type, **self.body()}

    def encode(self) -> str:
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Message":
        raise NotImplementedError


@dataclass(frozen=True)
class Hello(Message):
    type: ClassVar[str] = "hello"
    protocol: int
    hardware: dict[str, Any]
    cost: float
    # Where the agent publishes task ports; "" or 0.0.0.0: every address of its host.
    publish_address: str = ""

    def body(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "hardware": self.hardware, "cost": self.cost,
                "publish_address": self.publish_address}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Hello":
        cost = read_field(data, "cost", (int, float), optional=True, default=0.0)
        if not 0 <= cost < float("inf"):
            raise ProtocolError("cost: must be a non-negative number")
        return cls(
            read_field(data, "protocol", int),
            read_field(data, "hardware", dict, optional=True, default={}),
            float(cost),
            storable_text(read_field(data, "publish_address", str, optional=True, default=""), 64),
        )


@dataclass(frozen=True)
class Welcome(Message):
    type: ClassVar[str] = "welcome"
    hwid: str
    # Where the API's copy of each task's output ends, for the tasks it holds on this executor.
    cursors: dict[str, LogCursor]
    results_limit: int  # bytes of a task's results the API accepts (the server's option)

    def body(self) -> dict[str, Any]:
        return {
            "hwid": self.hwid,
            "cursors": {taskid: cursor.to_wire() for taskid, cursor in self.cursors.items()},
            "results_limit": self.results_limit,
        }

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Welcome":
        cursors = read_field(data, "cursors", dict, optional=True, default={})
        return cls(
            read_field(data, "hwid", str),
            {str(t): LogCursor.from_wire(c, f"cursors.{t}") for t, c in cursors.items()},
            read_field(data, "results_limit", int),
        )


@dataclass(frozen=True)
class Refused(Message):
    """The API will not serve this agent (a protocol version it does not speak)."""

    type: ClassVar[str] = "refused"
    message: str

    def body(self) -> dict[str, Any]:
        return {"message": self.message}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Refused":
        return cls(storable_text(read_field(data, "message", str), MAX_ERROR_CHARS))


@dataclass(frozen=True)
class InputFile:
    """A file the customer uploaded, to be put at /megamind/input/<name> before the start."""

    file_id: str
    name: str
    size: int

    def to_wire(self) -> dict[str, Any]:
        return {"file_id": self.file_id, "name": self.name, "size": self.size}

    @classmethod
    def from_wire(cls, value: Any) -> "InputFile":
        if not isinstance(value, dict):
            raise ProtocolError("inputs: each item is an object")
        name = read_field(value, "name", str)
        if not name or "/" in name or name in (".", "..") or "\0" in name:
            raise ProtocolError(f"inputs.name: {name!r} is not a plain file name")
        return cls(read_field(value, "file_id", str), name, read_field(value, "size", int))


@dataclass(frozen=True)
class Command(Message):
    type: ClassVar[str] = "command"
    id: int
    op: Op
    taskid: str
    image: str = ""  # where the engine pulls it from (start, restart)
    public_image: str = ""  # the name the customer gave
    params: str = ""
    inputs: tuple[InputFile, ...] = ()
    spec: RunSpec = RunSpec()
    # A registry token for the image's repository, pull only, minted as the command is sent
    # and never stored with it; "" pulls without one (a registry without auth, an older API).
    pull_token: str = ""

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "op": self.op.value, "taskid": self.taskid}
        if self.op in (Op.START, Op.RESTART):
            body.update(image=self.image, public_image=self.public_image or self.image, params=self.params,
                        inputs=[i.to_wire() for i in self.inputs], spec=self.spec.to_wire())
            if self.pull_token:
                body["pull_token"] = self.pull_token
        return body

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Command":
        op = read_enum(Op, read_field(data, "op", str), "op")
        runs = op in (Op.START, Op.RESTART)
        image = read_field(data, "image", str, optional=not runs, default="")
        return cls(
            read_field(data, "id", int),
            op,
            read_taskid(data),
            image,
            read_field(data, "public_image", str, optional=True, default=image),
            read_field(data, "params", str, optional=True, default=""),
            tuple(InputFile.from_wire(i) for i in read_field(data, "inputs", list, optional=True, default=[])),
            RunSpec.from_wire(read_field(data, "spec", dict, optional=True, default={})),
            read_field(data, "pull_token", str, optional=True, default=""),
        )

    def run_payload(self) -> dict[str, Any]:
        """What is stored with the command to build it again (everything but id, op, taskid,
        and the pull token, which is minted anew for each sending)."""
        return {k: v for k, v in self.body().items() if k not in ("id", "op", "taskid", "pull_token")}


@dataclass(frozen=True)
class Inventory(Message):
    type: ClassVar[str] = "inventory"
    containers: tuple[ContainerReport, ...]
    sent_at: float | None = None  # the agent's clock as it sent this: where its times sit on the API's

    def body(self) -> dict[str, Any]:
        return {"containers": [c.to_wire() for c in self.containers], "sent_at": self.sent_at}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Inventory":
        containers = read_field(data, "containers", list)
        if len(containers) > MAX_INVENTORY:
            raise ProtocolError(f"inventory.containers: {len(containers)} items, more than {MAX_INVENTORY}")
        return cls(tuple(ContainerReport.from_wire(c) for c in containers), read_moment(data, "sent_at"))


@dataclass(frozen=True)
class StateReport(Message):
    type: ClassVar[str] = "state"
    taskid: str
    state: TaskState
    error_msg: str = ""
    exit_code: int | None = None
    ports: tuple[PortMapping, ...] = ()  # with running: where the task's ports are published
    # The engine's start and end of the run, and the agent's clock as it sent this; a run
    # is billed by these (`megamind.metering`).
    started_at: float | None = None
    finished_at: float | None = None
    sent_at: float | None = None

    def body(self) -> dict[str, Any]:
        return {"taskid": self.taskid, "state": int(self.state), "error_msg": self.error_msg,
                "exit_code": self.exit_code, "ports": [p.to_wire() for p in self.ports],
                "started_at": self.started_at, "finished_at": self.finished_at, "sent_at": self.sent_at}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "StateReport":
        state = read_enum(TaskState, read_field(data, "state", int), "state")
        if state is TaskState.UNKNOWN:
            raise ProtocolError("state: agents report known states only")
        return cls(
            read_taskid(data),
            state,
            storable_text(read_field(data, "error_msg", str, optional=True, default=""), MAX_ERROR_CHARS),
            read_field(data, "exit_code", int, optional=True),
            tuple(PortMapping.from_wire(p) for p in read_field(data, "ports", list, optional=True, default=[])),
            read_moment(data, "started_at"),
            read_moment(data, "finished_at"),
            read_moment(data, "sent_at"),
        )


@dataclass(frozen=True)
class PhaseReport(Message):
    type: ClassVar[str] = "phase"
    taskid: str
    phase: Phase

    def body(self) -> dict[str, Any]:
        return {"taskid": self.taskid, "phase": self.phase.value}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "PhaseReport":
        return cls(read_taskid(data), read_enum(Phase, read_field(data, "phase", str), "phase"))


@dataclass(frozen=True)
class LogBatch(Message):
    """Lines of one task in the order the engine logged them, and where reading stands after them.

    ``since`` is where reading stood before them: a batch that does not continue the
    API's copy exactly (a stale one from a replaced link) is not kept.
    """

    type: ClassVar[str] = "logs"
    taskid: str
    since: LogCursor
    cursor: LogCursor
    entries: tuple[LogEntry, ...]

    def body(self) -> dict[str, Any]:
        return {"taskid": self.taskid, "since": self.since.to_wire(), "cursor": self.cursor.to_wire(),
                "entries": [e.to_wire() for e in self.entries]}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "LogBatch":
        return cls(
            read_taskid(data),
            LogCursor.from_wire(read_field(data, "since", dict), "since"),
            LogCursor.from_wire(read_field(data, "cursor", dict), "cursor"),
            tuple(LogEntry.from_wire(e) for e in read_field(data, "entries", list)),
        )


@dataclass(frozen=True)
class Ack(Message):
    type: ClassVar[str] = "ack"
    id: int

    def body(self) -> dict[str, Any]:
        return {"id": self.id}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Ack":
        return cls(read_field(data, "id", int))


AGENT_MESSAGES: dict[str, type[Message]] = {
    m.type: m for m in (Hello, Inventory, StateReport, PhaseReport, LogBatch, Ack)
}
API_MESSAGES: dict[str, type[Message]] = {m.type: m for m in (Welcome, Refused, Command)}


def decode(raw: str | bytes, kinds: dict[str, type[Message]]) -> Message:
    """One message of ``kinds`` from its JSON text; anything else raises ProtocolError."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message must be a JSON object")
    kind = data.get("type")
    message_type = kinds.get(kind) if isinstance(kind, str) else None
    if message_type is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    return message_type.from_body(data)
