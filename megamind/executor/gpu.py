"""NVIDIA GPU discovery for the executor agent.

Discovery prefers NVML (the library behind nvidia-smi, reached through the
`pynvml` module of the `nvidia-ml-py` package) because it needs no subprocess
and gives exact figures.  Hosts where the Python binding cannot load the
library (unusual driver layouts, containers with only the binary mounted) fall
back to parsing `nvidia-smi` CSV output.  Both paths return the same `Gpu`
records, and every failure means "no GPU" rather than an exception: a machine
without a GPU is a perfectly valid executor.
"""

from __future__ import annotations

import logging
import re
import subprocess
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import docker.types

log = logging.getLogger(__name__)

NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,uuid,name,memory.total,clocks.max.sm",
    "--format=csv,noheader,nounits",
]
NVIDIA_SMI_TIMEOUT_S = 5.0

# Marketing names often embed the memory size ("GTX 1060 6GB", "A100-SXM4-80GB");
# repeating it in the label would read as "... 6GB 6G".
# "B" is required so that "RTX 4060 Ti" is not mistaken for a size.
_MEMORY_IN_NAME = re.compile(r"\b\d+\s*(?:GB|GiB|TB)\b", re.IGNORECASE)

# nvidia-smi prints these instead of a number when a value is unavailable.
_UNAVAILABLE_MARKERS = {"", "[n/a]", "n/a", "[not supported]", "[unknown error]"}


@dataclass(frozen=True)
class Gpu:
    index: int
    uuid: str
    name: str
    memory_mb: int
    max_sm_clock_mhz: int | None

    @property
    def label(self) -> str:
        """The description customers see when choosing hardware."""
        if _MEMORY_IN_NAME.search(self.name):
            return self.name
        return f"{self.name} {round(self.memory_mb / 1024)}G"


def parse_nvidia_smi_csv(text: str) -> list[Gpu]:
    """Parse `nvidia-smi --query-gpu=index,uuid,name,memory.total,clocks.max.sm`
    output in `csv,noheader,nounits` format.  Malformed lines are skipped."""
    gpus: list[Gpu] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 5:
            log.warning("ignoring unexpected nvidia-smi line: %r", line)
            continue
        index, uuid, name, memory, clock = fields
        parsed_index = _optional_int(index)
        if parsed_index is None or not uuid:
            log.warning("ignoring nvidia-smi line without index/uuid: %r", line)
            continue
        gpus.append(
            Gpu(
                index=parsed_index,
                uuid=uuid,
                name=name,
                memory_mb=_optional_int(memory) or 0,
                max_sm_clock_mhz=_optional_int(clock),
            )
        )
    return gpus


def _optional_int(field: str) -> int | None:
    if field.strip().lower() in _UNAVAILABLE_MARKERS:
        return None
    try:
        # Some drivers print fractional values; the integer part is all we need.
        return int(float(field))
    except ValueError:
        return None


def read_nvml(nvml: Any) -> list[Gpu]:
    """Enumerate GPUs through an NVML binding (initialises and shuts it down).

    `nvml` is the `pynvml` module (or a stand-in with the same functions), so
    the logic can be tested without a GPU.  NVML errors propagate: the caller
    decides whether to fall back.
    """
    nvml.nvmlInit()
    try:
        gpus = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            gpus.append(
                Gpu(
                    index=index,
                    uuid=_text(nvml.nvmlDeviceGetUUID(handle)),
                    name=_text(nvml.nvmlDeviceGetName(handle)),
                    memory_mb=nvml.nvmlDeviceGetMemoryInfo(handle).total // (1024 * 1024),
                    max_sm_clock_mhz=_max_sm_clock(nvml, handle),
                )
            )
        return gpus
    finally:
        nvml.nvmlShutdown()


def _max_sm_clock(nvml: Any, handle: Any) -> int | None:
    # Some boards (and vGPU profiles) do not report clocks; the GPU is still usable.
    try:
        return int(nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM)) or None
    except nvml.NVMLError:
        return None


def _text(value: str | bytes) -> str:
    # nvidia-ml-py returned bytes before 11.515 and str since.
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def probe_gpus() -> list[Gpu]:
    """All NVIDIA GPUs on this host, or [] when there are none.  Never raises."""
    try:
        nvml = _import_pynvml()
        if nvml is not None:
            try:
                return read_nvml(nvml)
            except nvml.NVMLError as error:
                log.info("NVML unavailable (%s), trying nvidia-smi", error)
        return _probe_with_nvidia_smi()
    except Exception:  # a hardware probe must not take the agent down
        log.exception("GPU discovery failed; assuming no GPU")
        return []


def _import_pynvml() -> ModuleType | None:
    try:
        import pynvml
    except ImportError:
        return None
    return pynvml


def _probe_with_nvidia_smi() -> list[Gpu]:
    try:
        result = subprocess.run(
            NVIDIA_SMI_QUERY,
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log.info("nvidia-smi not usable (%s); assuming no GPU", error)
        return []
    if result.returncode != 0:
        # nvidia-smi exits non-zero when the driver is installed but no GPU is present.
        log.info("nvidia-smi exited with %d; assuming no GPU", result.returncode)
        return []
    return parse_nvidia_smi_csv(result.stdout)


def device_requests(gpus: list[Gpu]) -> list[docker.types.DeviceRequest]:
    """Docker device requests exposing exactly `gpus` to a container.

    UUIDs rather than indexes are used because indexes can be renumbered
    (CUDA_VISIBLE_DEVICES, driver reloads) while UUIDs are stable.
    """
    if not gpus:
        return []
    return [
        docker.types.DeviceRequest(
            driver="nvidia",
            device_ids=[gpu.uuid for gpu in gpus],
            capabilities=[["gpu"]],
        )
    ]


def split_gpus(gpus: list[Gpu], slots: int) -> list[list[Gpu]]:
    """Divide `gpus` among `slots` executor slots as evenly as possible.

    Each slot gets a contiguous run; the first `len(gpus) % slots` slots get one
    extra GPU.  With fewer GPUs than slots the trailing slots get none.
    """
    if slots < 1:
        raise ValueError(f"slots must be at least 1, got {slots}")
    share, extra = divmod(len(gpus), slots)
    shares: list[list[Gpu]] = []
    start = 0
    for slot in range(slots):
        size = share + (1 if slot < extra else 0)
        shares.append(list(gpus[start : start + size]))
        start += size
    return shares
