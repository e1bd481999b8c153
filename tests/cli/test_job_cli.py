"""The job model in the CLI: `run`'s job options as sent, `--wait` through the queue,
`inspect`'s new fields, `queue`, `cancel` and `hw` on the hardware listing; against a
recording stand-in for the API (tests/client/fakeapi.py)."""

import json
import time

import pytest
from click.testing import CliRunner

from megamind.cli.customer import taskview
from megamind.cli.main import cli
from megamind.client import PublishedPort, Requirements, Task, TaskLimits, TaskState
from tests.client.fakeapi import TASK, fake_api
from tests.client.live import agent, live, new_agent

__all__ = ["agent", "fake_api", "live", "new_agent"]  # fixtures

IMAGE = "megamind.network/helloworld:latest"
ADDTASK = ("POST", "/api/v1/addtask")
HARDWARE = {"hwid": "h1", "gpus": ["GTX 1060", "GTX 1060"], "cpus": ["Xeon E5"], "ram": 32000, "network": "1gbit",
            "calculated_perfomance_rating": 4.5, "cost": 0.5, "cpu_count": 16, "gpu_memory_mb": [6144, 6144],
            "status": "free", "slots": 1}
def queued() -> dict:
    """A queued task as GET /queue lists it, its times relative to now (the moment of the test)."""
    return {"taskid": "t2", "image": IMAGE, "priority": 80, "queue_position": 1,
            "pending_reason": "2 executors fit; both busy", "created_at": time.time() - 120,
            "queue_deadline": time.time() + 3 * 3600 + 30}
DETAIL = {
    **TASK, "state": 3, "ip": "203.0.113.7", "hwid": "h1", "executor_online": True, "pending_command": None,
    "phase": None, "progress": None, "results": None, "created_at": time.time() - 600,
    "updated_at": time.time() - 60,
    "requirements": {"gpus": 1, "gpu_model": "1060", "min_vram_mb": None, "cpus": None, "ram": 16000,
                     "max_cost": 1.5, "min_rating": None},
    "command": ["python", "train.py", "--name", "my run"], "env": {"EPOCHS": "3"}, "workdir": "/work",
    "limits": {"cpus": 2, "memory": 4096, "cputime": None, "runtime": 7200}, "priority": 50,
    "queue_position": None, "pending_reason": None,
    "ports": [{"container": 8888, "host": 32768, "address": "203.0.113.7"}],
    "exit_code": None, "cancelled": False, "price": 0.5, "billed_seconds": 3690, "cost": 0.5125,
    "placed_at": time.time() - 590, "started_at": time.time() - 580, "finished_at": None,
}
IN_QUEUE = {**DETAIL, "state": 2, "ip": "", "hwid": None, "executor_online": False, "phase": "queued",
            "queue_position": 2, "pending_reason": "2 executors fit; both busy", "ports": [], "price": None,
            "billed_seconds": 0, "cost": 0, "placed_at": None, "started_at": None}


@pytest.fixture
def invoke(fake_api, tmp_path):
    runner = CliRunner()

    def run(args, **kwargs):
        env = {"MEGAMIND_CONFIG": str(tmp_path / "config.json"), "MEGAMIND_API_URL": fake_api.url,
               "MEGAMIND_API_KEY": "mk_k"}
        return runner.invoke(cli, args, env=env, catch_exceptions=False, **kwargs)
    return run


SENT_IMAGE = "megamind.network/helloworld"  # `run helloworld`, as sent


def sent_bodies(fake_api) -> list:
    return [r.body for r in fake_api.sent(*ADDTASK)]


# --- run: what is sent ------------------------------------------------------------------


