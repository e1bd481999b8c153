"""Placement and the queue on real agents: each test has an API server of its own, so
only its own executors can be chosen."""

from __future__ import annotations

import os
import signal
import stat
from pathlib import Path

from megamind.jobspec import queue_timed_out

from .conftest import containers_of, wait_no_containers

SLEEP = "echo started; sleep 300"
FIXTURES = Path(__file__).resolve().parents[1] / "executor" / "fixtures"


def _submit(api, params: str = SLEEP, **fields) -> str:
    answer = api.call("POST", "/api/v1/addtask",
                      {"image": "megamind.network/megatest:latest", "params": params, **fields})
    assert answer.status == 200, answer
    return answer.json["taskid"]


def test_tasks_go_to_the_cheapest_executor_that_fits(platform, start_own_executor):
    api = platform.api
    small = start_own_executor(extra_args=("--cost", "0.2", "--memory", "128"))
    medium = start_own_executor(extra_args=("--cost", "0.5", "--memory", "512"))
    large = start_own_executor(extra_args=("--cost", "0.9"))
    sizes = {item["hwid"]: item for item in api.call("GET", "/api/v1/hardware?sort=cost").json["executors"]}
    assert [sizes[e.hwid]["ram"] for e in (small, medium)] == [128, 512]
    assert sizes[large.hwid]["ram"] > 512

    on_large = _submit(api, requirements={"ram": 1000})
    on_medium = _submit(api, requirements={"ram": 300})
    on_small = _submit(api, requirements={"ram": 100})
    for taskid, ex in ((on_large, large), (on_medium, medium), (on_small, small)):
        detail = api.wait_state(taskid, 3)
        assert api.detail(taskid)["hwid"] == ex.hwid
        assert api.detail(taskid)["price"] == float(sizes[ex.hwid]["cost"])
        assert detail["ip"] == "127.0.0.1"

    # Every executor is busy now: a task that fits waits, saying why.
    waiting = _submit(api, requirements={"ram": 100, "max_cost": 0.6})
    detail = api.detail(waiting)
    assert detail["state"] == 2 and detail["phase"] == "queued" and detail["hwid"] is None
    assert detail["queue_position"] == 1
    assert detail["pending_reason"] == "2 executors fit; both busy"
    assert api.task(waiting)["ip"] == ""

    # The cheapest one that frees up takes it.
    assert api.deltask(on_medium).status == 200
    assert api.wait_detail(waiting, lambda d: d["state"] == 3)["hwid"] == medium.hwid


def test_a_requirement_no_executor_meets_is_refused_at_once(platform, start_own_executor):
    start_own_executor()
    answer = platform.api.call("POST", "/api/v1/addtask", {
        "image": "megamind.network/megatest:latest", "params": "", "requirements": {"gpus": 4}})
    assert answer.status == 422 and answer.json["code"] == 20
    assert "gpus >= 4" in answer.json["message"]
    assert platform.api.tasks() == []


def test_the_queue_drains_in_priority_order_as_tasks_are_deleted(platform, start_own_executor, engine):
    api = platform.api
    ex = start_own_executor()
    holder = _submit(api)
    api.wait_state(holder, 3)
    low = _submit(api, priority=10)
    high = _submit(api, priority=90)
    high_later = _submit(api, priority=90)
    positions = {t: api.detail(t)["queue_position"] for t in (low, high, high_later)}
    assert positions == {high: 1, high_later: 2, low: 3}
    queue = api.call("GET", "/api/v1/queue").json["tasks"]
    assert [t["taskid"] for t in queue] == [high, high_later, low]
    assert all(t["pending_reason"] == "1 executor fits; busy" for t in queue)

    order = []
    running = holder
    for expected in (high, high_later, low):
        assert api.deltask(running).status == 200
        api.wait_detail(expected, lambda d: d["state"] == 3)
        order.append(expected)
        (container,) = containers_of(engine, expected)
        assert container.labels["network.megamind.hwid"] == ex.hwid
        running = expected
    assert order == [high, high_later, low]
    assert api.call("GET", "/api/v1/queue").json["tasks"] == []


