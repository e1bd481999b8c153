"""Where tasks can go and where they wait: the hardware listing with every figure, and
the account's queue."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

from megamind.client.models import HardwareItem

__all__ = ["HardwareDetail", "HardwarePage", "QueuedTask"]


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
