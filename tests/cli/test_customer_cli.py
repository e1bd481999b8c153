"""The customer commands with CliRunner: parsing, help, configuration and failures, and
the output and input commands against the real application and a fake agent
(tests/client/live.py).  The whole platform as a new user meets it is in tests/e2e/test_cli.py.
"""

import json
import stat
import threading
import time

import click
import pytest
from click.testing import CliRunner

from megamind.api.keys import hub_key
from megamind.cli import render
from megamind.cli.customer import session, tasks, taskview
from megamind.cli.main import COMMANDS, cli
from megamind.client import Client, Results, Task, TaskState
from megamind.protocol import Stream
from tests.client.live import HARDWARE, IMAGE, FakeAgent, agent, eventually, live, new_agent, targz

__all__ = ["agent", "live", "new_agent"]  # fixtures

CUSTOMER_COMMANDS = [name for name, target in COMMANDS.items() if target.startswith("megamind.cli.customer.")]
API_COMMANDS = [
    ["hw"], ["run", "helloworld", "--hwid", "h"], ["run", "helloworld", "--hwid", "h", "--input", __file__],
    ["run", "helloworld", "--gpus", "1", "-e", "A=1", "-p", "8888", "--", "python", "x.py"],
    ["ps"], ["inspect", "t"], ["logs", "t"], ["logs", "-f", "t"], ["logs", "--stderr", "--all", "t"],
    ["results", "t"], ["upload", __file__], ["restart", "t"], ["rm", "t"], ["executors"], ["images"],
    ["queue"], ["cancel", "t"],
]


@pytest.fixture
def config_file(tmp_path):
    return tmp_path / "home" / "megamind" / "config.json"


@pytest.fixture
def invoke(config_file):
    runner = CliRunner()

    def run(args, env=None, **kwargs):
        base = {"MEGAMIND_CONFIG": str(config_file), "MEGAMIND_API_URL": None, "MEGAMIND_API_KEY": None}
        return runner.invoke(cli, args, env={**base, **(env or {})}, catch_exceptions=False, **kwargs)
    return run


# --- help ---------------------------------------------------------------------------------


def test_the_top_level_help_lists_every_command(invoke):
    result = invoke(["--help"])
    assert result.exit_code == 0
    for name in COMMANDS:
        assert f"\n  {name} " in result.stdout
    assert "Exit codes" in result.stdout


@pytest.mark.parametrize("name", CUSTOMER_COMMANDS)
def test_every_command_explains_every_option(invoke, name):
    command = cli.get_command(click.Context(cli), name)
    result = invoke([name, "--help"])
    assert result.exit_code == 0, result.output
    assert command.help and " ".join(command.help.split("\n")[0].split()) in " ".join(result.stdout.split())
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help"
            assert param.opts[-1] in result.stdout
    assert any(p.name == "as_json" for p in command.params), f"{name} has no --json"


# --- usage errors (exit 2) ----------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["run", "--hwid", "h"], "Missing argument 'IMAGE'"),
    (["run", "x", "-e", "1BAD=x"], "'1BAD' is not a variable name"),
    (["run", "x", "-p", "abc"], "'abc' is not PORT or PORT:HOST_PORT"),
    (["run", "x", "--hwid", "h", "--wait", "--timeout", "0"], "Invalid value for '--timeout'"),
    (["hw", "--sort", "colour"], "Invalid value for '--sort'"),
    (["hw", "--sort", "network"], "Invalid value for '--sort'"),
    (["hw", "--status", "sleeping"], "Invalid value for '--status'"),
    (["hw", "--min-ram", "-1"], "Invalid value for '--ram' / '--min-ram'"),
    (["hw", "--limit", "0"], "Invalid value for '--limit'"),
    (["cancel"], "Missing argument 'TASKID...'"),
    (["ps", "--state", "sleeping"], "Invalid value for '--state'"),
    (["rm"], "Missing argument 'TASKID...'"),
    (["logs"], "Missing argument 'TASKID'"),
    (["logs", "t", "--tail", "3", "--all"], "--tail and --all exclude each other"),
    (["logs", "t", "--tail", "-1"], "Invalid value for '--tail'"),
    (["results"], "Missing argument 'TASKID'"),
    (["upload", "/no/such/file"], "'/no/such/file' does not exist"),
    (["upload", "/"], "is a directory"),
    (["run", "x", "--hwid", "h", "--input", "/no/such/file"], "'/no/such/file' does not exist"),
    (["run", "x", "--hwid", "h", "--input", __file__, "--input", __file__], "two inputs would both be"),
    (["run", "x", "--hwid", "h", "--interval", "0"], "Invalid value for '--interval'"),
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
])
def test_usage_errors_exit_2(invoke, args, message):
    result = invoke(args)
    assert result.exit_code == session.EXIT_USAGE == 2
    assert message in result.stderr
    assert result.stdout == ""


