"""Which executors can hold a task: its requirements and limits against an executor's size.

Pure logic, used by the store's placement, the queue's explanations, the 422 for
requirements nothing meets, and the hardware listing's filters.  The store narrows
candidates in SQL on the same figures (`Capacity.columns`); `fits` has the last word.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from megamind.jobspec import TaskLimits

GPU_NAME_SEPARATOR = "\n"  # between the GPU names the store keeps in one column
REQUIREMENT_FIELDS = ("gpus", "gpu_model", "min_vram_mb", "cpus", "ram", "max_cost", "min_rating")


@dataclass(frozen=True)
class Requirements:
    gpus: int | None = None  # at least this many GPUs
    gpu_model: str | None = None  # every GPU's name contains this, case-insensitive
    min_vram_mb: int | None = None  # every GPU has at least this much memory
    cpus: int | None = None  # at least this many logical CPUs
    ram: int | None = None  # MB
    max_cost: float | None = None  # per hour
    min_rating: float | None = None  # calculated_perfomance_rating

    def to_dict(self) -> dict[str, Any]:
        """Only the requirements that are set."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Requirements":
        """From a mapping such as a stored or answered one; names it does not know are left out."""
        return cls(**{k: data[k] for k in REQUIREMENT_FIELDS if data.get(k) is not None})

    @classmethod
    def of(cls, value: "Requirements | Mapping[str, Any]") -> "Requirements":
        """A Requirements as given, or built from a mapping of its fields (unknown names: TypeError)."""
        return value if isinstance(value, cls) else cls(**value)

    @property
    def wants_gpu(self) -> bool:
        return bool(self.gpus) or self.gpu_model is not None or self.min_vram_mb is not None


@dataclass(frozen=True)
class Need:
    """A task's requirements and limits as the figures an executor must reach."""

    gpus: int
    vram_mb: int
    cpus: int  # logical CPUs
    cpu_share: float  # the CPU limit it will run with
    ram: int  # MB: the larger of the RAM asked for and the memory limit
    max_cost: float | None
    min_rating: float | None
    gpu_model: str | None

    @classmethod
    def of(cls, requirements: Requirements, limits: TaskLimits) -> "Need":
        return cls(
            gpus=max(requirements.gpus or 0, 1 if requirements.wants_gpu else 0),
            vram_mb=requirements.min_vram_mb or 0,
            cpus=requirements.cpus or 0,
            cpu_share=limits.cpus or 0.0,
            ram=max(requirements.ram or 0, limits.memory or 0),
            max_cost=requirements.max_cost,
            min_rating=requirements.min_rating,
            gpu_model=requirements.gpu_model.lower() if requirements.gpu_model else None,
        )


@dataclass(frozen=True)
class Capacity:
    """An executor's size as a task can use it (the agent reports it capped by the owner)."""

    hwid: str
    gpu_names: tuple[str, ...]
    gpu_memory_mb: tuple[int, ...]
    cpu_count: int
    cpu_share: float  # the most CPU a task may be given: the owner's --cpus, else cpu_count
    ram: int
    rating: float
    cost: float

    @classmethod
    def of(cls, hwid: str, hardware: Mapping[str, Any], cost: float) -> "Capacity":
        cpu_count = int(hardware.get("cpu_count") or len(hardware.get("cpus") or ()) or 0)
        cpu_limit = hardware.get("cpu_limit")
        return cls(
            hwid=hwid,
            gpu_names=tuple(str(g) for g in hardware.get("gpus") or ()),
            gpu_memory_mb=tuple(int(m) for m in hardware.get("gpu_memory_mb") or ()),
            cpu_count=cpu_count,
            cpu_share=float(min(cpu_limit, cpu_count) if cpu_limit else cpu_count),
            ram=int(hardware.get("ram") or 0),
            rating=float(hardware.get("calculated_perfomance_rating") or 0.0),
            cost=float(cost),
        )

    @classmethod
    def of_columns(cls, row: Mapping[str, Any]) -> "Capacity":
        """From the size columns the store keeps (`columns`), without reading the hardware JSON.
        GPU names come back lower-cased, which is all `fits` compares."""
        names = tuple(row["gpu_names"].split(GPU_NAME_SEPARATOR)) if row["gpu_names"] else ()
        return cls(hwid=row["hwid"], gpu_names=names, gpu_memory_mb=(row["min_vram_mb"],) * len(names),
                   cpu_count=row["cpu_count"], cpu_share=row["cpu_share"], ram=row["ram_mb"],
                   rating=row["rating"], cost=row["cost"])

    @property
    def min_vram_mb(self) -> int:
        """The smallest GPU's memory; 0 when any GPU's memory is unknown."""
        if not self.gpu_names or len(self.gpu_memory_mb) < len(self.gpu_names):
            return 0
        return min(self.gpu_memory_mb)

    def columns(self) -> dict[str, Any]:
        """The figures the store keeps as columns, to narrow candidates in SQL."""
        return {"gpu_count": len(self.gpu_names), "min_vram_mb": self.min_vram_mb, "cpu_count": self.cpu_count,
                "cpu_share": self.cpu_share, "ram_mb": self.ram, "rating": self.rating,
                "gpu_names": GPU_NAME_SEPARATOR.join(name.lower() for name in self.gpu_names)}


