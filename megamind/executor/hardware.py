"""Hardware description and performance rating reported by the executor agent.

What is reported
    cpus     one model string per physical CPU package (socket)
    ram      memory in MB a task can use: the host's total, or one slot's share,
             capped by the owner's --memory
    gpus     customer-facing GPU labels (see `Gpu.label`)
    gpu_memory_mb  each GPU's memory in MB, in the order of `gpus`
    cpu_count      logical CPUs a task can use: the host's, or one slot's share,
             capped by the owner's --cpus (at least 1)
    cpu_limit      the owner's --cpus, or None
    network  measured download speed, e.g. "940mbit", or "unknown"
    calculated_perfomance_rating  cpu rating + gpu rating (key spelled as in
             the public API)

CPU rating method
    A fixed 1 MiB buffer is hashed with SHA-256 repeatedly on one core for a
    bounded time budget (0.3 s by default).  The single-core throughput in MiB/s
    is multiplied by the number of logical CPUs and divided by
    `REFERENCE_CORE_MIB_PER_S` (1600 MiB/s, roughly one core of a ~2020 desktop
    CPU with SHA extensions at 4+ GHz hashing ~1.3-2 GiB/s).  One reference core
    therefore scores about 1.0, and a typical modern desktop with 4 logical CPUs
    lands near 4-6.  SHA-256 is a cheap, deterministic integer workload that is
    available everywhere via hashlib; it does not model memory bandwidth or
    SMT scaling, which is acceptable for ranking offers, not for billing.

GPU rating method
    NVML/nvidia-smi expose memory size and maximum SM clock on every supported
    board, so the estimate uses just those: the sum over GPUs of
    (memory in GiB / 4) * (max SM clock in GHz).  A GTX 1060 6GB at 1.9 GHz
    scores ~2.9; an RTX 3090 (24 GiB, 2.1 GHz) ~12.6.  Boards that do not
    report a clock are assumed to run at `FALLBACK_SM_CLOCK_GHZ`.

Network method
    The agent downloads up to 8 MiB from the platform's speed-test endpoint for
    at most 2 s and reports bytes * 8 / elapsed as whole megabits per second.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import aiohttp

from megamind.executor.gpu import Gpu, probe_gpus

log = logging.getLogger(__name__)

CPUINFO_PATH = Path("/proc/cpuinfo")
MEMINFO_PATH = Path("/proc/meminfo")

BENCHMARK_BUFFER = bytes(range(256)) * 4096  # 1 MiB, fixed so runs are comparable
REFERENCE_CORE_MIB_PER_S = 1600.0

GPU_MEMORY_GIB_PER_POINT = 4.0
FALLBACK_SM_CLOCK_GHZ = 1.0

NETWORK_CHUNK_BYTES = 64 * 1024
# Extra time allowed for DNS/TCP/TLS/headers on top of the download budget.
NETWORK_CONNECT_ALLOWANCE_S = 5.0
NETWORK_UNKNOWN = "unknown"

UNKNOWN_CPU = "unknown CPU"


@dataclass
class Hardware:
    cpus: list[str]
    ram: int
    gpus: list[str]
    network: str
    calculated_perfomance_rating: float
    cpu_count: int = 1
    cpu_limit: float | None = None
    gpu_memory_mb: list[int] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


# --- CPU ------------------------------------------------------------------


def parse_cpuinfo(text: str) -> list[str]:
    """One model string per physical CPU package found in /proc/cpuinfo text.

    x86 lists every logical CPU; sockets are told apart by "physical id".
    Without it (many VMs, ARM) the socket count is unknowable, so a single
    entry describes the machine.
    """
    blocks = [_parse_cpuinfo_block(block) for block in text.split("\n\n")]
    blocks = [block for block in blocks if block]

    models_by_socket: dict[str, str] = {}
    for block in blocks:
        socket = block.get("physical id")
        if socket is not None and socket not in models_by_socket:
            models_by_socket[socket] = _clean(block.get("model name", "")) or UNKNOWN_CPU
    if models_by_socket:
        return list(models_by_socket.values())
    return [_model_without_sockets(blocks)]


def _parse_cpuinfo_block(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.splitlines():
        key, separator, value = line.partition(":")
        if separator:
            fields[key.strip()] = value.strip()
    return fields


def _model_without_sockets(blocks: list[dict[str, str]]) -> str:
    # ARM kernels put "Hardware" in a trailing machine-wide block and only
    # numeric "CPU part" ids in the per-core blocks, so search all blocks.
    for key in ("model name", "Hardware"):
        for block in blocks:
            if _clean(block.get(key, "")):
                return _clean(block[key])
    for block in blocks:
        if block.get("CPU part"):
            return f"ARM CPU part {block['CPU part']}"
    return UNKNOWN_CPU


def _clean(text: str) -> str:
    # Old Intel model names are padded: "Intel(R) Xeon(R) CPU           E5-2620 0".
    return " ".join(text.split())


def cpu_count() -> int:
    """Logical CPUs usable by containers (never 0)."""
    return os.cpu_count() or 1


def task_cpu_count(host_cpus: int, slots: int = 1, cpu_limit: float | None = None) -> int:
    """Logical CPUs one task can use: its slot's share of the host's, no more than the
    owner's --cpus allows in whole CPUs; never 0, since a task always gets some CPU."""
    count = max(1, host_cpus // slots)
    if cpu_limit:
        count = min(count, max(1, math.floor(cpu_limit)))
    return count


def measure_cpu_rating(
    budget_s: float = 0.3, cpus: int | None = None, clock: Callable[[], float] = time.perf_counter
) -> float:
    """Bounded SHA-256 throughput benchmark scaled to all CPUs (see module docstring)."""
    started = clock()
    hashed_mib = 0
    elapsed = 0.0
    # At least one round so a tiny budget still yields a measurement.
    while hashed_mib == 0 or elapsed < budget_s:
        hashlib.sha256(BENCHMARK_BUFFER).digest()
        hashed_mib += 1
        elapsed = clock() - started
    mib_per_s = hashed_mib / max(elapsed, 1e-9)
    return round(mib_per_s * (cpus or cpu_count()) / REFERENCE_CORE_MIB_PER_S, 2)


# --- memory ---------------------------------------------------------------


def parse_meminfo(text: str) -> int:
    """MemTotal from /proc/meminfo text, in MB (0 when absent)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "MemTotal":
            kilobytes = int(value.split()[0])
            return kilobytes // 1024
    return 0


# --- GPU ------------------------------------------------------------------


def gpu_rating(gpus: list[Gpu]) -> float:
    """Estimate from memory size and max SM clock (see module docstring)."""
    total = 0.0
    for gpu in gpus:
        memory_gib = gpu.memory_mb / 1024
        clock_ghz = gpu.max_sm_clock_mhz / 1000 if gpu.max_sm_clock_mhz else FALLBACK_SM_CLOCK_GHZ
        total += memory_gib / GPU_MEMORY_GIB_PER_POINT * clock_ghz
    return round(total, 2)


# --- network --------------------------------------------------------------


def format_mbit(bytes_read: int, seconds: float) -> str:
    """Throughput as whole megabits per second, e.g. "940mbit" (at least 1)."""
    mbit_per_s = bytes_read * 8 / 1_000_000 / max(seconds, 1e-6)
    return f"{max(1, round(mbit_per_s))}mbit"


async def measure_network(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict,
    max_bytes: int = 8 * 1024 * 1024,
    budget_s: float = 2.0,
) -> str:
    """Download speed from `url?bytes=max_bytes`, or "unknown" if it fails."""
    loop = asyncio.get_running_loop()
    bytes_read = 0
    try:
        async with session.get(
            url,
            params={"bytes": str(max_bytes)},
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=budget_s + NETWORK_CONNECT_ALLOWANCE_S),
        ) as response:
            if response.status != 200:
                log.info("speed test returned HTTP %d", response.status)
                return NETWORK_UNKNOWN
            # Timing starts at the response so connection setup latency does
            # not masquerade as low bandwidth.
            started = loop.time()
            try:
                async with asyncio.timeout(budget_s):
                    async for chunk in response.content.iter_chunked(NETWORK_CHUNK_BYTES):
                        bytes_read += len(chunk)
                        if bytes_read >= max_bytes:
                            break
            except TimeoutError:
                pass  # budget spent: what arrived so far is the sample
            elapsed = loop.time() - started
    except (aiohttp.ClientError, OSError, TimeoutError) as error:
        log.info("speed test failed: %s", error)
        return NETWORK_UNKNOWN
    if bytes_read == 0:
        return NETWORK_UNKNOWN
    return format_mbit(bytes_read, elapsed)


# --- putting it together --------------------------------------------------


def probe_static(
    cpuinfo_path: Path | str = CPUINFO_PATH, meminfo_path: Path | str = MEMINFO_PATH
) -> tuple[list[str], int, list[Gpu]]:
    """CPU models, RAM in MB and GPUs: the parts that need no benchmark."""
    cpus = parse_cpuinfo(_read_or_empty(cpuinfo_path))
    ram = parse_meminfo(_read_or_empty(meminfo_path))
    return cpus, ram, probe_gpus()


def _read_or_empty(path: Path | str) -> str:
    # Non-Linux hosts and locked-down containers may lack /proc; report
    # "unknown" values instead of refusing to start.
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        log.warning("cannot read %s: %s", path, error)
        return ""


async def probe_hardware(
    session: aiohttp.ClientSession, speedtest_url: str, headers: dict
) -> tuple[Hardware, list[Gpu]]:
    """Full description for registration: static facts, benchmark, speed test."""
    # The probes block (file reads, subprocess, CPU benchmark); keep the loop free.
    cpus, ram, gpus = await asyncio.to_thread(probe_static)
    cpu_rating = await asyncio.to_thread(measure_cpu_rating)
    network = await measure_network(session, speedtest_url, headers)
    hardware = Hardware(
        cpus=cpus,
        ram=ram,
        gpus=[gpu.label for gpu in gpus],
        network=network,
        calculated_perfomance_rating=round(cpu_rating + gpu_rating(gpus), 2),
        cpu_count=cpu_count(),
        gpu_memory_mb=[gpu.memory_mb for gpu in gpus],
    )
    return hardware, gpus