def test_a_task_waits_no_longer_than_its_queue_timeout(platform, start_own_executor):
    api = platform.api
    start_own_executor()
    _submit(api)
    waiting = _submit(api, queue_timeout=2)
    task = api.wait_state(waiting, 5, timeout=10)
    assert task["error_msg"] == queue_timed_out(2)
    assert api.detail(waiting)["queue_position"] is None


def test_a_queued_task_can_be_cancelled_or_deleted_and_is_never_restarted(platform, start_own_executor):
    api = platform.api
    start_own_executor()
    holder = _submit(api)
    api.wait_state(holder, 3)
    cancelled, deleted = _submit(api), _submit(api)
    restart = api.restart(cancelled)
    assert restart.status == 409 and restart.json["code"] == 21
    assert api.call("POST", f"/api/v1/task/{cancelled}/cancel").status == 200
    assert api.deltask(deleted).status == 200
    detail = api.detail(cancelled)
    assert detail["state"] == 4 and detail["cancelled"] and detail["queue_position"] is None
    assert api.call("GET", "/api/v1/queue").json["tasks"] == []
    assert {t["taskid"] for t in api.tasks()} == {holder, cancelled}

    # Restarted, a task cancelled before it was placed waits again, and runs when it can.
    assert api.restart(cancelled).status == 200
    detail = api.detail(cancelled)
    assert detail["phase"] == "queued" and detail["queue_position"] == 1 and not detail["cancelled"]
    assert api.deltask(holder).status == 200
    api.wait_state(cancelled, 3)


def test_the_queue_survives_an_api_kill(platform, start_own_executor, engine):
    api, server = platform.api, platform.server
    ex = start_own_executor()
    holder = _submit(api)
    api.wait_state(holder, 3)
    queued = [_submit(api, priority=p) for p in (20, 80, 50)]
    server.stop(signal.SIGKILL)
    server.start()
    # The agent comes back by itself; nothing queued was lost or started meanwhile.
    api.wait_state(holder, 3, timeout=30)
    assert [api.detail(t)["queue_position"] for t in queued] == [3, 1, 2]
    running = holder
    for expected in (queued[1], queued[2], queued[0]):
        assert api.deltask(running).status == 200
        wait_no_containers(engine, running)
        api.wait_state(expected, 3)
        on_executor = engine.containers.list(all=True, filters={"label": f"network.megamind.hwid={ex.hwid}"})
        assert [c.labels["network.megamind.task"] for c in on_executor] == [expected]  # placed once, alone
        running = expected


def _fake_nvidia_smi(folder: Path) -> dict[str, str]:
    """An agent environment whose `nvidia-smi` prints two recorded GTX 1060 6GB."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "nvidia-smi"
    script.write_text(f"#!/bin/sh\ncat {FIXTURES / 'nvidia_smi_2x_gtx1060.csv'}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def test_a_gpu_job_is_placed_by_its_needs_and_fails_plainly_without_the_nvidia_runtime(
        platform, start_own_executor, tmp_path):
    api = platform.api
    cpu_only = start_own_executor(extra_args=("--cost", "0.1"))
    gpu = start_own_executor(extra_args=("--cost", "1.2"), env=_fake_nvidia_smi(tmp_path / "bin"))
    listed = {i["hwid"]: i for i in api.call("GET", "/api/v1/hardware?gpus=1").json["executors"]}
    assert set(listed) == {gpu.hwid}
    assert len(listed[gpu.hwid]["gpus"]) == 2 and min(listed[gpu.hwid]["gpu_memory_mb"]) >= 6000

    # "1 GPU with at least 6 GB, at most 1.5 an hour, for at most 2 hours"
    taskid = _submit(api, requirements={"gpus": 1, "min_vram_mb": 6000, "max_cost": 1.5, "gpu_model": "1060"},
                     limits={"runtime": 7200})
    task = api.wait_state(taskid, 5, timeout=30)
    detail = api.detail(taskid)
    assert detail["hwid"] == gpu.hwid and detail["hwid"] != cpu_only.hwid
    assert "NVIDIA" in task["error_msg"], task
