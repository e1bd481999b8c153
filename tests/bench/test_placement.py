"""The placement benchmark's pure parts: the mixed fleet, requirements it meets, the
simulated executors' run directive and event log, the rate (no timing here)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from bench.hardwaremix import PROFILES, executor_hardware, gpu_model_word, profile_of, requirements_met_by
from bench.placeclients import placement_rate, task_bodies
from bench.placement import FULL, QUICK
from bench.simagents import run_seconds
from bench.simevents import EventLog, parse_events
from megamind.jobspec import TaskLimits
from megamind.placement import Capacity, Need, Requirements, fits


def listed(n: int) -> dict:
    """The n-th simulated executor as GET /api/v1/hardware lists it."""
    hardware, cost = executor_hardware(n)
    cap = Capacity.of(f"hw{n}", hardware, cost)
    return {"hwid": cap.hwid, "gpus": hardware["gpus"], "cpus": hardware["cpus"], "ram": hardware["ram"],
            "calculated_perfomance_rating": hardware["calculated_perfomance_rating"], "cost": cost,
            "cpu_count": cap.cpu_count, "gpu_memory_mb": list(cap.gpu_memory_mb)}


def test_the_fleet_mixes_every_profile_in_its_share_at_any_size():
    for size in (100, 1000):
        counts = Counter(profile_of(n).name for n in range(size))
        for profile in PROFILES:
            assert abs(counts[profile.name] / size - profile.share) < 0.03, (size, profile.name)


def test_the_fleet_is_the_same_every_run_and_prices_rise_with_gpus():
    assert executor_hardware(7) == executor_hardware(7)
    fleet = [executor_hardware(n) for n in range(200)]
    models = {tuple(hw["gpus"][:1]) for hw, _ in fleet}
    assert len(models) == 5  # four GPU models and none
    cpu_only = max(cost for hw, cost in fleet if not hw["gpus"])
    a100 = min(cost for hw, cost in fleet if hw["gpus"] and "A100" in hw["gpus"][0])
    assert a100 > cpu_only
    for hw, _ in fleet:
        assert len(hw["gpu_memory_mb"]) == len(hw["gpus"]) and hw["cpu_count"] >= 2


def test_gpu_model_word_is_what_a_customer_asks_for():
    assert gpu_model_word("NVIDIA GeForce RTX 4090 24G") == "4090"
    assert gpu_model_word("NVIDIA A100-SXM4 80G") == "A100"
    assert gpu_model_word("NVIDIA GeForce GTX 1060 6G") == "1060"


def test_requirements_drawn_from_an_executor_are_met_by_it_as_the_api_decides():
    rng = random.Random(1)
    asked = Counter()
    for n in range(400):
        item = listed(n)
        hardware, cost = executor_hardware(n)
        for _ in range(5):
            body = task_bodies([item], 1, rng, (0.05, 0.5))[0]
            asked.update(body["requirements"].keys())
            limits = body.get("limits") or {}
            need = Need.of(Requirements.from_dict(body["requirements"]),
                           TaskLimits(limits.get("cpus"), limits.get("memory")))
            assert fits(need, Capacity.of(item["hwid"], hardware, cost)), (item, body)
            assert 0.05 <= run_seconds(body["params"]) <= 0.5
    # Every requirement field is asked for by some tasks.
    assert set(asked) == {"gpus", "gpu_model", "min_vram_mb", "cpus", "ram", "max_cost", "min_rating"}


def test_requirements_are_often_met_by_more_than_the_executor_they_came_from():
    rng = random.Random(2)
    fleet = [listed(n) for n in range(100)]
    caps = [Capacity.of(i["hwid"], *executor_hardware(n)) for n, i in enumerate(fleet)]
    fitting = []
    for item in rng.sample(fleet, 50):
        need = Need.of(Requirements.from_dict(requirements_met_by(item, rng)), TaskLimits())
        fitting.append(sum(fits(need, cap) for cap in caps))
    assert min(fitting) >= 1 and sorted(fitting)[len(fitting) // 2] > 5


def test_run_directive_in_params():
    assert run_seconds("sim-run=0.25") == 0.25
    assert run_seconds("--x 1 sim-run=2 --y") == 2.0
    assert run_seconds("hold") is None
    assert run_seconds("") is None
    assert run_seconds("nosim-run=1") is None


def test_event_log_reads_whole_lines_and_keeps_the_first_of_each(tmp_path):
    path = tmp_path / "events"
    log = EventLog(path)
    log.read()  # no file yet
    path.write_text("start aaa 10.5\nstop aaa 11.0\nstart bb")
    log.read()
    assert log.starts == {"aaa": 10.5} and log.stops == {"aaa": 11.0}
    with path.open("a") as f:
        f.write("b 12.25\nstart aaa 13.0\n")
    log.read()
    assert log.starts == {"aaa": 10.5, "bbb": 12.25}
    assert parse_events("junk\nstart x 1\nstop y\n") == [("start", "x", 1.0)]


def test_placement_rate_runs_from_the_first_submission_to_the_last_start():
    sent = {"a": 100.0, "b": 100.5, "c": 101.0}
    starts = {"a": 100.1, "b": 101.0, "c": 102.0, "other": 500.0}
    assert placement_rate(sent, starts) == pytest.approx(1.5)


def test_sizes_keep_the_quick_run_small_and_the_depths_ten_apart():
    assert (FULL.executors, FULL.tasks, FULL.deep) == (1000, 20_000, 10_000)
    assert QUICK.executors <= 100 and QUICK.tasks <= 2_000
    for size in (FULL, QUICK):
        assert size.deep == 10 * size.shallow and size.tasks % size.rounds == 0
        # Executors free up faster than the target rate needs, so the API sets the pace.
        assert size.executors / (sum(size.run_s) / 2) > 2 * 500
