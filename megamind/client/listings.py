"""Where tasks can go, where they wait and where they went: the hardware listing with
every figure, the account's queue, and the paged task listings (live tasks, history)
with their queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Union

from megamind.client.models import HardwareItem, Task, state_name
from megamind.states import TaskState

__all__ = ["HardwareDetail", "HardwarePage", "QueuedTask", "TaskPage", "TimeBound", "history_query",
           "range_query", "task_page_query", "time_bound"]

# A bound of a range of time: a day (the day's start, in the API's days), a moment, a
# ``YYYY-MM-DD`` or Unix seconds as text, or Unix seconds.
TimeBound = Union[dt.date, dt.datetime, str, int, float]


@dataclass(frozen=True)
class HardwareDetail(HardwareItem):
    """An executor as ``GET /api/v1/hardware`` lists it: gethwlist's item and every figure
    placement goes by."""

    cpu_count: int  # logical CPUs a task can use
    gpu_memory_mb: list[int]  # one per GPU, in the order of ``gpus``
    status: str  # free, busy or offline
    slots: int | None  # how many executors its agent offers its host as, when it says

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "HardwareDetail":
        slots = data.get("slots")
        return cls(
            **vars(HardwareItem.from_json(data)),
            cpu_count=int(data["cpu_count"]),
            gpu_memory_mb=[int(mb) for mb in data["gpu_memory_mb"]],
            status=str(data["status"]),
            slots=None if slots is None else int(slots),
        )

    def to_json(self) -> dict[str, Any]:
        """The API's shape: gethwlist's fields, then the figures."""
        return {**super().to_json(), "cpu_count": self.cpu_count, "gpu_memory_mb": list(self.gpu_memory_mb),
                "status": self.status, "slots": self.slots}


@dataclass(frozen=True)
class HardwarePage:
    """One page of the hardware listing and how many executors match in all."""

    executors: list[HardwareDetail]
    total: int

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "HardwarePage":
        return cls(executors=[HardwareDetail.from_json(i) for i in data["executors"]], total=int(data["total"]))

    def __iter__(self) -> Iterator[HardwareDetail]:
        return iter(self.executors)

    def __len__(self) -> int:
        return len(self.executors)

    def to_json(self) -> dict[str, Any]:
        return {"executors": [e.to_json() for e in self.executors], "total": self.total}


@dataclass(frozen=True)
class QueuedTask:
    """One of the account's tasks waiting for an executor (``GET /api/v1/queue``)."""

    taskid: str
    image: str
    priority: int
    queue_position: int  # 1 is next
    pending_reason: str  # why it waits, for a person
    created_at: float
    queue_deadline: float | None  # when it gives up waiting (Unix time)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "QueuedTask":
        deadline = data.get("queue_deadline")
        return cls(
            taskid=str(data["taskid"]),
            image=str(data["image"]),
            priority=int(data["priority"]),
            queue_position=int(data["queue_position"]),
            pending_reason=str(data.get("pending_reason") or ""),
            created_at=float(data["created_at"]),
            queue_deadline=None if deadline is None else float(deadline),
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TaskPage:
    """One page of tasks, newest first, and how to ask for the next (``GET /api/v1/history``,
    ``GET /api/v1/tasks``)."""

    tasks: list[Task]
    total: int  # tasks that match, on every page
    has_more: bool
    next_cursor: str | None  # the ``cursor`` of the next page; None on the last

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "TaskPage":
        cursor = data.get("next_cursor")
        return cls(tasks=[Task.from_json(t) for t in data["tasks"]], total=int(data["total"]),
                   has_more=bool(data["has_more"]), next_cursor=None if cursor is None else str(cursor))

    def __iter__(self) -> Iterator[Task]:
        return iter(self.tasks)

    def __len__(self) -> int:
        return len(self.tasks)

    def to_json(self) -> dict[str, Any]:
        return {"tasks": [t.to_json() for t in self.tasks], "total": self.total, "has_more": self.has_more,
                "next_cursor": self.next_cursor}


def time_bound(value: TimeBound) -> str:
    """A bound as the API takes it: ``YYYY-MM-DD`` for a day, Unix seconds for a moment (a
    naive datetime is local time); text is sent as given, for the API to judge."""
    if isinstance(value, dt.datetime):  # before date: a datetime is a date too
        value = value.timestamp()
    elif isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{value!r} is not a date, a datetime, a string or Unix seconds")
    return str(int(value)) if value == int(value) else repr(float(value))


def _state_query(state: TaskState | int | str) -> str:
    """A state as the listings take it: its name (``running``)."""
    if isinstance(state, str):
        return state
    if isinstance(state, bool) or not isinstance(state, int):
        raise TypeError(f"{state!r} is not a task state")
    return state_name(TaskState(state))  # an unknown number: ValueError


def task_page_query(*, state: TaskState | int | str | None = None, image: str | None = None,
                    limit: int | None = None, cursor: str | None = None) -> dict[str, str]:
    """The paged listings' query: only what is given (the API's defaults for the rest)."""
    query = {}
    if state is not None:
        query["state"] = _state_query(state)
    for name, value in (("image", image), ("limit", limit), ("cursor", cursor)):
        if value is not None:
            query[name] = str(value)
    return query


def history_query(*, from_: TimeBound | None = None, to: TimeBound | None = None,
                  state: TaskState | int | str | None = None, image: str | None = None,
                  limit: int | None = None, cursor: str | None = None) -> dict[str, str]:
    """History's query: the range, then the listing's own."""
    return {**range_query(from_, to), **task_page_query(state=state, image=image, limit=limit, cursor=cursor)}


def range_query(from_: TimeBound | None, to: TimeBound | None) -> dict[str, str]:
    """``from`` and ``to``, those given: history's, usage's and earnings' range."""
    return {name: time_bound(value) for name, value in (("from", from_), ("to", to)) if value is not None}
