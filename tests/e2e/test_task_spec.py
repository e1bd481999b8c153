"""A task's own command, surroundings, ports and limits, as the process and the engine see them."""

from __future__ import annotations

import time
import urllib.request

from megamind.jobspec import cputime_limit_reached, out_of_memory, runtime_limit_reached

from .conftest import containers_of, wait_no_containers

IMAGE = "megamind.network/megatest:latest"


def _run(api, hwid: str, params: str = "", **fields) -> str:
    answer = api.call("POST", "/api/v1/addtask", {"image": IMAGE, "params": params, "hwid": hwid, **fields})
    assert answer.status == 200, answer
    return answer.json["taskid"]


def test_command_env_and_workdir_reach_the_process_and_survive_a_restart(alice, executor):
    taskid = _run(alice, executor.hwid, "the params",
                  command="sh -c 'echo args=$0,$1; echo env=$EPOCHS/$MEGAMIND_PARAMS; pwd' first 'second word'",
                  env={"EPOCHS": "3"}, workdir="/tmp/work")
    expected = ["args=first,second word", "env=3/the params", "/tmp/work"]
    alice.wait_state(taskid, 4)
    assert alice.output(taskid) == expected
    detail = alice.detail(taskid)
    assert detail["command"] == ["sh", "-c", "echo args=$0,$1; echo env=$EPOCHS/$MEGAMIND_PARAMS; pwd",
                                 "first", "second word"]
    assert detail["env"] == {"EPOCHS": "3"} and detail["workdir"] == "/tmp/work"
    assert detail["exit_code"] == 0 and detail["finished_at"] >= detail["started_at"]

    assert alice.restart(taskid).status == 200
    alice.wait_logs(taskid, lambda lines: lines == expected * 2, timeout=20)


def test_a_published_port_is_reached_on_127_0_0_1(alice, start_executor, engine):
    ex = start_executor(extra_args=("--network", "bridge", "--publish-address", "127.0.0.1"))
    serve = "mkdir -p /www && echo hello-port > /www/index.html && echo serving && httpd -f -p 8080 -h /www"
    taskid = _run(alice, ex.hwid, serve, ports=[8080])
    alice.wait_state(taskid, 3)
    alice.wait_logs(taskid, lambda lines: lines == ["serving"])
    deadline = time.monotonic() + 10
    while not (ports := alice.detail(taskid)["ports"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    (mapping,) = ports
    assert mapping["container"] == 8080 and mapping["address"] == "127.0.0.1" and mapping["host"] > 0

    # The binding is on the loopback address only, as inspected.
    (container,) = containers_of(engine, taskid)
    bindings = container.attrs["HostConfig"]["PortBindings"]["8080/tcp"]
    assert [b["HostIp"] for b in bindings] == ["127.0.0.1"]

    body = b""
    while time.monotonic() < deadline + 10:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{mapping['host']}/", timeout=2) as resp:
                body = resp.read()
                break
        except OSError:
            time.sleep(0.2)
    assert body == b"hello-port\n"
    assert alice.deltask(taskid).status == 200


def test_ports_need_a_network(alice, executor):
    taskid = _run(alice, executor.hwid, "sleep 5", ports=[8080])
    task = alice.wait_state(taskid, 5)
    assert "--network none" in task["error_msg"]


def test_a_runtime_limit_stops_the_task(alice, executor, engine):
    taskid = _run(alice, executor.hwid, "echo up; sleep 120", limits={"runtime": 2})
    alice.wait_state(taskid, 3)
    started = time.monotonic()
    task = alice.wait_state(taskid, 5, timeout=20)
    assert task["error_msg"] == runtime_limit_reached(2)
    assert time.monotonic() - started < 10
    assert alice.output(taskid) == ["up"]


def test_the_memory_limit_ends_the_task_out_of_memory(alice, executor):
    hog = "echo before; x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo after"
    taskid = _run(alice, executor.hwid, hog, limits={"memory": 32})
    task = alice.wait_state(taskid, 5, timeout=30)
    assert task["error_msg"] == out_of_memory(32)
    assert alice.output(taskid) == ["before"]


def test_the_cpu_time_limit_ends_a_busy_task(alice, executor):
    taskid = _run(alice, executor.hwid, "echo spinning; while :; do :; done", limits={"cputime": 1})
    task = alice.wait_state(taskid, 5, timeout=30)
    assert task["error_msg"] == cputime_limit_reached(1)


def test_the_cpu_share_goes_to_the_engine(alice, executor, engine):
    taskid = _run(alice, executor.hwid, "sleep 30", limits={"cpus": 0.5, "memory": 64})
    alice.wait_state(taskid, 3)
    (container,) = containers_of(engine, taskid)
    host = container.attrs["HostConfig"]
    assert host["NanoCpus"] == 500_000_000 and host["Memory"] == 64 * 1024 * 1024
    assert alice.detail(taskid)["limits"] == {"cpus": 0.5, "memory": 64}
    assert alice.deltask(taskid).status == 200


def test_cancel_stops_the_task_and_keeps_it(alice, executor, engine):
    taskid = _run(alice, executor.hwid, "echo working; sleep 120")
    alice.wait_state(taskid, 3)
    alice.wait_logs(taskid, lambda lines: lines == ["working"])
    assert alice.call("POST", f"/api/v1/task/{taskid}/cancel").status == 200
    wait_no_containers(engine, taskid)
    task = alice.wait_state(taskid, 4)
    assert task["error_msg"] == ""
    detail = alice.detail(taskid)
    assert detail["cancelled"] is True and detail["finished_at"] is not None
    assert alice.logs(taskid) == ["working"]
    alice.wait_free(executor.hwid)
    # Cancelling what has ended changes nothing.
    assert alice.call("POST", f"/api/v1/task/{taskid}/cancel").status == 200
    assert alice.detail(taskid)["state"] == 4
