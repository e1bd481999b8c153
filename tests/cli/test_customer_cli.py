"""The customer commands' parsing, help, configuration and failures, with CliRunner.

What they do against a real server and agent is in tests/e2e/test_cli.py.
"""

import json
import stat
import time

import click
import pytest
from click.testing import CliRunner

from megamind.cli import customer, render
from megamind.cli.main import COMMANDS, cli
from megamind.client import HardwareItem, Task, TaskState

CUSTOMER_COMMANDS = [name for name, target in COMMANDS.items() if target.startswith("megamind.cli.customer:")]
API_COMMANDS = [
    ["hw"], ["run", "helloworld", "--hwid", "h"], ["ps"], ["inspect", "t"], ["logs", "t"], ["logs", "-f", "t"],
    ["restart", "t"], ["rm", "t"], ["executors"], ["images"],
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
    (["run", "helloworld"], "Missing option '--hwid'"),
    (["run", "--hwid", "h"], "Missing argument 'IMAGE'"),
    (["hw", "--sort", "colour"], "Invalid value for '--sort'"),
    (["hw", "--min-ram", "-1"], "Invalid value for '--min-ram'"),
    (["ps", "--state", "sleeping"], "Invalid value for '--state'"),
    (["rm"], "Missing argument 'TASKID...'"),
    (["logs"], "Missing argument 'TASKID'"),
    (["run", "x", "--hwid", "h", "--interval", "0"], "Invalid value for '--interval'"),
    (["nosuchcommand"], "No such command 'nosuchcommand'"),
])
def test_usage_errors_exit_2(invoke, args, message):
    result = invoke(args)
    assert result.exit_code == customer.EXIT_USAGE == 2
    assert message in result.stderr
    assert result.stdout == ""


# --- configuration failures ---------------------------------------------------------------


@pytest.mark.parametrize("args", API_COMMANDS)
def test_without_an_api_key_every_call_says_how_to_log_in(invoke, args):
    result = invoke(args)
    assert result.exit_code == customer.EXIT_NOT_LOGGED_IN == 3
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
    assert result.exit_code == customer.EXIT_UNREACHABLE == 4
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
    assert customer.full_image(given) == sent


def hw(hwid, gpus=(), cpus=("c",), ram=1000, network="100mbit", rating=1.0, cost=1.0):
    return HardwareItem(hwid, list(gpus), list(cpus), ram, network, rating, cost)


def test_hardware_filters_and_sorting():
    items = [
        hw("a", gpus=["nVidia 1060 6G"] * 2, ram=32000, rating=4.5, cost=0.9),
        hw("b", ram=8000, rating=1.0, cost=0.1, network="1gbit"),
        hw("c", gpus=["A100"], cpus=["x", "x"], ram=64000, rating=9.0, cost=3.0, network="10mbit"),
    ]
    ids = lambda found: [h.hwid for h in found]  # noqa: E731
    assert ids(customer.filter_hardware(items)) == ["b", "a", "c"]  # cheapest first
    assert ids(customer.filter_hardware(items, gpu=True)) == ["a", "c"]
    assert ids(customer.filter_hardware(items, gpu_model="1060")) == ["a"]
    assert ids(customer.filter_hardware(items, min_gpus=2)) == ["a"]
    assert ids(customer.filter_hardware(items, min_cpus=2)) == ["c"]
    assert ids(customer.filter_hardware(items, min_ram=16000, max_cost=1.0)) == ["a"]
    assert ids(customer.filter_hardware(items, min_rating=4)) == ["a", "c"]
    assert ids(customer.filter_hardware(items, sort="rating", reverse=True)) == ["c", "a", "b"]
    assert ids(customer.filter_hardware(items, sort="network")) == ["c", "a", "b"]
    assert ids(customer.filter_hardware(items, sort="gpus")) == ["b", "c", "a"]


@pytest.mark.parametrize("text, mbit", [("100mbit", 100), ("1gbit", 1000), ("13625mbit", 13625),
                                        ("500kbit", 0.5), ("unknown", 0), ("", 0)])
def test_network_speeds(text, mbit):
    assert customer.network_mbit(text) == pytest.approx(mbit)


def task(state, **extra):
    return Task("t", "ip", "i", "", state, extra.pop("error_msg", ""), **extra)


def test_states_are_described_for_people():
    assert customer.describe_state(task(TaskState.SETUP, executor_online=True)) == (
        "setup: accepted, waiting for the executor")
    assert customer.describe_state(task(TaskState.SETUP, executor_online=True, phase="pulling")) == (
        "setup: pulling the image")
    assert customer.describe_state(task(TaskState.SETUP, executor_online=True, phase="starting")) == (
        "setup: starting the container")
    assert customer.describe_state(task(TaskState.SETUP, executor_online=False)) == (
        "setup: waiting for the executor to come back")
    assert customer.describe_state(task(TaskState.RUNNING)) == "running"
    assert customer.describe_state(task(TaskState.STOPPED)) == "stopped: exited with code 0"
    assert customer.describe_state(task(TaskState.ERROR, error_msg="exited with code 3")) == "error: exited with code 3"
    assert customer.describe_state(task(TaskState.UNKNOWN)) == "unknown: the executor is unreachable"


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