def test_run_with_every_job_option_sends_each_field(invoke, fake_api):
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    result = invoke([
        "run", "helloworld", "--gpus", "1", "--gpu-model", "1060", "--min-vram", "6000", "--cpus", "4",
        "--ram", "16000", "--max-cost", "1.5", "--min-rating", "2", "-e", "EPOCHS=3", "--env", "LR=a=b",
        "--workdir", "/work", "-p", "8888", "--port", "22:2222", "--cpu-limit", "1.5", "--memory-limit", "4096",
        "--cputime", "3600", "--timeout", "7200", "--priority", "80", "--queue-timeout", "600",
        "--", "python", "train.py", "--fast", "-v",
    ])
    assert result.exit_code == 0, result.output
    assert result.stdout == "t1\n"
    assert sent_bodies(fake_api) == [{
        "image": SENT_IMAGE, "params": "",
        "requirements": {"gpus": 1, "gpu_model": "1060", "min_vram_mb": 6000, "cpus": 4, "ram": 16000,
                         "max_cost": 1.5, "min_rating": 2.0},
        "command": ["python", "train.py", "--fast", "-v"], "env": {"EPOCHS": "3", "LR": "a=b"},
        "workdir": "/work", "ports": [8888, {"container": 22, "host": 2222}],
        "limits": {"cpus": 1.5, "memory": 4096, "cputime": 3600, "runtime": 7200},
        "priority": 80, "queue_timeout": 600,
    }]


@pytest.mark.parametrize("args, body", [
    (["--hwid", "h1"], {"hwid": "h1"}),  # the contract's three fields, nothing else
    ([], {}),  # placed anywhere
    (["--hwid", "h1", "--memory-limit", "512", "-p", "80:0"], {"hwid": "h1", "limits": {"memory": 512},
                                                              "ports": [80]}),
    (["--cmd", "sh -c 'echo hi'"], {"command": "sh -c 'echo hi'"}),
    (["--", "echo", "--", "x"], {"command": ["echo", "--", "x"]}),
    (["-e", "A=1", "-e", "A=2", "-e", "EMPTY="], {"env": {"A": "2", "EMPTY": ""}}),
])
def test_run_sends_only_what_is_given(invoke, fake_api, args, body):
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    result = invoke(["run", "helloworld", *args])
    assert result.exit_code == 0, result.output
    assert sent_bodies(fake_api) == [{"image": SENT_IMAGE, "params": "", **body}]


