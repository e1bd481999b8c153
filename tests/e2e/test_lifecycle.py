"""The six calls on a real engine, through `megamind server` and `megamind executor` processes."""

from __future__ import annotations

import time

from .conftest import containers_of, wait_no_containers

FOREVER = "i=0; while true; do i=$((i+1)); echo tick $i; echo noise $i >&2; sleep 0.1; done"


def test_free_executor_is_listed_with_measured_hardware(alice, executor):
    item = next(i for i in alice.hwlist() if i["hwid"] == executor.hwid)
    assert set(item) == {"hwid", "gpus", "cpus", "ram", "network", "calculated_perfomance_rating", "cost"}
    assert item["gpus"] == []  # no GPU on this machine
    assert item["cpus"] and all(isinstance(c, str) and c for c in item["cpus"])
    assert item["ram"] > 100
    assert item["network"].endswith("mbit")
    assert item["calculated_perfomance_rating"] > 0
    assert item["cost"] == 0.5


def test_running_task_shows_state_logs_and_a_well_made_container(alice, executor, engine):
    taskid = alice.run(executor.hwid, FOREVER)
    task = alice.wait_state(taskid, 3)
    assert task["image"] == "megamind.network/megatest:latest"
    assert task["params"] == FOREVER
    assert task["ip"] == "127.0.0.1"
    assert task["error_msg"] == ""

    # Logs are readable within a second of being printed: stdout only, oldest first.
    lines = alice.wait_logs(taskid, lambda ls: len(ls) >= 3, timeout=3)
    assert all(line.startswith("tick ") for line in lines)
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == sorted(numbers)
    printed_at = time.monotonic()
    target = numbers[-1] + 5  # printed about half a second from now
    alice.wait_logs(taskid, lambda ls: ls and int(ls[-1].split()[1]) >= target, timeout=0.5 + 1.0)
    assert time.monotonic() - printed_at < 1.5 + 0.5
    # Never more than the last 20 lines: once it has printed 30, the 20 are ticks 11-30 or later.
    lines = alice.wait_logs(taskid, lambda ls: ls and int(ls[-1].split()[1]) >= 30, timeout=10)
    last = int(lines[-1].split()[1])
    assert lines == [f"tick {n}" for n in range(last - 19, last + 1)]

    (container,) = containers_of(engine, taskid)
    attrs = container.attrs
    host = attrs["HostConfig"]
    assert f"MEGAMIND_PARAMS={FOREVER}" in attrs["Config"]["Env"]
    assert attrs["Config"]["Labels"]["network.megamind.hwid"] == executor.hwid
    assert host["Init"] is True
    assert host["Privileged"] is False
    assert host["NetworkMode"] == "none"
    assert host["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert not host.get("Binds") and not attrs.get("Mounts")
    assert host["LogConfig"] == {"Type": "json-file", "Config": {"max-file": "3", "max-size": "10m"}}

    # The executor is held while the task runs.
    assert executor.hwid not in [i["hwid"] for i in alice.hwlist()]
    busy = alice.addtask(executor.hwid, "true")
    assert busy.status == 409 and busy.json["code"] == 9


def test_exit_zero_is_stopped_and_logs_outlive_the_process(alice, executor):
    taskid = alice.run(executor.hwid, "echo first; echo hidden >&2; echo second; echo $MEGAMIND_TASK_ID")
    task = alice.wait_state(taskid, 4)
    assert task["error_msg"] == ""
    lines = alice.wait_logs(taskid, lambda ls: len(ls) == 3)
    assert lines == ["first", "second", taskid]
    alice.wait_free(executor.hwid)


def test_nonzero_exit_is_an_error_with_the_code(alice, executor):
    taskid = alice.run(executor.hwid, "echo failing; exit 3")
    task = alice.wait_state(taskid, 5)
    assert task["error_msg"] == "exited with code 3"
    assert alice.wait_logs(taskid, lambda ls: ls == ["failing"])
    alice.wait_free(executor.hwid)


def test_missing_image_is_an_error_not_a_task_stuck_in_setup(alice, executor):
    taskid = alice.run(executor.hwid, "", image="megamind.network/no-such-image:v1")
    task = alice.wait_state(taskid, 5)
    assert task["error_msg"].startswith("pull failed")
    assert task["image"] == "megamind.network/no-such-image:v1"
    alice.wait_free(executor.hwid)


def test_restart_runs_the_same_container_again(alice, executor, engine):
    taskid = alice.run(executor.hwid, "echo run; sleep 30")
    alice.wait_state(taskid, 3)
    (container,) = containers_of(engine, taskid)
    first_start = container.attrs["State"]["StartedAt"]

    assert alice.restart(taskid).json == {"code": 0, "message": "ok"}
    alice.wait_state(taskid, 3)
    (again,) = containers_of(engine, taskid)
    assert again.id == container.id
    assert again.attrs["State"]["StartedAt"] != first_start
    assert alice.wait_logs(taskid, lambda ls: ls == ["run", "run"])


def test_restart_of_a_finished_task_starts_it_again(alice, executor):
    taskid = alice.run(executor.hwid, "echo once; exit 4")
    alice.wait_state(taskid, 5)
    assert alice.restart(taskid).status == 200
    alice.wait_logs(taskid, lambda ls: ls == ["once", "once"])
    task = alice.wait_state(taskid, 5)
    assert task["error_msg"] == "exited with code 4"


def test_delete_removes_the_container_and_frees_the_executor(alice, executor, engine):
    taskid = alice.run(executor.hwid, FOREVER)
    alice.wait_state(taskid, 3)
    assert len(containers_of(engine, taskid)) == 1
    assert alice.deltask(taskid).json == {"code": 0, "message": "ok"}
    assert alice.task(taskid) is None
    assert alice.logs_answer(taskid).status == 404
    wait_no_containers(engine, taskid)
    alice.wait_free(executor.hwid)
    again = alice.deltask(taskid)
    assert again.status == 404 and again.json["code"] == 7


def test_accounts_see_only_their_own_tasks(alice, bob, executor):
    taskid = alice.run(executor.hwid, "sleep 30")
    alice.wait_state(taskid, 3)
    unknown = "x" * 24
    assert bob.tasks() == []
    for call in (bob.logs_answer, bob.restart, bob.deltask):
        theirs, never = call(taskid), call(unknown)
        assert theirs.status == never.status == 404
        assert theirs.json["code"] == never.json["code"] == 7
        assert theirs.json["message"].replace(taskid, unknown) == never.json["message"]
    assert alice.wait_state(taskid, 3)  # untouched by bob's attempts
