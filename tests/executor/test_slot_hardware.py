"""What each slot reports: the size one task can use there, from recorded nvidia-smi output."""

import os

import pytest

from megamind.executor import gpu as gpu_module
from megamind.executor.gpu import probe_gpus
from megamind.executor.hardware import Hardware, gpu_rating
from megamind.executor.service import slot_hardware

from .test_gpu import FIXTURES, FakeNvml, fake_nvidia_smi

CPU_RATING = 6.0


@pytest.fixture
def recorded_gpus(monkeypatch, tmp_path):
    """The two GTX 1060 of the recorded nvidia-smi output, found as the agent finds them."""
    monkeypatch.setattr(gpu_module, "_import_pynvml", lambda: FakeNvml([], init_error=True))
    fake_nvidia_smi(tmp_path, f"cat '{FIXTURES / 'nvidia_smi_2x_gtx1060.csv'}'")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    return probe_gpus()


def host(gpus, cpu_count=8, ram=32000):
    return Hardware(cpus=["Intel(R) Core(TM) i7-7700K CPU @ 4.20GHz"], ram=ram,
                    gpus=[g.label for g in gpus], network="940mbit",
                    calculated_perfomance_rating=round(CPU_RATING + gpu_rating(gpus), 2),
                    cpu_count=cpu_count, gpu_memory_mb=[g.memory_mb for g in gpus])


def test_one_slot_reports_the_host_with_every_figure(recorded_gpus):
    [(report, gpus)] = slot_hardware(host(recorded_gpus), recorded_gpus, 1)
    assert gpus == recorded_gpus
    assert report == {
        "cpus": ["Intel(R) Core(TM) i7-7700K CPU @ 4.20GHz"],
        "ram": 32000,
        "gpus": ["NVIDIA GeForce GTX 1060 6GB", "NVIDIA GeForce GTX 1060 6GB"],
        "gpu_memory_mb": [6144, 6144],
        "cpu_count": 8,
        "cpu_limit": None,
        "slots": 1,
        "network": "940mbit",
        "calculated_perfomance_rating": host(recorded_gpus).calculated_perfomance_rating,
    }


def test_the_owners_caps_are_the_executors_size(recorded_gpus):
    [(report, _)] = slot_hardware(host(recorded_gpus), recorded_gpus, 1, memory_mb=4096, cpus=2.5)
    assert report["ram"] == 4096
    assert report["cpu_count"] == 2
    assert report["cpu_limit"] == 2.5
    [(report, _)] = slot_hardware(host(recorded_gpus), recorded_gpus, 1, memory_mb=64000, cpus=0.5)
    assert report["ram"] == 32000  # a cap above the host is no size
    assert report["cpu_count"] == 1


def test_each_slot_reports_its_own_share(recorded_gpus):
    shares = slot_hardware(host(recorded_gpus), recorded_gpus, 3, memory_mb=8000)
    assert [gpus for _, gpus in shares] == [[recorded_gpus[0]], [recorded_gpus[1]], []]
    reports = [report for report, _ in shares]
    assert [r["gpu_memory_mb"] for r in reports] == [[6144], [6144], []]
    assert [r["gpus"] for r in reports] == [["NVIDIA GeForce GTX 1060 6GB"], ["NVIDIA GeForce GTX 1060 6GB"], []]
    assert [r["cpu_count"] for r in reports] == [2, 2, 2]  # 8 // 3
    assert [r["ram"] for r in reports] == [8000, 8000, 8000]  # 32000 // 3 = 10666, capped by --memory
    assert all(r["cpu_limit"] is None and r["slots"] == 3 for r in reports)
    one_gpu = gpu_rating(recorded_gpus[:1])
    assert [r["calculated_perfomance_rating"] for r in reports] == [
        round(CPU_RATING / 3 + one_gpu, 2), round(CPU_RATING / 3 + one_gpu, 2), round(CPU_RATING / 3, 2)]


def test_slots_on_a_small_host_each_have_a_cpu():
    [(first, _), (second, _)] = slot_hardware(host([], cpu_count=1, ram=2000), [], 2, cpus=4)
    assert first["cpu_count"] == second["cpu_count"] == 1
    assert first["ram"] == 1000 and first["gpu_memory_mb"] == [] and first["cpu_limit"] == 4