@pytest.mark.parametrize("args, message", [
    (["-e", "1BAD=x"], "'1BAD' is not a variable name"),
    (["-e", "NOVALUE"], "'NOVALUE' is not NAME=VALUE"),
    (["-e", "MEGAMIND_PARAMS=x"], "are the platform's"),
    (["-p", "abc"], "'abc' is not PORT or PORT:HOST_PORT"),
    (["-p", "80:abc"], "'80:abc' is not PORT or PORT:HOST_PORT"),
    (["-p", "-1"], "'-1' is not PORT or PORT:HOST_PORT"),
    (["-p", "0"], "the container port 0 is not a port"),
    (["-p", "80:70000"], "the host port 70000 is not a port"),
    (["--workdir", "work"], "'work' is not an absolute path"),
    (["--cmd", "python 'unclosed"], "cannot be split into words"),
    (["--cmd", "  "], "the command is empty"),
    (["--cmd", "a", "--", "b"], "--cmd and a command after `--` exclude each other"),
    (["python", "train.py"], "unexpected 'python': the task's command goes last, after `--`"),
    (["--hwid", "h", "--gpus", "1"], "--hwid and --gpus exclude each other"),
    (["--hwid", "h", "--max-cost", "1"], "--hwid and --max-cost exclude each other"),
    (["--priority", "101"], "Invalid value for '--priority'"),
    (["--queue-timeout", "0"], "Invalid value for '--queue-timeout'"),
    (["--timeout", "0"], "Invalid value for '--timeout'"),
    (["--cpu-limit", "0"], "Invalid value for '--cpu-limit'"),
    (["--gpus", "-1"], "Invalid value for '--gpus'"),
    (["--wait-timeout", "-1"], "Invalid value for '--wait-timeout'"),
])
def test_bad_job_options_are_usage_errors(invoke, fake_api, args, message):
    result = invoke(["run", "helloworld", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stdout == "" and fake_api.requests == []


def test_an_unsatisfiable_run_says_what_there_is(invoke, fake_api):
    fake_api.answer(*ADDTASK, (422, {"code": 20, "message": "no executor has 8 GPUs"}))
    result = invoke(["run", "helloworld", "--gpus", "8"])
    assert result.exit_code == 1
    assert result.stderr == ("error: no executor has 8 GPUs (unsatisfiable, code 20); see what there is with "
                             "`megamind hw --status any`\n")


def test_run_wait_shows_the_place_in_the_queue_then_the_usual_progress(invoke, fake_api):
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    fake_api.answer("GET", "/api/v1/task/t1", IN_QUEUE, IN_QUEUE, {**IN_QUEUE, "queue_position": 1},
                    {**IN_QUEUE, "queue_position": 1, "pending_reason": "1 executor fits; it is busy"},
                    {**DETAIL, "state": 2, "phase": "pulling"}, {**DETAIL, "progress": 5})
    result = invoke(["run", "helloworld", "--gpus", "1", "--wait", "--interval", "0.05"])
    assert result.exit_code == 0, result.output
    assert [line.split("] ", 1)[1] for line in result.stderr.splitlines()] == [
        "queued: position 2 (2 executors fit; both busy)",
        "queued: position 1 (2 executors fit; both busy)",
        "queued: position 1 (1 executor fits; it is busy)",
        "setup: pulling the image",
        "running (5%)",
    ]


def test_run_wait_gives_up_in_the_queue_and_the_task_goes_on(invoke, fake_api):
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    fake_api.answer("GET", "/api/v1/task/t1", IN_QUEUE)
    result = invoke(["run", "helloworld", "--wait", "--wait-timeout", "0"])
    assert result.exit_code == 6
    assert ("error: task t1 is still queued at position 2 (2 executors fit; both busy) after 0 s; it goes on"
            in result.stderr)


def test_a_task_that_waited_too_long_fails_the_wait(invoke, fake_api):
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    gave_up = {**IN_QUEUE, "state": 5, "phase": None, "queue_position": None, "pending_reason": None,
               "error_msg": "no executor found within the queue timeout of 60 s"}
    fake_api.answer("GET", "/api/v1/task/t1", IN_QUEUE, gave_up)
    result = invoke(["run", "helloworld", "--queue-timeout", "60", "--wait", "--interval", "0.05"])
    assert result.exit_code == 5
    assert "error: task t1 failed: no executor found within the queue timeout of 60 s" in result.stderr


# --- inspect ------------------------------------------------------------------------------


def shown(text: str) -> dict[str, str]:
    return {line.split("  ", 1)[0]: line.split("  ", 1)[1].strip() for line in text.splitlines()}


def test_inspect_shows_the_job_fields(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/task/t1", {**DETAIL, "placed_at": time.time() - 590,
                                               "started_at": time.time() - 530})
    result = invoke(["inspect", "t1"])
    assert result.exit_code == 0, result.output
    rows = shown(result.stdout)
    assert rows["command"] == "python train.py --name 'my run'"
    assert rows["workdir"] == "/work" and rows["env"] == "EPOCHS=3"
    assert rows["ports"] == "8888 -> 203.0.113.7:32768"
    assert rows["requires"] == "gpus >= 1, gpu model contains '1060', ram >= 15.6 GB, cost <= 1.50/h"
    assert rows["limits"] == "cpus 2, memory 4.0 GB, runtime 2h"
    assert rows["priority"] == "50"
    assert rows["executor"] == "h1 (online, 203.0.113.7)"
    assert rows["price"] == "0.50/h" and rows["billed"] == "1h 1m 30s, cost 0.51"
    assert rows["placed"] == "9m ago" and rows["started"] == "8m ago" and rows["finished"] == "-"
    assert "queue" not in rows and "exit code" not in rows


def test_inspect_shows_a_queued_task_s_place(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/task/t1", {**IN_QUEUE, "command": None, "workdir": None, "env": {},
                                               "requirements": {}, "limits": {}})
    rows = shown(invoke(["inspect", "t1"]).stdout)
    assert rows["what"] == "queued: position 2 (2 executors fit; both busy)"
    assert rows["queue"] == "position 2 (2 executors fit; both busy)"
    assert rows["executor"] == "not placed yet"
    assert rows["command"] == "- (the image's own)" and rows["workdir"] == "- (the image's own)"
    assert rows["env"] == rows["ports"] == rows["requires"] == rows["limits"] == rows["placed"] == "-"


