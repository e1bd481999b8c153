import asyncio
import socket
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from megamind.executor import hardware
from megamind.executor.gpu import Gpu
from megamind.executor.hardware import (
    Hardware,
    format_mbit,
    gpu_rating,
    measure_cpu_rating,
    measure_network,
    parse_cpuinfo,
    parse_meminfo,
    probe_hardware,
    probe_static,
    task_cpu_count,
)

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_text(name):
    return (FIXTURES / name).read_text()


# --- cpuinfo ----------------------------------------------------------------


def test_parse_cpuinfo_two_socket_xeon():
    assert parse_cpuinfo(fixture_text("cpuinfo_xeon_2socket.txt")) == [
        "Intel(R) Xeon(R) CPU E5-2609 v2 @ 2.50GHz",
        "Intel(R) Xeon(R) CPU E5-2609 v2 @ 2.50GHz",
    ]


def test_parse_cpuinfo_single_socket_desktop_with_hyperthreading():
    assert parse_cpuinfo(fixture_text("cpuinfo_i7_7700k.txt")) == ["Intel(R) Core(TM) i7-7700K CPU @ 4.20GHz"]


def test_parse_cpuinfo_arm_uses_hardware_line():
    assert parse_cpuinfo(fixture_text("cpuinfo_arm_rpi4.txt")) == ["BCM2835"]


def test_parse_cpuinfo_arm_server_without_hardware_line():
    text = fixture_text("cpuinfo_arm_rpi4.txt").split("Hardware")[0]

    assert parse_cpuinfo(text) == ["ARM CPU part 0xd08"]


def test_parse_cpuinfo_vm_without_physical_id_reports_one_entry():
    text = "".join(
        f"processor\t: {n}\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\n\n" for n in range(4)
    )

    assert parse_cpuinfo(text) == ["AMD EPYC 7B13"]


def test_parse_cpuinfo_collapses_padding_in_model_name():
    text = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU           E5-2620 0 @ 2.00GHz  \nphysical id\t: 0\n"

    assert parse_cpuinfo(text) == ["Intel(R) Xeon(R) CPU E5-2620 0 @ 2.00GHz"]


def test_parse_cpuinfo_nothing_known():
    assert parse_cpuinfo("") == ["unknown CPU"]


# --- meminfo ----------------------------------------------------------------


def test_parse_meminfo():
    # 32791656 kB // 1024
    assert parse_meminfo(fixture_text("meminfo.txt")) == 32023


def test_parse_meminfo_without_memtotal():
    assert parse_meminfo("MemFree: 100 kB\n") == 0


def test_probe_static_reads_given_paths(monkeypatch):
    monkeypatch.setattr(hardware, "probe_gpus", lambda: [])

    cpus, ram, gpus = probe_static(FIXTURES / "cpuinfo_xeon_2socket.txt", FIXTURES / "meminfo.txt")

    assert len(cpus) == 2
    assert ram == 32023
    assert gpus == []


def test_probe_static_on_this_machine():
    cpus, ram, gpus = probe_static()

    assert cpus and all(cpus)
    assert ram > 0
    assert gpus == []


def test_probe_static_missing_files(tmp_path, monkeypatch):
    monkeypatch.setattr(hardware, "probe_gpus", lambda: [])

    assert probe_static(tmp_path / "nope", tmp_path / "nope") == (["unknown CPU"], 0, [])


# --- ratings ----------------------------------------------------------------


def test_measure_cpu_rating_is_positive_and_bounded():
    budget = 0.2
    started = time.perf_counter()

    rating = measure_cpu_rating(budget)

    assert time.perf_counter() - started < budget * 3
    assert rating > 0


def test_measure_cpu_rating_formula_with_fake_clock():
    ticks = iter(range(10_000))

    def clock():
        return next(ticks) / 1000  # every reading advances 1 ms

    # 10 MiB hashed in 10 ms = 1000 MiB/s; * 8 CPUs / 1600 reference
    assert measure_cpu_rating(0.01, cpus=8, clock=clock) == 5.0


def test_measure_cpu_rating_hashes_at_least_once():
    assert measure_cpu_rating(0.0) > 0


def test_gpu_rating():
    gpus = [
        Gpu(0, "GPU-a", "NVIDIA GeForce GTX 1060 6GB", 6144, 2000),
        Gpu(1, "GPU-b", "GRID T4-8Q", 8192, None),
    ]

    # 6/4*2.0 + 8/4*1.0 (fallback clock)
    assert gpu_rating(gpus) == 5.0
    assert gpu_rating([]) == 0


# --- hardware record --------------------------------------------------------


def test_hardware_to_dict_uses_public_api_keys():
    record = Hardware(
        cpus=["Intel(R) Core(TM) i7-7700K CPU @ 4.20GHz"],
        ram=32023,
        gpus=["NVIDIA GeForce GTX 1060 6GB"],
        network="940mbit",
        calculated_perfomance_rating=7.5,
        cpu_count=8,
        gpu_memory_mb=[6144],
    )

    assert record.to_dict() == {
        "cpus": ["Intel(R) Core(TM) i7-7700K CPU @ 4.20GHz"],
        "ram": 32023,
        "gpus": ["NVIDIA GeForce GTX 1060 6GB"],
        "network": "940mbit",
        "calculated_perfomance_rating": 7.5,
        "cpu_count": 8,
        "cpu_limit": None,
        "gpu_memory_mb": [6144],
    }


