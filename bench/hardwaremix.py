"""A fleet of mixed hardware, and task requirements that some of it meets (pure: no I/O).

The simulated executors of the placement benchmark (`bench/simagents.py --hardware
mixed`) say hello with `executor_hardware(n)`: CPU-only boxes small and large, and GPU
boxes of four models, at prices that rise with the hardware.  The benchmark's clients
ask with `requirements_met_by(item)`, drawn from one executor as the API lists it, so
every task fits at least that executor and usually many more.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Profile:
    name: str
    share: float  # of the fleet
    cpu_model: str
    cpu_counts: tuple[int, ...]
    ram_mb: tuple[int, ...]
    gpu_label: str | None  # as the agent reports it: the model, then its memory
    gpu_memory_mb: int
    gpu_counts: tuple[int, ...]
    cost: tuple[float, float]  # per hour, drawn between


PROFILES = (
    Profile("cpu-small", 0.35, "Simulated Xeon E-2224", (2, 4), (4000, 8000), None, 0, (0,), (0.05, 0.15)),
    Profile("cpu-large", 0.20, "Simulated EPYC 7543", (16, 32, 64), (64000, 128000, 256000), None, 0, (0,),
            (0.30, 1.00)),
    Profile("gtx1060", 0.20, "Simulated Core i5-8400", (6, 8), (16000,), "NVIDIA GeForce GTX 1060 6G", 6144,
            (1,), (0.15, 0.40)),
    Profile("rtx3090", 0.12, "Simulated Ryzen 9 5950X", (16, 32), (64000,), "NVIDIA GeForce RTX 3090 24G", 24576,
            (1, 2), (0.80, 1.50)),
    Profile("rtx4090", 0.08, "Simulated Core i9-13900K", (24, 32), (64000, 128000), "NVIDIA GeForce RTX 4090 24G",
            24564, (1,), (1.00, 1.60)),
    Profile("a100", 0.05, "Simulated EPYC 7763", (64, 128), (512000,), "NVIDIA A100-SXM4 80G", 81920, (4, 8),
            (4.00, 10.00)),
)
SEED = 9  # the fleet is the same in every run


def profile_of(n: int) -> Profile:
    """The profile of the n-th executor: spread evenly, so any fleet size keeps the shares."""
    # The golden-ratio sequence visits [0, 1) evenly from any start, so 100 executors mix as 1,000 do.
    point = (n * 0.6180339887498949) % 1.0
    edge = 0.0
    for profile in PROFILES:
        edge += profile.share
        if point < edge:
            return profile
    return PROFILES[-1]


def executor_hardware(n: int) -> tuple[dict[str, Any], float]:
    """The hello hardware and the price of the n-th simulated executor, the same every run."""
    rng = random.Random(SEED * 1_000_003 + n)
    p = profile_of(n)
    cpu_count = rng.choice(p.cpu_counts)
    gpus = rng.choice(p.gpu_counts) if p.gpu_label else 0
    # As the agent rates hardware (megamind/executor/hardware.py): ~1 a core, and memory/4 x clock a GPU.
    rating = round(cpu_count * rng.uniform(0.8, 1.2) + gpus * p.gpu_memory_mb / 1024 / 4 * 1.9, 2)
    hardware = {
        "cpus": [p.cpu_model] * (2 if cpu_count >= 64 else 1),  # one name a socket
        "gpus": [p.gpu_label] * gpus,
        "gpu_memory_mb": [p.gpu_memory_mb] * gpus,
        "cpu_count": cpu_count,
        "cpu_limit": None,
        "ram": rng.choice(p.ram_mb),
        "network": "1000mbit",
        "calculated_perfomance_rating": rating,
        "slots": 1,
    }
    return hardware, round(rng.uniform(*p.cost), 2)


def gpu_model_word(label: str) -> str:
    """The part of a GPU label a customer would ask for: "RTX 4090 24G" -> "4090"."""
    words = [w for w in label.replace("-", " ").split() if any(c.isdigit() for c in w) and not w.endswith("G")]
    return words[0] if words else label


def requirements_met_by(item: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Random requirements this executor meets (an item of GET /api/v1/hardware), each
    figure at or below its own, so cheaper executors often meet them too."""
    req: dict[str, Any] = {}
    gpus, vram = item["gpus"], item.get("gpu_memory_mb") or []
    if gpus and rng.random() < 0.7:
        req["gpus"] = rng.randint(1, len(gpus))
        if rng.random() < 0.5:
            req["gpu_model"] = gpu_model_word(gpus[0])
        if len(vram) == len(gpus) and rng.random() < 0.4:
            req["min_vram_mb"] = rng.choice([m for m in (4096, 8192, 16384, 40960) if m <= min(vram)] or [min(vram)])
    cpu_count = item.get("cpu_count") or len(item["cpus"])
    if rng.random() < 0.5:
        req["cpus"] = rng.randint(1, max(1, cpu_count))
    if item["ram"] >= 1000 and rng.random() < 0.4:
        req["ram"] = rng.randrange(1000, item["ram"] + 1, 1000)
    if rng.random() < 0.3:
        req["max_cost"] = math.ceil(item["cost"] * rng.uniform(1.0, 2.0) * 100) / 100
    if rng.random() < 0.3:
        req["min_rating"] = math.floor(item["calculated_perfomance_rating"] * rng.uniform(0.3, 1.0) * 100) / 100
    return req


def limits_met_by(item: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """Limits a fifth of the tasks carry, within this executor's size."""
    if rng.random() >= 0.2:
        return None
    cpu_count = item.get("cpu_count") or len(item["cpus"])
    return {"cpus": float(rng.randint(1, max(1, cpu_count))), "memory": max(256, item["ram"] // 2)}