def test_inspect_json_is_the_detail(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/task/t1", DETAIL)
    data = json.loads(invoke(["inspect", "t1", "--json"]).stdout)
    assert data["ports"] == DETAIL["ports"] and data["command"] == DETAIL["command"]
    assert data["limits"] == {"cpus": 2.0, "memory": 4096, "runtime": 7200}


def task(state, **extra):
    return Task("t", "", "i", "", state, extra.pop("error_msg", ""), **extra)


def test_states_of_the_job_model_are_described_for_people():
    queued = task(TaskState.SETUP, phase="queued", queue_position=3, pending_reason="no executor is online")
    assert taskview.describe_state(queued) == "queued: position 3 (no executor is online)"
    assert taskview.describe_state(task(TaskState.SETUP, phase="queued")) == "queued: waiting"
    assert taskview.describe_state(task(TaskState.STOPPED, cancelled=True)) == "stopped: cancelled"
    assert taskview.describe_port(PublishedPort(22, None, None)) == "22 (not published yet)"
    assert taskview.describe_requirements(Requirements(min_vram_mb=6144, cpus=2, min_rating=2.5)) == (
        "vram >= 6.0 GB per gpu, cpus >= 2, rating >= 2.5")
    assert taskview.describe_limits(TaskLimits(cputime=90)) == "cpu time 1m 30s"


# --- queue and cancel -----------------------------------------------------------------------


def test_queue_lists_the_waiting_tasks(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/queue", {"tasks": [queued(), {**queued(), "taskid": "t3", "queue_position": 2,
                                                                "priority": 50}]})
    result = invoke(["queue"])
    assert result.exit_code == 0, result.output
    header, first, second = result.stdout.splitlines()
    assert header.split() == ["POS", "TASKID", "IMAGE", "PRIORITY", "QUEUED", "GIVES", "UP", "REASON"]
    assert first.split() == ["1", "t2", IMAGE, "80", "2m", "ago", "in", "3h", "2", "executors", "fit;", "both",
                             "busy"]
    assert second.split()[:4] == ["2", "t3", IMAGE, "50"]
    assert invoke(["queue", "-q"]).stdout == "t2\nt3\n"
    assert [t["taskid"] for t in json.loads(invoke(["queue", "--json"]).stdout)] == ["t2", "t3"]