def shortfalls(need: Need, cap: Capacity) -> list[str]:
    """What this executor lacks for the task, in the requirement's own words; empty: it fits."""
    missing = []
    if len(cap.gpu_names) < need.gpus:
        missing.append(f"gpus >= {need.gpus}")
    if need.gpu_model and not (cap.gpu_names and all(need.gpu_model in name.lower() for name in cap.gpu_names)):
        missing.append(f"gpu_model {need.gpu_model!r}")
    if need.vram_mb and cap.min_vram_mb < need.vram_mb:
        missing.append(f"min_vram_mb >= {need.vram_mb}")
    if cap.cpu_count < need.cpus:
        missing.append(f"cpus >= {need.cpus}")
    if cap.cpu_share + 1e-9 < need.cpu_share:
        missing.append(f"limits.cpus {need.cpu_share:g}")
    if cap.ram < need.ram:
        missing.append(f"ram >= {need.ram} MB")
    if need.max_cost is not None and cap.cost > need.max_cost:
        missing.append(f"max_cost <= {need.max_cost:g}")
    if need.min_rating is not None and cap.rating < need.min_rating:
        missing.append(f"min_rating >= {need.min_rating:g}")
    return missing


def fits(need: Need, cap: Capacity) -> bool:
    return not shortfalls(need, cap)


def placement_order(cap: Capacity) -> tuple[float, float, str]:
    """Cheapest first; between equals, the higher rating."""
    return (cap.cost, -cap.rating, cap.hwid)


def never_fits(need: Need, executors: Iterable[Capacity]) -> str:
    """Why no registered executor could ever hold the task, for the 422's message."""
    executors = list(executors)
    if not executors:
        return "no executor is registered on this platform"
    lacks = [set(shortfalls(need, cap)) for cap in executors]
    nowhere = sorted(set.intersection(*lacks)) if lacks else []
    if nowhere:
        return "no executor meets " + ", ".join(nowhere)
    # Each figure alone is met somewhere, just never all on one executor.
    asked = sorted(set.union(*lacks))
    return "no single executor meets all of " + ", ".join(asked)


def pending_reason(fitting: int, busy: int, offline: int) -> str:
    """Why a queued task waits, in numbers a person can act on."""
    executors = "1 executor fits" if fitting == 1 else f"{fitting} executors fit"
    if fitting == 0:
        return "no executor fits any more (the ones that did were changed or removed)"
    parts = []
    if busy:
        parts.append("busy" if busy == fitting == 1 else ("both busy" if busy == fitting == 2 else
                     ("all busy" if busy == fitting else f"{busy} busy")))
    if offline:
        parts.append("offline" if offline == fitting == 1 else ("all offline" if offline == fitting else
                     f"{offline} offline"))
    if not parts:
        return f"{executors}; waiting for its turn"
    return f"{executors}; " + ", ".join(parts)
