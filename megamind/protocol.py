"""Every message between the API and its agents, typed and written once.

One WebSocket per agent carries JSON objects with a ``type``.  A connection goes:

    agent -> api   hello {protocol, hardware, cost}
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
from dataclasses import dataclass, field
from enum import Enum, IntEnum
from typing import Any, ClassVar, NamedTuple

from megamind.states import TaskState

AGENT_PATH = "/api/agent/v1/connect"
REGISTER_PATH = "/api/agent/v1/register"
SPEEDTEST_PATH = "/api/agent/v1/speedtest"
RESULTS_PATH = "/api/agent/v1/results/{taskid}"  # PUT: the task's results as tar.gz
FILES_PATH = "/api/agent/v1/files/{file_id}"  # GET: an input file of a task on this executor
TOKEN_HEADER = "executor-token"
PROTOCOL_VERSION = 2

# The contract's gettasklogs is the last 20 stdout lines; a line longer than this is cut.
TAIL_LINES = 20
MAX_LINE_CHARS = 64 * 1024
# A WebSocket message, either way: a log batch is kept well under it by the agent.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
MAX_ERROR_CHARS = 4096
REREAD_MARGIN_NS = 1_000_000_000


class ProtocolError(Exception):
    """A message that the protocol does not allow."""


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


class Stream(IntEnum):
    """A task's output streams, numbered as the engine's multiplexed stream numbers them."""

    STDOUT = 1
    STDERR = 2


_ENGINE_RUNNING = frozenset({"running", "paused", "restarting"})
_ENGINE_EXITED = frozenset({"exited", "dead"})


def container_status(engine_status: str) -> ContainerStatus:
    """The engine's word for a container (running, exited, dead, created, ...) as ours."""
    if engine_status in _ENGINE_RUNNING:
        return ContainerStatus.RUNNING
    if engine_status in _ENGINE_EXITED:
        return ContainerStatus.EXITED
    return ContainerStatus.CREATED


def task_state_of(status: ContainerStatus, exit_code: int | None) -> tuple[TaskState, str]:
    """The one mapping from a container's status to the task's state and error message."""
    if status is ContainerStatus.RUNNING:
        return TaskState.RUNNING, ""
    if status is ContainerStatus.EXITED:
        if not exit_code:
            return TaskState.STOPPED, ""
        return TaskState.ERROR, f"exited with code {exit_code}"
    if status is ContainerStatus.BUSY:
        raise ValueError("a busy container has no state yet")
    return TaskState.ERROR, f"container left {status.value}"


# --- reading fields ------------------------------------------------------------------


