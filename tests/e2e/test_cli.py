"""The `megamind` customer commands and the Python client as a new user meets them.

Real processes throughout: `megamind server`, one `megamind executor` on the real
engine (owned by its own account), the registry holding megatest, and each command
run as its own `python -m megamind.cli` process.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time

import pytest

from megamind.client import Client, TaskState

from .conftest import TEST_LABEL, remove_quietly, wait_connected
from .processes import MEGAMIND, Executor

LONG = "echo started; sleep 30"


@pytest.fixture(scope="module")
def owner_key(server) -> str:
    return server.create_account("cli-owner")


@pytest.fixture(scope="module")
def customer_key(server) -> str:
    return server.create_account("cli-customer")


@pytest.fixture(scope="module")
def agent(server, owner_key, run_id, engine, tmp_path_factory):
    ex = Executor(server.url, owner_key, tmp_path_factory.mktemp("cli-agent"), {TEST_LABEL: run_id})
    ex.start()
    wait_connected(ex, 0)
    yield ex
    ex.stop()
    for container in engine.containers.list(all=True, filters={"label": f"network.megamind.hwid={ex.hwid}"}):
        remove_quietly(container)


@pytest.fixture(autouse=True)
def no_tasks_left(server, customer_key, agent):
    """Each test starts with the executor free and ends by deleting what it ran."""
    yield
    with Client(server.url, customer_key) as api:
        for task in api.task_list():
            api.delete_task(task.taskid)
        deadline = time.monotonic() + 10
        while agent.hwid not in [h.hwid for h in api.hw_list()]:
            assert time.monotonic() < deadline, "the executor was not free again"
            time.sleep(0.1)


@pytest.fixture
def config_file(tmp_path):
    return tmp_path / "config" / "megamind.json"


@pytest.fixture
def megamind(server, customer_key, config_file):
    """Run one `megamind` command; by default the customer's key and the server's URL are in the environment."""

    def run(*args: str, key: str | None = customer_key, url: str | None = server.url,
            timeout: float = 60) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MEGAMIND_")}
        env["MEGAMIND_CONFIG"] = str(config_file)
        if key is not None:
            env["MEGAMIND_API_KEY"] = key
        if url is not None:
            env["MEGAMIND_API_URL"] = url
        return subprocess.run(MEGAMIND + list(args), env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)  # never a terminal: run does not ask

    return run


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def test_the_agent_announces_its_hwid_and_what_it_measured(agent):
    line = next(line for line in agent.log_text().splitlines() if line.startswith(f"executor {agent.hwid}: "))
    for measured in ("'cpus'", "'ram'", "'gpus'", "'network'", "'calculated_perfomance_rating'"):
        assert measured in line


def test_a_new_user_logs_in_runs_follows_restarts_and_removes_a_task(megamind, server, customer_key, agent,
                                                                     config_file):
    # Log in: the key is checked, then stored for the next commands, readable by its owner only.
    out = ok(megamind("login", "--api-url", server.url, "--api-key", customer_key, key=None, url=None))
    assert out.stdout.startswith(f"logged in to {server.url}")
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    as_user = lambda *args, **kw: megamind(*args, key=None, url=None, **kw)  # noqa: E731  only the file now

    # Free hardware, as a table and as JSON, with filters.
    table = ok(as_user("hw")).stdout.splitlines()
    assert table[0].split() == ["HWID", "GPUS", "CPUS", "RAM", "NETWORK", "RATING", "COST/H"]
    assert any(row.startswith(agent.hwid) and row.rstrip().endswith("0.50") for row in table[1:])
    [item] = [i for i in json.loads(ok(as_user("hw", "--json")).stdout) if i["hwid"] == agent.hwid]
    assert item["cost"] == 0.5 and item["ram"] > 100 and item["gpus"] == []
    assert agent.hwid not in ok(as_user("hw", "--max-cost", "0.1", "--json")).stdout
    assert agent.hwid not in ok(as_user("hw", "--gpu")).stdout
    assert agent.hwid in ok(as_user("hw", "-q", "--sort", "rating", "--reverse")).stdout.split()

    # Run: the task id on stdout, each state on stderr until running.
    script = "echo hello; echo world; sleep 1.5; echo bye"
    out = ok(as_user("run", "megatest", "--hwid", agent.hwid, "--params", script, "--wait", "--interval", "0.1"))
    taskid = out.stdout.strip()
    assert len(taskid) > 10 and "\n" not in taskid
    assert "] setup: " in out.stderr  # where setup has got to, as the agent reports it
    assert "] running" in out.stderr

    ps = ok(as_user("ps")).stdout.splitlines()
    assert ps[0].split() == ["TASKID", "STATE", "IMAGE", "IP", "PARAMS", "ERROR"]
    row = next(r for r in ps if r.startswith(taskid))
    assert " running " in row and "megamind.network/megatest:latest" in row
    assert agent.hwid in ok(as_user("inspect", taskid)).stdout
    assert ok(as_user("ps", "-q")).stdout == taskid + "\n"

    # Follow the logs until the task ends.
    out = ok(as_user("logs", "-f", taskid))
    assert out.stdout == "hello\nworld\nbye\n"
    assert f"task {taskid} ended: stopped" in out.stderr
    [task] = json.loads(ok(as_user("ps", "--json")).stdout)
    assert (task["state"], task["state_name"], task["error_msg"]) == (4, "stopped", "")

    # Restart it: it runs again from the start.
    out = ok(as_user("restart", taskid, "--wait", "--interval", "0.1"))
    assert out.stdout == f"restarting {taskid}\n" and "] running" in out.stderr
    out = ok(as_user("logs", taskid, "--json"))
    assert json.loads(out.stdout)["lines"][0] == "hello"

    # Remove it.
    assert ok(as_user("rm", taskid)).stdout == f"removed {taskid}\n"
    out = ok(as_user("ps"))
    assert (out.stdout, out.stderr) == ("", "no tasks\n")

    ok(as_user("logout"))
    assert as_user("ps").returncode == 3


def test_a_failing_task_exits_5_with_its_reason(megamind, agent):
    out = megamind("run", "nosuchimage:1", "--hwid", agent.hwid, "--wait", "--interval", "0.1")
    assert out.returncode == 5, out
    taskid = out.stdout.strip()
    assert f"error: task {taskid} failed: pull failed:" in out.stderr
    [task] = json.loads(ok(megamind("ps", "--json", "--state", "error")).stdout)
    assert task["taskid"] == taskid and task["state_name"] == "error"
    assert ok(megamind("ps", "--state", "running")).stderr == "no tasks\n"


def test_the_api_refusing_a_call_exits_1_and_names_the_error(megamind, agent, owner_key):
    taskid = ok(megamind("run", "megamind.network/megatest:latest", "--hwid", agent.hwid, "--params", LONG,
                         "--json")).stdout
    taskid = json.loads(taskid)["taskid"]

    cases = [
        (("run", "megatest", "--hwid", agent.hwid), "(executor_busy, code 9); pick a free one with `megamind hw`"),
        (("run", "megatest", "--hwid", "nosuchhwid"), "(executor_not_found, code 8)"),
        (("run", "docker.io/library/busybox", "--hwid", agent.hwid), "(image_not_allowed, code 16)"),
        (("logs", "nosuchtask"), "no task 'nosuchtask' in this account (task_not_found, code 7)"),
        (("inspect", "nosuchtask"), "(task_not_found, code 7)"),
        (("restart", "nosuchtask"), "(task_not_found, code 7)"),
        (("rm", "nosuchtask", taskid), "error: nosuchtask: no task 'nosuchtask' in this account"),
    ]
    for args, message in cases:
        out = megamind(*args)
        assert out.returncode == 1, (args, out)
        assert message in out.stderr, (args, out.stderr)
    # rm went on past the unknown id: the real task is gone.
    assert megamind("inspect", taskid).returncode == 1

    out = megamind("ps", key="mk_not-a-key")
    assert out.returncode == 1
    assert "the api-key is unknown or revoked (the api-key from the environment)" in out.stderr
    assert "megamind login" in out.stderr
    out = megamind("login", "--api-key", "mk_not-a-key", key=None)
    assert out.returncode == 1 and "refused the api-key" in out.stderr


def test_an_owner_sees_its_executor_busy_and_a_customer_sees_none(megamind, agent, owner_key):
    [executor] = json.loads(ok(megamind("executors", "--json", key=owner_key)).stdout)
    assert (executor["hwid"], executor["status"], executor["online"]) == (agent.hwid, "free", True)
    ok(megamind("run", "megatest", "--hwid", agent.hwid, "--params", LONG))
    table = ok(megamind("executors", key=owner_key)).stdout.splitlines()
    assert table[0].split()[:3] == ["HWID", "STATUS", "TASK"]
    assert table[1].split()[:3] == [agent.hwid, "busy", "(other"]  # a customer's task: not named
    out = ok(megamind("executors"))
    assert (out.stdout, out.stderr) == ("", "no executors registered with this account\n")


def test_images_lists_what_the_registry_holds(megamind):
    table = ok(megamind("images")).stdout.splitlines()
    assert table[0].split() == ["IMAGE", "OWNER", "VISIBILITY"]
    assert ["megamind.network/megatest:latest", "publisher", "public"] in [line.split() for line in table]
    assert "megamind.network/megatest:latest" in ok(megamind("images", "-q")).stdout.splitlines()
    items = json.loads(ok(megamind("images", "--json")).stdout)
    assert {"image": "megamind.network/megatest:latest", "name": "megatest", "tag": "latest",
            "owner": "publisher", "public": True} in items


def test_waiting_too_long_exits_6_and_the_task_goes_on(megamind, agent):
    out = megamind("run", "megatest", "--hwid", agent.hwid, "--params", LONG, "--wait", "--wait-timeout", "0")
    assert out.returncode == 6, out
    taskid = out.stdout.strip()
    assert f"task {taskid} is still setup after 0 s; it goes on" in out.stderr
    [task] = json.loads(ok(megamind("ps", "--json")).stdout)
    assert task["taskid"] == taskid and task["state"] in (2, 3)


def test_the_python_client_in_a_few_lines(server, customer_key, agent):
    # As the README shows it.
    with Client(server.url, customer_key) as api:
        hw = next(h for h in api.hw_list() if h.hwid == agent.hwid)
        taskid = api.add_task("megamind.network/megatest:latest", hw.hwid, params="echo hi; sleep 1; echo done")
        assert api.wait_task(taskid, timeout=30).state in (TaskState.RUNNING, TaskState.STOPPED)
        assert list(api.follow_logs(taskid)) == ["hi", "done"]
        assert api.task(taskid).state is TaskState.STOPPED
        api.restart_task(taskid)
        assert api.wait_task(taskid, until={TaskState.STOPPED}, timeout=30).error_msg == ""
        assert api.task_logs(taskid).lines[-2:] == ["hi", "done"]  # the second run's, after the first's
        api.delete_task(taskid)
        assert api.task_list() == []