@pytest.mark.parametrize(("host_cpus", "slots", "cpu_limit", "expected"), [
    (8, 1, None, 8),
    (8, 3, None, 2),  # each slot its whole share; the rest is the host's
    (2, 4, None, 1),  # a task always gets a CPU
    (8, 1, 2.5, 2),  # --cpus 2.5 gives two whole CPUs and half of a third
    (8, 1, 0.5, 1),
    (8, 2, 16, 4),  # a cap above the share changes nothing
])
def test_task_cpu_count(host_cpus, slots, cpu_limit, expected):
    assert task_cpu_count(host_cpus, slots, cpu_limit) == expected


# --- network ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("bytes_read", "seconds", "expected"),
    [
        (117_500_000, 1.0, "940mbit"),
        (12_500_000, 0.5, "200mbit"),
        (10, 1.0, "1mbit"),  # never report zero for a working link
        (1_000_000, 0.0, "8000000mbit"),  # zero time must not divide by zero
    ],
)
def test_format_mbit(bytes_read, seconds, expected):
    assert format_mbit(bytes_read, seconds) == expected


def make_speedtest_app(chunk_delay_s=0.0, status=200):
    seen = []

    async def speedtest(request):
        seen.append(request)
        if status != 200:
            return web.Response(status=status)
        remaining = int(request.query["bytes"])
        response = web.StreamResponse()
        response.content_length = remaining
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            while remaining > 0:
                await response.write(chunk[:remaining])
                remaining -= min(remaining, len(chunk))
                if chunk_delay_s:
                    await asyncio.sleep(chunk_delay_s)
        except ConnectionResetError:
            pass  # the client stopped reading once its budget was spent
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/speedtest", speedtest)
    return app, seen


async def test_measure_network_against_local_server(aiohttp_server):
    app, seen = make_speedtest_app()
    server = await aiohttp_server(app, host="127.0.0.1")

    async with aiohttp.ClientSession() as session:
        result = await measure_network(
            session, str(server.make_url("/speedtest")), {"Authorization": "Bearer t0ken"}, max_bytes=2 * 1024 * 1024
        )

    assert result.endswith("mbit")
    assert int(result.removesuffix("mbit")) >= 1
    assert seen[0].query["bytes"] == str(2 * 1024 * 1024)
    assert seen[0].headers["Authorization"] == "Bearer t0ken"


async def test_measure_network_stops_at_budget(aiohttp_server):
    # 64 KiB every 50 ms would take ~6 s for 8 MiB; the budget is 0.3 s.
    app, _ = make_speedtest_app(chunk_delay_s=0.05)
    server = await aiohttp_server(app, host="127.0.0.1")
    started = time.perf_counter()

    async with aiohttp.ClientSession() as session:
        result = await measure_network(session, str(server.make_url("/speedtest")), {}, budget_s=0.3)

    assert time.perf_counter() - started < 1.5
    assert result.endswith("mbit")
    # ~6 chunks of 64 KiB in 0.3 s is roughly 10 mbit; anything near 8 MiB/0.3 s would mean no budget.
    assert int(result.removesuffix("mbit")) < 100


async def test_measure_network_stops_at_max_bytes_even_if_server_sends_more(aiohttp_server):
    async def endless(request):
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            while True:
                await response.write(b"x" * 65536)
                await asyncio.sleep(0.01)
        except ConnectionResetError:
            return response

    app = web.Application()
    app.router.add_get("/speedtest", endless)
    server = await aiohttp_server(app, host="127.0.0.1")
    started = time.perf_counter()

    async with aiohttp.ClientSession() as session:
        result = await measure_network(
            session, str(server.make_url("/speedtest")), {}, max_bytes=256 * 1024, budget_s=5.0
        )

    # 256 KiB arrive in ~40 ms; without the byte cap it would run the full 5 s budget.
    assert time.perf_counter() - started < 2.0
    assert result.endswith("mbit")


async def test_measure_network_http_error_is_unknown(aiohttp_server):
    app, _ = make_speedtest_app(status=503)
    server = await aiohttp_server(app, host="127.0.0.1")

    async with aiohttp.ClientSession() as session:
        assert await measure_network(session, str(server.make_url("/speedtest")), {}) == "unknown"


def closed_local_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_measure_network_refused_connection_is_unknown():
    url = f"http://127.0.0.1:{closed_local_port()}/speedtest"

    async with aiohttp.ClientSession() as session:
        assert await measure_network(session, url, {}) == "unknown"


async def test_probe_hardware_combines_everything(aiohttp_server, monkeypatch):
    monkeypatch.setattr(hardware, "probe_gpus", lambda: [Gpu(0, "GPU-a", "Tesla T4", 15360, 1590)])
    monkeypatch.setattr(hardware, "measure_cpu_rating", lambda: 4.25)
    app, _ = make_speedtest_app()
    server = await aiohttp_server(app, host="127.0.0.1")

    async with aiohttp.ClientSession() as session:
        record, gpus = await probe_hardware(session, str(server.make_url("/speedtest")), {})

    assert [gpu.uuid for gpu in gpus] == ["GPU-a"]
    assert record.gpus == ["Tesla T4 15G"]
    assert record.gpu_memory_mb == [15360]
    assert record.cpu_count == hardware.cpu_count() >= 1
    assert record.cpu_limit is None
    assert record.ram > 0
    assert record.network.endswith("mbit")
    # 4.25 cpu + 15/4*1.59 gpu
    assert record.calculated_perfomance_rating == pytest.approx(4.25 + 5.96, abs=0.01)