def _field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], *, optional: bool = False,
           default: Any = None) -> Any:
    if name not in data or data[name] is None:
        if optional:
            return default
        raise ProtocolError(f"{name}: missing")
    value = data[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ProtocolError(f"{name}: expected {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise ProtocolError(f"{name}: expected {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _enum(enum: type[Enum], value: Any, name: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise ProtocolError(f"{name}: unknown value {value!r}") from None


def _text(value: str, limit: int) -> str:
    """Text made storable: cut to a bound, lone surrogates (not encodable as UTF-8) replaced."""
    return value[:limit].encode("utf-8", "replace").decode("utf-8")


def _taskid(data: dict[str, Any]) -> str:
    taskid = _field(data, "taskid", str)
    if not 0 < len(taskid) <= 64:
        raise ProtocolError("taskid: must be 1 to 64 characters")
    return taskid


# --- log positions ---------------------------------------------------------------------


@dataclass(frozen=True)
class StreamPosition:
    """How far one stream has been read: its last engine timestamp, and how many lines
    carried exactly that timestamp (timestamps of one stream never go back)."""

    ns: int = 0
    at_ns: int = 0

    def to_wire(self) -> list[int]:
        return [self.ns, self.at_ns]

    @classmethod
    def from_wire(cls, value: Any, name: str) -> "StreamPosition":
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)):
            raise ProtocolError(f"{name}: expected [ns, count], two non-negative integers")
        return cls(value[0], value[1])

    def after(self, ns: int) -> "StreamPosition":
        """The position once a line stamped ``ns`` has been read too."""
        return StreamPosition(ns, self.at_ns + 1 if ns == self.ns else 1)

    def has_read(self, ns: int, seen_at_ns: int) -> bool:
        """Whether a line stamped ``ns``, the ``seen_at_ns``-th of that stamp (from 1), was read."""
        return ns < self.ns or (ns == self.ns and seen_at_ns <= self.at_ns)


@dataclass(frozen=True)
class LogCursor:
    """Where a task's output has been read up to, both streams."""

    stdout: StreamPosition = field(default_factory=StreamPosition)
    stderr: StreamPosition = field(default_factory=StreamPosition)

    def of(self, stream: Stream) -> StreamPosition:
        return self.stdout if stream is Stream.STDOUT else self.stderr

    def advanced(self, stream: Stream, ns: int) -> "LogCursor":
        if stream is Stream.STDOUT:
            return LogCursor(self.stdout.after(ns), self.stderr)
        return LogCursor(self.stdout, self.stderr.after(ns))

    @property
    def since_ns(self) -> int:
        """Where a re-read must start in the engine's log to miss nothing of either stream.

        The engine stamps each stream's lines as it copies them, so across streams its
        file is in time order only to within a moment; the margin covers that, and a
        stream that never printed does not send every re-read back to the start.
        """
        read = [p.ns for p in (self.stdout, self.stderr) if p.ns]
        return max(0, min(read) - REREAD_MARGIN_NS) if read else 0

    def to_wire(self) -> dict[str, list[int]]:
        return {"stdout": self.stdout.to_wire(), "stderr": self.stderr.to_wire()}

    @classmethod
    def from_wire(cls, value: Any, name: str = "cursor") -> "LogCursor":
        if not isinstance(value, dict):
            raise ProtocolError(f"{name}: expected an object")
        return cls(
            StreamPosition.from_wire(value.get("stdout", [0, 0]), f"{name}.stdout"),
            StreamPosition.from_wire(value.get("stderr", [0, 0]), f"{name}.stderr"),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_wire(), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> "LogCursor":
        return cls() if not text else cls.from_wire(json.loads(text))


class LogEntry(NamedTuple):
    """One line a task printed, or (``dropped`` > 0) how many lines of a stream the agent
    had to drop at this place because the link or the API could not keep up.

    A tuple: a chatty task makes hundreds of thousands of these a second.
    """

    stream: Stream
    ns: int  # the engine's timestamp, nanoseconds since the epoch (of the last dropped line)
    text: str = ""
    dropped: int = 0

    def to_wire(self) -> list[Any]:
        if self.dropped:
            return [int(self.stream), self.ns, "", self.dropped]
        return [int(self.stream), self.ns, self.text]

    @classmethod
    def from_wire(cls, value: Any) -> "LogEntry":
        if not isinstance(value, list) or len(value) not in (3, 4):
            raise ProtocolError("logs.entries: each entry is [stream, ns, text] or [stream, ns, '', dropped]")
        stream = _enum(Stream, value[0], "logs.entries.stream")
        ns, text = value[1], value[2]
        if not isinstance(ns, int) or isinstance(ns, bool) or ns < 0:
            raise ProtocolError("logs.entries.ns: expected a non-negative integer")
        if not isinstance(text, str):
            raise ProtocolError("logs.entries.text: expected a string")
        dropped = value[3] if len(value) == 4 else 0
        if not isinstance(dropped, int) or isinstance(dropped, bool) or dropped < 0:
            raise ProtocolError("logs.entries.dropped: expected a non-negative integer")
        return cls(stream, ns, _text(text, MAX_LINE_CHARS), dropped)


# --- the messages --------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerReport:
    taskid: str
    status: ContainerStatus
    exit_code: int | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"taskid": self.taskid, "status": self.status.value, "exit_code": self.exit_code}

    @classmethod
    def from_wire(cls, value: Any) -> "ContainerReport":
        if not isinstance(value, dict):
            raise ProtocolError("inventory.containers: each item is an object")
        return cls(
            _taskid(value),
            _enum(ContainerStatus, _field(value, "status", str), "status"),
            _field(value, "exit_code", int, optional=True),
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

    def body(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "hardware": self.hardware, "cost": self.cost}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Hello":
        cost = _field(data, "cost", (int, float), optional=True, default=0.0)
        if not 0 <= cost < float("inf"):
            raise ProtocolError("cost: must be a non-negative number")
        return cls(
            _field(data, "protocol", int),
            _field(data, "hardware", dict, optional=True, default={}),
            float(cost),
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
        cursors = _field(data, "cursors", dict, optional=True, default={})
        return cls(
            _field(data, "hwid", str),
            {str(t): LogCursor.from_wire(c, f"cursors.{t}") for t, c in cursors.items()},
            _field(data, "results_limit", int),
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
        return cls(_text(_field(data, "message", str), MAX_ERROR_CHARS))


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
        name = _field(value, "name", str)
        if not name or "/" in name or name in (".", "..") or "\0" in name:
            raise ProtocolError(f"inputs.name: {name!r} is not a plain file name")
        return cls(_field(value, "file_id", str), name, _field(value, "size", int))


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

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "op": self.op.value, "taskid": self.taskid}
        if self.op in (Op.START, Op.RESTART):
            body.update(image=self.image, public_image=self.public_image or self.image, params=self.params,
                        inputs=[i.to_wire() for i in self.inputs])
        return body

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Command":
        op = _enum(Op, _field(data, "op", str), "op")
        runs = op in (Op.START, Op.RESTART)
        image = _field(data, "image", str, optional=not runs, default="")
        return cls(
            _field(data, "id", int),
            op,
            _taskid(data),
            image,
            _field(data, "public_image", str, optional=True, default=image),
            _field(data, "params", str, optional=True, default=""),
            tuple(InputFile.from_wire(i) for i in _field(data, "inputs", list, optional=True, default=[])),
        )

    def run_payload(self) -> dict[str, Any]:
        """What is stored with the command to build it again (everything but id, op, taskid)."""
        return {k: v for k, v in self.body().items() if k not in ("id", "op", "taskid")}


@dataclass(frozen=True)
class Inventory(Message):
    type: ClassVar[str] = "inventory"
    containers: tuple[ContainerReport, ...]

    def body(self) -> dict[str, Any]:
        return {"containers": [c.to_wire() for c in self.containers]}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Inventory":
        return cls(tuple(ContainerReport.from_wire(c) for c in _field(data, "containers", list)))


@dataclass(frozen=True)
class StateReport(Message):
    type: ClassVar[str] = "state"
    taskid: str
    state: TaskState
    error_msg: str = ""
    exit_code: int | None = None

    def body(self) -> dict[str, Any]:
        return {"taskid": self.taskid, "state": int(self.state), "error_msg": self.error_msg,
                "exit_code": self.exit_code}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "StateReport":
        state = _enum(TaskState, _field(data, "state", int), "state")
        if state is TaskState.UNKNOWN:
            raise ProtocolError("state: agents report known states only")
        return cls(
            _taskid(data),
            state,
            _text(_field(data, "error_msg", str, optional=True, default=""), MAX_ERROR_CHARS),
            _field(data, "exit_code", int, optional=True),
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
        return cls(_taskid(data), _enum(Phase, _field(data, "phase", str), "phase"))


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
            _taskid(data),
            LogCursor.from_wire(_field(data, "since", dict), "since"),
            LogCursor.from_wire(_field(data, "cursor", dict), "cursor"),
            tuple(LogEntry.from_wire(e) for e in _field(data, "entries", list)),
        )


@dataclass(frozen=True)
class Ack(Message):
    type: ClassVar[str] = "ack"
    id: int

    def body(self) -> dict[str, Any]:
        return {"id": self.id}

    @classmethod
    def from_body(cls, data: dict[str, Any]) -> "Ack":
        return cls(_field(data, "id", int))


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
