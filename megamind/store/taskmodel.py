"""What the task store hands out: tasks, their detail, and the commands kept for executors."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from megamind import protocol
from megamind.jobspec import DEFAULT_PRIORITY, DEFAULT_QUEUE_TIMEOUT_S, PortMapping, RunSpec
from megamind.placement import Requirements
from megamind.protocol import Op
from megamind.states import TaskState


@dataclass(frozen=True)
class Task:
    taskid: str
    account_id: int
    hwid: str | None  # None while queued
    image: str
    params: str
    state: TaskState
    error_msg: str
    deleted: bool
    ip: str = ""  # the executor's address, filled in by listings
    cancelled: bool = False

    @property
    def retired(self) -> bool:
        """Deleted or cancelled: its container must not run any more."""
        return self.deleted or self.cancelled


@dataclass(frozen=True)
class Command:
    """A command stored for an executor until its agent acknowledges it."""

    id: int
    hwid: str
    taskid: str
    op: Op
    payload: dict[str, Any]  # protocol.Command's fields beyond id, op and taskid

    def message(self) -> protocol.Command:
        return protocol.Command.from_body({"id": self.id, "op": self.op.value, "taskid": self.taskid, **self.payload})


@dataclass(frozen=True)
class NewTask:
    """An accepted addtask, before it is placed or queued."""

    account_id: int
    image: str  # the public name
    params: str
    start_payload: dict[str, Any]  # the start command's fields beyond id, op and taskid
    inputs: tuple[str, ...] = ()  # file ids
    hwid: str | None = None  # named by the customer: run exactly there
    requirements: Requirements = Requirements()
    spec: RunSpec = RunSpec()
    priority: int = DEFAULT_PRIORITY
    queue_timeout: int = DEFAULT_QUEUE_TIMEOUT_S
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Results:
    """The archive of files a task left in /megamind/output/, as its agent uploaded it."""

    size: int  # bytes of the tar.gz
    truncated: int  # files the agent left out to stay within the bound
    created_at: float


@dataclass(frozen=True)
class TaskDetail:
    task: Task  # with the executor's address
    created_at: float
    updated_at: float
    pending_command: str | None  # the newest command the agent has not acknowledged
    progress: float | None = None  # the task's last MEGAMIND_PROGRESS line, 0-100
    results: Results | None = None
    requirements: Requirements = Requirements()
    spec: RunSpec = RunSpec()
    priority: int = DEFAULT_PRIORITY
    queued: bool = False
    queue_timeout: int | None = None
    price: float | None = None
    placed_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    ports: tuple[PortMapping, ...] = ()
    publish_address: str = ""  # where the executor publishes ports; "" or 0.0.0.0: its address
    # The ledger's totals for the task (``store/ledger.py`` keeps them with each charge).
    billed_ms: int = 0
    cost_micro: int = 0
    deleted_at: float | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def cancelled(self) -> bool:
        """Cancelled by its customer (the platform's own stops end in state 5, not 4)."""
        return self.task.cancelled and self.task.state == TaskState.STOPPED


# One task in full, deleted ones included: `detail_of_row` reads a row of these.
DETAIL_COLUMNS = (
    "t.taskid, t.account_id, t.hwid, t.image, t.params, t.state, t.error_msg, t.deleted,"
    " t.cancelled, e.ip, t.created_at, t.updated_at,"
    " (SELECT op FROM commands c WHERE c.taskid = t.taskid AND c.done = 0 ORDER BY c.id DESC LIMIT 1),"
    " t.progress, t.results_size, t.results_truncated, t.results_at, t.requirements, t.spec,"
    " t.priority, t.queued, t.queue_timeout, t.price, t.placed_at, t.started_at, t.finished_at,"
    " t.exit_code, t.ports, e.publish_address, t.billed_ms, t.cost_micro, t.deleted_at, t.labels"
)
DETAIL_FROM = "FROM tasks t LEFT JOIN executors e ON e.hwid = t.hwid"


def detail_of_row(row) -> TaskDetail:
    results = Results(row[14], row[15], row[16]) if row[14] is not None else None
    return TaskDetail(
        task_of_row(row, row[9] or ""), row[10], row[11], row[12], row[13], results,
        requirements=Requirements.from_dict(json.loads(row[17])),
        spec=RunSpec.from_wire(json.loads(row[18])),
        priority=row[19], queued=bool(row[20]), queue_timeout=row[21], price=row[22], placed_at=row[23],
        started_at=row[24], finished_at=row[25], exit_code=row[26],
        ports=tuple(PortMapping.from_wire(p) for p in json.loads(row[27])),
        publish_address=row[28] or "", billed_ms=row[29], cost_micro=row[30], deleted_at=row[31],
        labels=json.loads(row[32]),
    )


class StateUpdate(NamedTuple):
    taskid: str
    state: TaskState
    error_msg: str
    exit_code: int | None = None
    ports: tuple[PortMapping, ...] = ()
    # The engine's word on the run, as the agent reported it: its start on the agent's
    # clock (which run it is), and its start and end moved onto the API's clock.
    run_key: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


@dataclass
class StateChanges:
    changed: list[str] = field(default_factory=list)  # taskids whose state changed
    stops: list[Command] = field(default_factory=list)  # to send: containers that must not run
    freed: bool = False  # a task let go of the executor: the queue may have work for it


COLUMNS = "taskid, account_id, hwid, image, params, state, error_msg, deleted, cancelled"
_STATES = {int(state): state for state in TaskState}
_new = object.__new__


def task_of_row(row, ip: str = "") -> Task:
    """A Task from a row in `COLUMNS` order.

    Listings build one per row on every request, so the frozen instance is filled in
    directly: the same fields the generated ``__init__`` sets, without a guarded
    ``__setattr__`` per field (a listing of 100 tasks costs 20 us instead of 200).
    """
    task = _new(Task)
    task.__dict__.update(
        taskid=row[0],
        account_id=row[1],
        hwid=row[2],
        image=row[3],
        params=row[4],
        state=_STATES[row[5]],
        error_msg=row[6],
        deleted=bool(row[7]),
        cancelled=bool(row[8]),
        ip=ip,
    )
    return task


def is_live_task_conflict(exc: sqlite3.IntegrityError) -> bool:
    return "tasks.hwid" in str(exc)


async def enqueue_command(conn, hwid: str, taskid: str, op: Op, payload: dict[str, Any], now: float) -> Command:
    cursor = await conn.execute(
        "INSERT INTO commands (hwid, taskid, op, payload, created_at) VALUES (?, ?, ?, ?, ?)",
        (hwid, taskid, op.value, json.dumps(payload), now),
    )
    return Command(cursor.lastrowid, hwid, taskid, op, payload)