# --- configuration failures ---------------------------------------------------------------


@pytest.mark.parametrize("args", API_COMMANDS)
def test_without_an_api_key_every_call_says_how_to_log_in(invoke, args):
    result = invoke(args)
    assert result.exit_code == session.EXIT_NOT_LOGGED_IN == 3
    assert result.stderr == "error: no api-key: run `megamind login`, or set MEGAMIND_API_KEY\n"
    assert result.stdout == ""


def test_a_broken_login_file_says_so(invoke, config_file):
    config_file.parent.mkdir(parents=True)
    config_file.write_text("{broken")
    result = invoke(["ps"])
    assert result.exit_code == 3
    assert "cannot read" in result.stderr and "megamind login" in result.stderr


@pytest.mark.parametrize("args", API_COMMANDS)
def test_an_unreachable_api_exits_4_naming_where_it_looked(invoke, args):
    result = invoke(args, env={"MEGAMIND_API_URL": "http://127.0.0.1:9", "MEGAMIND_API_KEY": "mk_k"})
    assert result.exit_code == session.EXIT_UNREACHABLE == 4
    assert result.stderr.startswith("error: cannot reach the Megamind API at http://127.0.0.1:9: Connection refused")
    assert "MEGAMIND_API_URL" in result.stderr
    assert result.stdout == ""


# --- login and logout ---------------------------------------------------------------------