def test_an_empty_queue(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/queue", {"tasks": []})
    result = invoke(["queue"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", "no queued tasks\n")


def test_cancel_each_task(invoke, fake_api):
    fake_api.answer("POST", "/api/v1/task/t1/cancel", {"code": 0, "message": "ok"})
    fake_api.answer("POST", "/api/v1/task/nope/cancel", (404, {"code": 7, "message": "no task 'nope'"}))
    result = invoke(["cancel", "t1"])
    assert (result.exit_code, result.stdout) == (0, "cancelled t1\n")
    result = invoke(["cancel", "nope", "t1", "--json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {"cancelled": ["t1"], "failed": ["nope"]}
    assert "error: nope: no task 'nope' (task_not_found, code 7)" in result.stderr


# --- hw on the hardware listing -------------------------------------------------------------


def test_hw_asks_the_api_with_the_requirements(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/hardware", {"executors": [HARDWARE], "total": 1})
    result = invoke(["hw"])
    assert result.exit_code == 0, result.output
    header, row = result.stdout.splitlines()
    assert header.split() == ["HWID", "GPUS", "CPUS", "RAM", "NETWORK", "RATING", "COST/H"]
    assert row.split("  ")[0] == "h1" and "2× GTX 1060 (6.0 GB)" in row and "Xeon E5, 16 logical" in row
    assert row.rstrip().endswith("0.50")
    invoke(["hw", "--gpu", "--min-ram", "8000", "--min-cpus", "2", "--min-vram", "6000", "--max-cost", "1",
            "--sort", "rating", "--limit", "5", "--offset", "5"])
    invoke(["hw", "--gpus", "2", "--gpu", "--gpu-model", "1060", "--min-rating", "3", "--status", "any"])
    assert [r.query for r in fake_api.sent("GET", "/api/v1/hardware")] == [
        {"status": "free", "sort": "cost"},
        {"gpus": "1", "min_vram_mb": "6000", "cpus": "2", "ram": "8000", "max_cost": "1.0", "status": "free",
         "sort": "rating", "limit": "5", "offset": "5"},
        {"gpus": "2", "gpu_model": "1060", "min_rating": "3.0", "status": "any", "sort": "cost"},
    ]


def test_hw_shows_status_only_when_it_can_differ_and_says_when_there_are_more(invoke, fake_api):
    busy = {**HARDWARE, "hwid": "h2", "status": "busy", "gpus": [], "gpu_memory_mb": []}
    fake_api.answer("GET", "/api/v1/hardware", {"executors": [HARDWARE, busy], "total": 7})
    result = invoke(["hw", "--status", "any", "--limit", "2"])
    header, first, second = result.stdout.splitlines()
    assert header.split()[:3] == ["HWID", "STATUS", "GPUS"]
    assert first.split()[:2] == ["h1", "free"] and second.split()[:3] == ["h2", "busy", "-"]
    assert result.stderr == "showing 1-2 of 7 that match (--offset and --limit page on)\n"
    assert invoke(["hw", "-q", "--reverse"]).stdout == "h2\nh1\n"
    items = json.loads(invoke(["hw", "--json"]).stdout)
    assert [(i["hwid"], i["status"], i["cpu_count"]) for i in items] == [("h1", "free", 16), ("h2", "busy", 16)]


def test_hw_with_nothing_that_matches(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/hardware", {"executors": [], "total": 0})
    assert invoke(["hw", "--gpus", "9"]).stderr == "no free executor matches\n"
    assert invoke(["hw", "--status", "offline"]).stderr == "no executor matches\n"


# --- against the real application and a fake agent ------------------------------------------


def test_run_queue_inspect_and_cancel_on_the_real_application(live, agent, tmp_path):
    env = {"MEGAMIND_CONFIG": str(tmp_path / "config.json"), "MEGAMIND_API_URL": live.url,
           "MEGAMIND_API_KEY": live.new_key("customer")}

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    first = invoke("run", "helloworld", "--gpus", "1", "-e", "EPOCHS=3", "-p", "8888", "--", "python", "x.py")
    assert first.exit_code == 0, first.output
    first_id = first.stdout.strip()
    command = agent.start(first_id)
    assert (command.spec.command, command.spec.env) == (("python", "x.py"), {"EPOCHS": "3"})

    second = invoke("run", "helloworld", "--gpus", "1", "--priority", "90", "--wait", "--wait-timeout", "0.2",
                    "--interval", "0.05")
    assert second.exit_code == 6, second.output
    second_id = second.stdout.strip()
    assert "queued: position 1 (1 executor fits; busy)" in second.stderr

    rows = shown(invoke("inspect", second_id).stdout)
    assert rows["queue"] == "position 1 (1 executor fits; busy)" and rows["executor"] == "not placed yet"
    assert rows["priority"] == "90" and rows["requires"] == "gpus >= 1"
    assert shown(invoke("inspect", first_id).stdout)["env"] == "EPOCHS=3"
    assert invoke("queue", "-q").stdout == f"{second_id}\n"

    result = invoke("cancel", second_id)
    assert (result.exit_code, result.stdout) == (0, f"cancelled {second_id}\n")
    assert shown(invoke("inspect", second_id).stdout)["what"] == "stopped: cancelled"
    assert invoke("queue").stderr == "no queued tasks\n"
    assert invoke("run", "helloworld", "--gpus", "9").stderr.startswith("error: no executor meets gpus >= 9")
