import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from megamind.executor import gpu as gpu_module
from megamind.executor.gpu import Gpu, device_requests, parse_nvidia_smi_csv, probe_gpus, read_nvml, split_gpus

FIXTURES = Path(__file__).parent / "fixtures"

GTX_1060_UUIDS = [
    "GPU-5c8d2e1a-7f3b-4c9e-a1d4-0b6e9f2c3a71",
    "GPU-e94b07c2-18d5-4a6f-9c3e-72f1d8a0b5e4",
]


class FakeNvml(SimpleNamespace):
    """Stand-in for the `pynvml` module, replaying values recorded from real devices."""

    NVML_CLOCK_SM = 1

    class NVMLError(Exception):
        pass

    def __init__(self, devices, names_as_bytes=False, init_error=False, clock_error=False):
        super().__init__()
        self.devices = devices
        self.names_as_bytes = names_as_bytes
        self.init_error = init_error
        self.clock_error = clock_error
        self.initialised = False
        self.shutdown_calls = 0

    @classmethod
    def recorded(cls, **options):
        recording = json.loads((FIXTURES / "nvml_recorded.json").read_text())
        return cls(recording["devices"], **options)

    def _encode(self, text):
        return text.encode() if self.names_as_bytes else text

    def _device(self, handle):
        assert self.initialised, "NVML called before nvmlInit"
        return self.devices[handle]

    def nvmlInit(self):
        if self.init_error:
            raise self.NVMLError("NVML Shared Library Not Found")
        self.initialised = True

    def nvmlShutdown(self):
        self.shutdown_calls += 1
        self.initialised = False

    def nvmlDeviceGetCount(self):
        assert self.initialised
        return len(self.devices)

    def nvmlDeviceGetHandleByIndex(self, index):
        assert self.initialised
        return index

    def nvmlDeviceGetName(self, handle):
        return self._encode(self._device(handle)["name"])

    def nvmlDeviceGetUUID(self, handle):
        return self._encode(self._device(handle)["uuid"])

    def nvmlDeviceGetMemoryInfo(self, handle):
        total = self._device(handle)["memory_total_bytes"]
        return SimpleNamespace(total=total, free=total - 300 * 1024 * 1024, used=300 * 1024 * 1024)

    def nvmlDeviceGetMaxClockInfo(self, handle, clock_type):
        assert clock_type == self.NVML_CLOCK_SM
        if self.clock_error:
            raise self.NVMLError("Not Supported")
        return self._device(handle)["max_sm_clock_mhz"]


def make_gpus(count):
    return [Gpu(index, f"GPU-{index}", "Tesla T4", 15360, 1590) for index in range(count)]


# --- nvidia-smi CSV ---------------------------------------------------------


def test_parse_nvidia_smi_two_gpus():
    gpus = parse_nvidia_smi_csv((FIXTURES / "nvidia_smi_2x_gtx1060.csv").read_text())

    assert gpus == [
        Gpu(0, GTX_1060_UUIDS[0], "NVIDIA GeForce GTX 1060 6GB", 6144, 1911),
        Gpu(1, GTX_1060_UUIDS[1], "NVIDIA GeForce GTX 1060 6GB", 6144, 1911),
    ]


def test_parse_nvidia_smi_unavailable_fields():
    gpus = parse_nvidia_smi_csv((FIXTURES / "nvidia_smi_not_available.csv").read_text())

    assert [(g.index, g.name, g.memory_mb, g.max_sm_clock_mhz) for g in gpus] == [
        (0, "GRID T4-8Q", 8192, None),
        (1, "Tesla T4", 0, None),
    ]


def test_parse_nvidia_smi_tolerates_blank_and_malformed_lines():
    text = "\n  \nnot, enough\n 3 ,  GPU-x ,  Tesla V100-PCIE-16GB ,  16384 ,  1380  \n\n"

    assert parse_nvidia_smi_csv(text) == [Gpu(3, "GPU-x", "Tesla V100-PCIE-16GB", 16384, 1380)]


def test_parse_nvidia_smi_empty_output():
    assert parse_nvidia_smi_csv("") == []


# --- labels -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "memory_mb", "label"),
    [
        ("NVIDIA GeForce GTX 1060 6GB", 6144, "NVIDIA GeForce GTX 1060 6GB"),
        ("NVIDIA A100-SXM4-80GB", 81920, "NVIDIA A100-SXM4-80GB"),
        ("NVIDIA GeForce RTX 3060", 12288, "NVIDIA GeForce RTX 3060 12G"),
        ("NVIDIA GeForce RTX 4060 Ti", 8188, "NVIDIA GeForce RTX 4060 Ti 8G"),
        ("Tesla T4", 15360, "Tesla T4 15G"),
    ],
)
def test_label(name, memory_mb, label):
    assert Gpu(0, "GPU-x", name, memory_mb, None).label == label


# --- NVML -------------------------------------------------------------------