def test_login_without_verifying_writes_a_private_file(invoke, config_file):
    result = invoke(["login", "--api-url", "http://api.example:8080/api/", "--api-key", "mk_abc", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"logged in to http://api.example:8080; stored in {config_file} (mode 600)\n"
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert json.loads(config_file.read_text()) == {"api_url": "http://api.example:8080", "api_key": "mk_abc"}


def test_login_asks_for_the_key_without_echo(invoke, config_file):
    result = invoke(["login", "--no-verify", "--json"], input="mk_typed\n")
    assert result.exit_code == 0, result.output
    assert "mk_typed" not in result.stdout + result.stderr
    assert json.loads(result.stdout) == {"api_url": "http://127.0.0.1:8080", "config": str(config_file),
                                         "verified": False}
    assert json.loads(config_file.read_text())["api_key"] == "mk_typed"


def test_login_takes_the_key_from_the_environment(invoke, config_file):
    result = invoke(["login", "--no-verify"], env={"MEGAMIND_API_KEY": "mk_env"})
    assert result.exit_code == 0
    assert json.loads(config_file.read_text())["api_key"] == "mk_env"


def test_login_refuses_an_empty_key(invoke, config_file):
    result = invoke(["login", "--no-verify"], input="  \n")
    assert result.exit_code == 2
    assert "empty api-key" in result.stderr
    assert not config_file.exists()


def test_login_that_cannot_verify_writes_nothing(invoke, config_file):
    result = invoke(["login", "--api-url", "http://127.0.0.1:9", "--api-key", "mk_k"])
    assert result.exit_code == 4
    assert "cannot reach" in result.stderr
    assert not config_file.exists()


def test_login_replaces_a_broken_file(invoke, config_file):
    config_file.parent.mkdir(parents=True)
    config_file.write_text("{broken")
    result = invoke(["login", "--api-key", "mk_k", "--no-verify"])
    assert result.exit_code == 0, result.output
    assert json.loads(config_file.read_text())["api_key"] == "mk_k"


def test_logout(invoke, config_file):
    invoke(["login", "--api-key", "mk_k", "--no-verify"])
    result = invoke(["logout"])
    assert (result.exit_code, result.stdout) == (0, f"removed {config_file}\n")
    assert not config_file.exists()
    result = invoke(["logout", "--json"])
    assert json.loads(result.stdout) == {"config": str(config_file), "removed": False}


# --- the pieces behind the commands -------------------------------------------------------


@pytest.mark.parametrize("given, sent", [
    ("helloworld", "megamind.network/helloworld"),
    ("helloworld:1.0", "megamind.network/helloworld:1.0"),
    ("ml/trainer:2", "megamind.network/ml/trainer:2"),
    ("megamind.network/helloworld:latest", "megamind.network/helloworld:latest"),
    ("docker.io/library/busybox", "docker.io/library/busybox"),  # sent as is, and refused by the API
    ("127.0.0.1:5000/helloworld", "127.0.0.1:5000/helloworld"),
    ("localhost/x", "localhost/x"),
])
def test_short_image_names(given, sent):
    assert tasks.full_image(given) == sent


def task(state, **extra):
    return Task("t", "ip", "i", "", state, extra.pop("error_msg", ""), **extra)


def test_states_are_described_for_people():
    assert taskview.describe_state(task(TaskState.SETUP, executor_online=True)) == (
        "setup: accepted, waiting for the executor")
    assert taskview.describe_state(task(TaskState.SETUP, executor_online=True, phase="pulling")) == (
        "setup: pulling the image")
    assert taskview.describe_state(task(TaskState.SETUP, executor_online=True, phase="starting")) == (
        "setup: starting the container")
    assert taskview.describe_state(task(TaskState.SETUP, executor_online=False)) == (
        "setup: waiting for the executor to come back")
    assert taskview.describe_state(task(TaskState.RUNNING)) == "running"
    assert taskview.describe_state(task(TaskState.RUNNING, progress=42.0)) == "running (42%)"
    assert taskview.describe_state(task(TaskState.RUNNING, progress=7.5)) == "running (7.5%)"
    assert taskview.describe_state(task(TaskState.STOPPED)) == "stopped: exited with code 0"
    assert taskview.describe_state(task(TaskState.ERROR, error_msg="exited with code 3")) == "error: exited with code 3"
    assert taskview.describe_state(task(TaskState.UNKNOWN)) == "unknown: the executor is unreachable"


def test_tables_and_short_forms():
    assert render.table(["A", "LONG"], [["xyz", "1"], ["x", "22"]], right={1}).split("\n") == [
        "A    LONG", "xyz     1", "x      22"]
    assert render.counted(["g", "g", "h"]) == "2× g, h"
    assert render.counted([]) == "-"
    assert render.shorten("a\nb  c", 10) == "a b c"
    assert render.shorten("abcdefghijkl", 5) == "abcd…"
    assert render.megabytes(512) == "512 MB" and render.megabytes(32000) == "31.2 GB"
    now = time.time()
    assert render.ago(None) == "never"
    assert render.ago(now - 5, now) == "5s ago" and render.ago(now - 7200, now) == "2h ago"
    assert render.fields([("a", 1), ("long", "x")]) == "a     1\nlong  x"
    assert [render.size(n) for n in (0, 1023, 1536, 5 * 1024 ** 2, 3 * 1024 ** 3)] == [
        "0 B", "1023 B", "1.5 KB", "5.0 MB", "3.0 GB"]
    assert render.percent(100.0) == "100%"


def test_results_are_described_for_people():
    now = time.time()
    assert taskview.describe_results(task(TaskState.RUNNING)) == "none yet"
    assert taskview.describe_results(task(TaskState.STOPPED)) == "none"
    done = task(TaskState.STOPPED, results=Results(2048, 0, now - 60))
    assert taskview.describe_results(done) == "2.0 KB, collected 1m ago (`megamind results t`)"
    cut = task(TaskState.ERROR, results=Results(2048, 3, now))
    assert "3 files left out" in taskview.describe_results(cut)


# --- against the real application and a fake agent ----------------------------------------


@pytest.fixture
def api_env(live):
    return {"MEGAMIND_API_URL": live.url, "MEGAMIND_API_KEY": live.new_key("customer")}


@pytest.fixture
def running(api_env, agent):
    """A task the fake agent runs, and a client on the customer's account."""
    with Client(api_env["MEGAMIND_API_URL"], api_env["MEGAMIND_API_KEY"]) as api:
        taskid = api.add_task(IMAGE, agent.hwid)
        agent.start(taskid)
        api.wait_task(taskid, timeout=5, interval=0.02)
        yield taskid, api


def wait_logged(api: Client, taskid: str, stream: str = "stdout") -> None:
    deadline = time.monotonic() + 5
    while not api.logs(taskid, stream, tail=1):
        assert time.monotonic() < deadline, "no line arrived"
        time.sleep(0.02)


def test_logs_tail_all_stderr_and_json(invoke, api_env, agent, running):
    taskid, api = running
    lines = [f"out {i}" for i in range(30)]
    agent.logs(taskid, lines)
    agent.logs(taskid, ["err 1", "err 2"], Stream.STDERR)
    wait_logged(api, taskid)
    wait_logged(api, taskid, "stderr")
    assert invoke(["logs", taskid], env=api_env).stdout == "".join(f"{line}\n" for line in lines[-20:])
    assert invoke(["logs", taskid, "--tail", "3"], env=api_env).stdout == "out 27\nout 28\nout 29\n"
    assert invoke(["logs", taskid, "--all"], env=api_env).stdout == "".join(f"{line}\n" for line in lines)
    assert invoke(["logs", taskid, "--stderr"], env=api_env).stdout == "err 1\nerr 2\n"
    result = invoke(["logs", taskid, "--stderr", "--tail", "1", "--json"], env=api_env)
    assert json.loads(result.stdout) == {"taskid": taskid, "stream": "stderr", "lines": ["err 2"]}


def later(*steps) -> threading.Thread:
    """The agent's part, in a thread, while the command runs in the test's."""
    def run():
        time.sleep(0.3)
        for step in steps:
            step()
    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("options, first", [([], 20), (["--all"], 30), (["--tail", "0"], 0)])
def test_logs_follow_prints_every_line_until_the_task_ends(invoke, api_env, agent, running, options, first):
    taskid, api = running
    old = [f"old {i}" for i in range(30)]
    agent.logs(taskid, old)
    wait_logged(api, taskid)
    new = [f"new {i}" for i in range(2000)]
    writer = later(*(lambda b=b: agent.logs(taskid, new[b:b + 250]) for b in range(0, 2000, 250)),
                   lambda: agent.state(taskid, TaskState.STOPPED))
    result = invoke(["logs", "-f", taskid, *options], env=api_env)
    writer.join()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == old[len(old) - first:] + new
    assert result.stderr == f"task {taskid} ended: stopped: exited with code 0\n"


def test_logs_follow_json_and_stderr(invoke, api_env, agent, running):
    taskid, _ = running
    writer = later(lambda: agent.logs(taskid, ["oops"], Stream.STDERR),
                   lambda: agent.state(taskid, TaskState.ERROR, "exited with code 2"))
    result = invoke(["logs", "-f", "--stderr", "--json", taskid], env=api_env)
    writer.join()
    assert [json.loads(line) for line in result.stdout.splitlines()] == [
        {"taskid": taskid, "stream": "stderr", "line": "oops"}]
    assert "ended: error: exited with code 2" in result.stderr


def test_results_download_into_a_folder(invoke, api_env, agent, running, tmp_path, monkeypatch):
    taskid, _ = running
    result = invoke(["results", taskid], env=api_env)
    assert result.exit_code == 1
    assert "they are collected when it ends (results_not_found, code 19)" in result.stderr
    files = {"model.bin": bytes(range(256)) * 1000, "eval/score.txt": b"0.93\n"}
    agent.put_results(taskid, targz(files))
    agent.state(taskid, TaskState.STOPPED)
    out = tmp_path / "chosen"
    result = invoke(["results", taskid, "-o", str(out)], env=api_env)
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{out / 'model.bin'}\n{out / 'eval' / 'score.txt'}\n"
    assert {name: (out / name).read_bytes() for name in files} == files
    monkeypatch.chdir(tmp_path)
    result = invoke(["results", taskid, "--json"], env=api_env)
    assert json.loads(result.stdout) == {"taskid": taskid, "directory": f"{taskid}-results",
                                         "files": [f"{taskid}-results/model.bin", f"{taskid}-results/eval/score.txt"]}
    assert (tmp_path / f"{taskid}-results" / "eval" / "score.txt").read_bytes() == b"0.93\n"
    agent.put_results(taskid, targz({"../outside": b"x"}))
    result = invoke(["results", taskid, "-o", str(tmp_path / "unsafe")], env=api_env)
    assert result.exit_code == 1 and "'..'" in result.stderr and "nothing was unpacked" in result.stderr
    assert not (tmp_path / "outside").exists()


def test_upload_prints_the_file_id(invoke, api_env, tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"a,b\n")
    result = invoke(["upload", str(path)], env=api_env)
    assert result.exit_code == 0, result.output
    file_id = result.stdout.strip()
    result = invoke(["upload", str(path), "--name", "other.csv", "--json"], env=api_env)
    info = json.loads(result.stdout)
    assert (info["name"], info["size"]) == ("other.csv", 4) and info["file_id"] not in ("", file_id)


def test_run_with_inputs_and_wait_shows_progress(invoke, api_env, agent, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "weights.bin").write_bytes(b"\0" * 5000)
    (tmp_path / "params.json").write_bytes(b'{"epochs": 3}')
    seen = {}

    def agent_side():
        command = agent.command()
        seen["inputs"] = command.inputs
        seen["bytes"] = [agent.get_file(i.file_id, command.taskid) for i in command.inputs]
        agent.ack(command.id)
        agent.logs(command.taskid, ["MEGAMIND_PROGRESS=42"])
        time.sleep(0.3)  # the progress is stored before the state says running
        agent.state(command.taskid, TaskState.RUNNING)
    thread = threading.Thread(target=agent_side)
    thread.start()
    result = invoke(["run", "helloworld", "--hwid", agent.hwid, "--input", str(tmp_path / "a" / "weights.bin"),
                     "--input", str(tmp_path / "params.json"), "--wait", "--interval", "0.05"], env=api_env)
    thread.join()
    assert result.exit_code == 0, result.output
    taskid = result.stdout.strip()
    assert [(i.name, i.size) for i in seen["inputs"]] == [("weights.bin", 5000), ("params.json", 13)]
    assert seen["bytes"] == [b"\0" * 5000, b'{"epochs": 3}']
    assert "uploaded" in result.stderr and "/megamind/input/weights.bin" in result.stderr
    assert result.stderr.rstrip().endswith("] running (42%)")
    shown = invoke(["inspect", taskid], env=api_env).stdout
    assert "progress  42%" in shown and "results   none yet" in shown


def test_durations_and_deadlines():
    assert [render.duration(s) for s in (0, 45, 90, 7200, 3661, 90061, 59.9)] == [
        "0s", "45s", "1m 30s", "2h", "1h 1m 1s", "1d 1h 1m 1s", "59s"]
    now = time.time()
    assert render.until(None) == "-"
    assert render.until(now - 1, now) == "now" and render.until(now + 30, now) == "in 30s"
    assert render.until(now + 3 * 3600 + 5, now) == "in 3h" and render.until(now + 2 * 86400, now) == "in 2d"


def test_executors_rm_removes_an_owners_executor(invoke, live):
    owner_key = live.new_key("owner")
    owner_env = {"MEGAMIND_API_URL": live.url, "MEGAMIND_API_KEY": owner_key}
    executor = FakeAgent(live, owner_key, HARDWARE, 0.5)
    try:
        assert [e["hwid"] for e in json.loads(invoke(["executors", "--json"], env=owner_env).stdout)] == [
            executor.hwid]
        # Another account's executor answers as an unknown one, and is left as it is.
        stranger = invoke(["executors", "rm", executor.hwid], env={**owner_env, "MEGAMIND_API_KEY": live.new_key()})
        assert stranger.exit_code == session.EXIT_API_ERROR == 1
        assert "executor_not_found" in stranger.stderr and stranger.stdout == ""

        removed = invoke(["executors", "rm", executor.hwid], env=owner_env)
        assert (removed.exit_code, removed.stdout) == (0, f"removed {executor.hwid}\n")
        eventually(lambda: not live.app[hub_key].is_online(executor.hwid))
        assert json.loads(invoke(["executors", "--json"], env=owner_env).stdout) == []
        assert invoke(["executors"], env=owner_env).stderr == "no executors registered with this account\n"

        again = invoke(["executors", "rm", executor.hwid, "--json"], env=owner_env)
        assert again.exit_code == 1 and json.loads(again.stdout) == {"removed": [], "failed": [executor.hwid]}
    finally:
        executor.close()