@pytest.mark.parametrize("names_as_bytes", [False, True])
def test_read_nvml_from_recorded_devices(names_as_bytes):
    nvml = FakeNvml.recorded(names_as_bytes=names_as_bytes)

    gpus = read_nvml(nvml)

    assert gpus == [
        Gpu(0, GTX_1060_UUIDS[0], "NVIDIA GeForce GTX 1060 6GB", 6144, 1911),
        Gpu(1, "GPU-0d7a6c35-92be-4f11-8e0c-6b3a5d24f9c8", "NVIDIA GeForce RTX 3060", 12288, 2100),
    ]
    assert [g.label for g in gpus] == ["NVIDIA GeForce GTX 1060 6GB", "NVIDIA GeForce RTX 3060 12G"]
    assert nvml.shutdown_calls == 1


def test_read_nvml_without_clock_support():
    gpus = read_nvml(FakeNvml.recorded(clock_error=True))

    assert [g.max_sm_clock_mhz for g in gpus] == [None, None]
    assert [g.memory_mb for g in gpus] == [6144, 12288]


def test_read_nvml_propagates_init_error():
    nvml = FakeNvml.recorded(init_error=True)

    with pytest.raises(FakeNvml.NVMLError):
        read_nvml(nvml)


# --- probe_gpus -------------------------------------------------------------


def test_probe_gpus_on_this_machine_finds_none():
    # The test machine has no NVIDIA GPU: both NVML and nvidia-smi must fail quietly.
    assert probe_gpus() == []


def test_probe_gpus_prefers_nvml(monkeypatch):
    monkeypatch.setattr(gpu_module, "_import_pynvml", lambda: FakeNvml.recorded())
    monkeypatch.setattr(gpu_module, "NVIDIA_SMI_QUERY", ["/nonexistent/should-not-run"])

    assert [g.uuid for g in probe_gpus()][0] == GTX_1060_UUIDS[0]


def fake_nvidia_smi(directory: Path, body: str) -> None:
    script = directory / "nvidia-smi"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def without_nvml(monkeypatch):
    monkeypatch.setattr(gpu_module, "_import_pynvml", lambda: FakeNvml([], init_error=True))


def test_probe_gpus_falls_back_to_nvidia_smi(without_nvml, monkeypatch, tmp_path):
    fake_nvidia_smi(tmp_path, f"cat '{FIXTURES / 'nvidia_smi_2x_gtx1060.csv'}'")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    assert [g.uuid for g in probe_gpus()] == GTX_1060_UUIDS


def test_probe_gpus_when_pynvml_is_not_installed(monkeypatch, tmp_path):
    monkeypatch.setattr(gpu_module, "_import_pynvml", lambda: None)
    fake_nvidia_smi(tmp_path, f"cat '{FIXTURES / 'nvidia_smi_2x_gtx1060.csv'}'")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    assert len(probe_gpus()) == 2


def test_probe_gpus_nvidia_smi_failure(without_nvml, monkeypatch, tmp_path):
    fake_nvidia_smi(tmp_path, "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.'; exit 9")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    assert probe_gpus() == []


def test_probe_gpus_nvidia_smi_missing(without_nvml, monkeypatch):
    monkeypatch.setattr(gpu_module, "NVIDIA_SMI_QUERY", ["/nonexistent/nvidia-smi"])

    assert probe_gpus() == []


def test_probe_gpus_never_raises_on_unexpected_errors(monkeypatch):
    def broken_import():
        raise RuntimeError("boom")

    monkeypatch.setattr(gpu_module, "_import_pynvml", broken_import)

    assert probe_gpus() == []


# --- docker device requests -------------------------------------------------


def test_device_requests_without_gpus():
    assert device_requests([]) == []


def test_device_requests_as_sent_to_docker():
    gpus = parse_nvidia_smi_csv((FIXTURES / "nvidia_smi_2x_gtx1060.csv").read_text())

    [request] = device_requests(gpus)

    body = dict(request)
    assert body["Driver"] == "nvidia"
    assert body["DeviceIDs"] == GTX_1060_UUIDS
    assert body["Capabilities"] == [["gpu"]]
    # Count and DeviceIDs are mutually exclusive for the Docker engine.
    assert body["Count"] == 0


# --- split_gpus -------------------------------------------------------------


def test_split_gpus_evenly():
    gpus = make_gpus(4)

    assert split_gpus(gpus, 2) == [gpus[0:2], gpus[2:4]]


def test_split_gpus_uneven_gives_extra_to_first_slots():
    gpus = make_gpus(5)

    assert split_gpus(gpus, 3) == [gpus[0:2], gpus[2:4], gpus[4:5]]


def test_split_gpus_fewer_gpus_than_slots():
    gpus = make_gpus(2)

    assert split_gpus(gpus, 4) == [[gpus[0]], [gpus[1]], [], []]


def test_split_gpus_no_gpus():
    assert split_gpus([], 3) == [[], [], []]


def test_split_gpus_single_slot_gets_all():
    gpus = make_gpus(3)

    assert split_gpus(gpus, 1) == [gpus]


def test_split_gpus_rejects_zero_slots():
    with pytest.raises(ValueError):
        split_gpus(make_gpus(1), 0)
