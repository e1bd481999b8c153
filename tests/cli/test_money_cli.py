"""Money in the CLI: `estimate` (with exactly `run`'s options), the estimate `run` shows and
asks about before it submits, `account`, `spend-limit`, `history`, `usage` and
`earnings`; against a recording stand-in for the API (tests/client/fakeapi.py)."""

import json
import time
from decimal import Decimal

import pytest
from click.testing import CliRunner

from megamind.cli import render
from megamind.cli.customer import spending
from megamind.cli.main import cli
from tests.client.fakeapi import ACCOUNT, EARNINGS, ESTIMATE, HISTORY_CSV, TASK, USAGE, fake_api, task_page

__all__ = ["fake_api"]  # fixture

SENT_IMAGE = "megamind.network/helloworld"  # `run helloworld`, as sent
ESTIMATE_CALL = ("POST", "/api/v1/estimate")
ADDTASK = ("POST", "/api/v1/addtask")
HISTORY = ("GET", "/api/v1/history")
UNKNOWN = {**ESTIMATE, "free": [], "queue_position": 3, "price": None, "estimated_time_seconds": None,
           "estimated_cost": None}


@pytest.fixture
def invoke(fake_api, tmp_path):
    runner = CliRunner()

    def run(args, **kwargs):
        env = {"MEGAMIND_CONFIG": str(tmp_path / "config.json"), "MEGAMIND_API_URL": fake_api.url,
               "MEGAMIND_API_KEY": "mk_k"}
        return runner.invoke(cli, args, env=env, catch_exceptions=False, **kwargs)
    return run


@pytest.fixture
def at_a_terminal(monkeypatch):
    monkeypatch.setattr(spending, "stdin_is_a_terminal", lambda: True)


def shown(text: str) -> dict[str, str]:
    return {line.split("  ", 1)[0]: line.split("  ", 1)[1].strip() for line in text.splitlines() if line}


MONEY_COMMANDS = [["estimate", "helloworld"], ["account"], ["spend-limit", "1"], ["history"], ["history", "--csv"],
                  ["usage"], ["earnings"]]


@pytest.mark.parametrize("args", MONEY_COMMANDS)
def test_the_money_commands_fail_as_the_others_do(args, tmp_path):
    runner = CliRunner()
    env = {"MEGAMIND_CONFIG": str(tmp_path / "config.json"), "MEGAMIND_API_KEY": None}
    result = runner.invoke(cli, args, env=env, catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (3, "")
    result = runner.invoke(cli, args, env={**env, "MEGAMIND_API_URL": "http://127.0.0.1:9", "MEGAMIND_API_KEY": "k"},
                           catch_exceptions=False)
    assert (result.exit_code, result.stdout) == (4, "")
    assert result.stderr.startswith("error: cannot reach the Megamind API at http://127.0.0.1:9")


def test_money_is_shown_to_six_decimals_at_most():
    assert [render.money(v) for v in (Decimal("1.50"), 0.000125, 3, Decimal("12.3456789"), 1e-7, 100)] == [
        "1.5", "0.000125", "3", "12.345679", "0", "100"]


# --- estimate -----------------------------------------------------------------------------


def test_estimate_shows_what_run_would_do(invoke, fake_api):
    fake_api.answer(*ESTIMATE_CALL, {**ESTIMATE, "free": ESTIMATE["free"] * 3})
    result = invoke(["estimate", "helloworld"])
    assert result.exit_code == 0, result.output
    assert shown(result.stdout) == {"fits": "3 executors", "free": "h1 (0.5/h), h2 (0.75/h), h1 (0.5/h) and 3 more",
                                    "queue": "placed at once", "price": "0.5/h", "time": "2h", "cost": "1"}
    assert json.loads(invoke(["estimate", "helloworld", "--json"]).stdout)["estimated_cost"] == 1.0


def test_what_the_api_cannot_tell_is_unknown(invoke, fake_api):
    fake_api.answer(*ESTIMATE_CALL, UNKNOWN)
    rows = shown(invoke(["estimate", "helloworld"]).stdout)
    assert (rows["free"], rows["queue"], rows["price"], rows["time"], rows["cost"]) == (
        "none", "position 3", "unknown", "unknown", "unknown")


def test_estimate_sends_what_run_would_send(invoke, fake_api):
    fake_api.answer(*ESTIMATE_CALL, ESTIMATE)
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    args = ["helloworld", "--gpus", "1", "--ram", "16000", "--timeout", "3600", "--memory-limit", "512", "-e", "A=1",
            "--params", "p", "--priority", "80", "--", "python", "x.py"]
    assert invoke(["estimate", *args]).exit_code == 0
    assert invoke(["run", "--yes", *args]).exit_code == 0
    [alone, before_run] = [r.body for r in fake_api.sent(*ESTIMATE_CALL)]
    assert alone == before_run == fake_api.sent(*ADDTASK)[0].body == {
        "image": SENT_IMAGE, "params": "p", "requirements": {"gpus": 1, "ram": 16000},
        "limits": {"memory": 512, "runtime": 3600}, "env": {"A": "1"}, "priority": 80, "command": ["python", "x.py"]}


def test_estimate_takes_exactly_run_s_options_but_waiting_and_asking():
    def params(name):
        return {p.name for p in cli.get_command(None, name).params}
    assert params("estimate") == params("run") - {"wait", "wait_timeout", "interval", "yes"}


@pytest.mark.parametrize("args, message", [
    (["--hwid", "h", "--gpus", "1"], "--hwid and --gpus exclude each other"),
    (["python"], "the task's command goes last, after `--`"),
    (["--timeout", "0"], "Invalid value for '--timeout'"),
])
def test_estimate_refuses_what_run_refuses(invoke, fake_api, args, message):
    result = invoke(["estimate", "helloworld", *args])
    assert result.exit_code == 2 and message in result.stderr
    assert fake_api.requests == []


def test_estimate_checks_inputs_without_uploading_them(invoke, fake_api):
    fake_api.answer(*ESTIMATE_CALL, ESTIMATE)
    assert invoke(["estimate", "helloworld", "--input", __file__]).exit_code == 0
    assert [(r.method, r.path) for r in fake_api.requests] == [ESTIMATE_CALL]
    assert fake_api.sent(*ESTIMATE_CALL)[0].body == {"image": SENT_IMAGE, "params": ""}


# --- run: the estimate first ----------------------------------------------------------------


def test_run_shows_the_estimate_before_it_submits(invoke, fake_api):
    fake_api.answer(*ESTIMATE_CALL, ESTIMATE)
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    result = invoke(["run", "helloworld"])  # not at a terminal: nothing asked, as scripts need
    assert result.exit_code == 0, result.output
    assert result.stdout == "t1\n"
    assert result.stderr == ("estimate: fits 3 executors; free h1 (0.5/h), h2 (0.75/h); queue placed at once; "
                             "price 0.5/h; time 2h; cost 1\n")
    assert [(r.method, r.path) for r in fake_api.requests] == [ESTIMATE_CALL, ADDTASK]


def test_run_at_a_terminal_asks_and_no_runs_nothing(invoke, fake_api, at_a_terminal):
    fake_api.answer(*ESTIMATE_CALL, ESTIMATE)
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    result = invoke(["run", "helloworld"], input="n\n")
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr.endswith("Run it? [y/N]: n\nnot run\n")
    assert invoke(["run", "helloworld"], input="\n").stderr.endswith("Run it? [y/N]: \nnot run\n")
    assert fake_api.sent(*ADDTASK) == []
    result = invoke(["run", "helloworld"], input="y\n")
    assert (result.exit_code, result.stdout) == (0, "t1\n")
    assert len(fake_api.sent(*ADDTASK)) == 1


def test_run_yes_does_not_ask(invoke, fake_api, at_a_terminal):
    fake_api.answer(*ESTIMATE_CALL, ESTIMATE)
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    for flag in ("--yes", "-y"):
        result = invoke(["run", "helloworld", flag])
        assert (result.exit_code, result.stdout) == (0, "t1\n")
        assert result.stderr.startswith("estimate: ") and "Run it?" not in result.stderr
    assert len(fake_api.sent(*ADDTASK)) == 2


def test_run_without_an_estimate_goes_on_as_before(invoke, fake_api, at_a_terminal):
    # The stand-in answers 404 (route_not_found) to a call it was not given, as an older server.
    fake_api.answer(*ADDTASK, {"taskid": "t1"})
    result = invoke(["run", "helloworld"])
    assert (result.exit_code, result.stdout, result.stderr) == (0, "t1\n", "")


@pytest.mark.parametrize("code, message, hint", [
    (22, "the balance 0.01 cannot pay one minute at 1.2/h",
     "(insufficient_funds, code 22); see your balance with `megamind account`"),
    (23, "the spend limit of 1/h is reached",
     "(spend_limit_reached, code 23); see `megamind account`, or change the limit with `megamind spend-limit`"),
])
def test_a_run_the_account_cannot_pay_says_why(invoke, fake_api, code, message, hint):
    fake_api.answer(*ADDTASK, (402, {"code": code, "message": message}))
    result = invoke(["run", "helloworld", "--yes"])
    assert result.exit_code == 1
    assert result.stderr == f"error: {message} {hint}\n"


# --- account and spend-limit ----------------------------------------------------------------


def test_account(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/account", ACCOUNT,
                    {"name": "bob", "balance": None, "spent_today": 0, "spent_month": 0.5,
                     "spend_limit_per_hour": None, "spent_last_hour": 0})
    assert shown(invoke(["account"]).stdout) == {
        "account": "alice", "balance": "12.345678", "spent today": "0.1", "spent this month": "3.25",
        "spend limit": "2.5/h (0.05 spent in the last hour)"}
    rows = shown(invoke(["account"]).stdout)
    assert (rows["balance"], rows["spend limit"]) == ("not prepaid (usage is recorded)", "none")
    assert json.loads(invoke(["account", "--json"]).stdout)["balance"] is None


def test_spend_limit(invoke, fake_api):
    fake_api.answer("PATCH", "/api/v1/account", {**ACCOUNT, "spend_limit_per_hour": 1.25, "spent_last_hour": 0},
                    {**ACCOUNT, "spend_limit_per_hour": None})
    result = invoke(["spend-limit", "1.25"])
    assert (result.exit_code, result.stdout) == (0, "spend limit: 1.25/h (0 spent in the last hour)\n")
    assert invoke(["spend-limit", "None"]).stdout == "spend limit: none\n"
    assert [r.body for r in fake_api.sent("PATCH", "/api/v1/account")] == [
        {"spend_limit_per_hour": 1.25}, {"spend_limit_per_hour": None}]


@pytest.mark.parametrize("amount", ["lots", "nan", "inf", "-1"])
def test_a_spend_limit_that_is_not_an_amount_is_a_usage_error(invoke, fake_api, amount):
    result = invoke(["spend-limit", "--", amount])  # after `--`, -1 is not an option
    assert result.exit_code == 2 and "is not an amount of 0 or more, nor 'none'" in result.stderr
    assert fake_api.requests == []


# --- history ------------------------------------------------------------------------------


CREATED = time.mktime((2026, 12, 1, 9, 30, 0, 0, 0, -1))  # local time, as the table shows it


def done(taskid: str, **extra) -> dict:
    return {**TASK, "taskid": taskid, "state": 3, "created_at": CREATED, "price": 0.5, "billed_seconds": 90,
            "cost": 0.0125, "deleted": False, **extra}


def test_history_lists_a_page_with_the_deleted_marked(invoke, fake_api):
    fake_api.answer(*HISTORY, task_page(done("t2", deleted=True, state=4), done("t1", cost=None, billed_seconds=None),
                                        total=7, next_cursor="c"))
    result = invoke(["history"])
    assert result.exit_code == 0, result.output
    header, first, second = result.stdout.splitlines()
    assert header.split() == ["TASKID", "IMAGE", "STATE", "CREATED", "BILLED", "COST", "DELETED"]
    assert first.split() == ["t2", TASK["image"], "stopped", "2026-12-01", "09:30", "1m", "30s", "0.0125", "yes"]
    assert second.split() == ["t1", TASK["image"], "running", "2026-12-01", "09:30", "-", "-"]
    assert result.stderr == "showing the newest 2 of 7 (--all for every one)\n"


def test_history_sends_its_filters(invoke, fake_api):
    fake_api.answer(*HISTORY, task_page())
    result = invoke(["history", "--from", "2026-12-01", "--to", "1764720000", "--state", "error",
                     "--image", "helloworld:2", "--limit", "50"])
    assert (result.exit_code, result.stderr) == (0, "no tasks in this range\n")
    assert fake_api.sent(*HISTORY)[0].query == {"from": "2026-12-01", "to": "1764720000", "state": "error",
                                                "image": "megamind.network/helloworld:2", "limit": "50"}


def test_history_all_follows_every_page(invoke, fake_api):
    fake_api.answer(*HISTORY, task_page(done("t3"), total=3, next_cursor="c1"),
                    task_page(done("t2"), total=3, next_cursor="c2"), task_page(done("t1"), total=3))
    data = json.loads(invoke(["history", "--all", "--limit", "1", "--json"]).stdout)
    assert [t["taskid"] for t in data["tasks"]] == ["t3", "t2", "t1"]
    assert (data["total"], data["has_more"], data["next_cursor"]) == (3, False, None)
    assert [r.query.get("cursor") for r in fake_api.sent(*HISTORY)] == [None, "c1", "c2"]


def test_history_as_csv_to_stdout_or_a_file(invoke, fake_api, tmp_path):
    fake_api.answer(*HISTORY, HISTORY_CSV)
    result = invoke(["history", "--csv", "--from", "2026-12-01"])
    assert (result.exit_code, result.stdout_bytes) == (0, HISTORY_CSV.encode())  # .stdout would turn CRLF to LF
    target = tmp_path / "history.csv"
    result = invoke(["history", "--state", "stopped", "--csv", str(target)])
    assert (result.exit_code, result.stdout) == (0, "")
    assert target.read_bytes() == HISTORY_CSV.encode()  # the line ends too, as they came
    assert result.stderr == f"wrote the history to {target}\n"
    sent = fake_api.sent(*HISTORY)
    assert [r.accept for r in sent] == ["text/csv", "text/csv"]
    assert [r.query for r in sent] == [{"from": "2026-12-01"}, {"state": "stopped"}]


@pytest.mark.parametrize("args, message", [
    (["--from", "yesterday"], "'yesterday' is not a day (YYYY-MM-DD) or Unix seconds"),
    (["--to", "2026-13-01"], "'2026-13-01' is not a day"),
    (["--limit", "1001"], "Invalid value for '--limit'"),
    (["--csv", "--limit", "5"], "--csv writes every task of the range: it excludes --limit"),
    (["--csv", "out.csv", "--json"], "it excludes --json"),
])
def test_history_usage_errors(invoke, fake_api, args, message):
    result = invoke(["history", *args])
    assert result.exit_code == 2 and message in result.stderr
    assert fake_api.requests == []


# --- usage and earnings ---------------------------------------------------------------------


def test_usage_per_day_and_per_image(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/usage", USAGE)
    result = invoke(["usage", "--from", "2026-12-01", "--to", "2026-12-02"])
    assert result.exit_code == 0, result.output
    totals, days, images = result.stdout.split("\n\n")
    assert shown(totals) == {"total": "3.25", "billed": "6h 30m"}
    assert [line.split() for line in days.splitlines()] == [
        ["DAY", "BILLED", "SPENT"], ["2026-12-01", "4h", "30m", "2.25"], ["2026-12-02", "2h", "1"]]
    assert [line.split() for line in images.splitlines()] == [
        ["IMAGE", "TASKS", "BILLED", "SPENT"], ["megamind.network/trainer:1", "2", "6h", "30m", "3.25"]]
    assert fake_api.sent("GET", "/api/v1/usage")[0].query == {"from": "2026-12-01", "to": "2026-12-02"}
    assert json.loads(invoke(["usage", "--json"]).stdout) == USAGE


def test_earnings_per_executor_and_in_all(invoke, fake_api):
    fake_api.answer("GET", "/api/v1/earnings", EARNINGS, {"total": 0, "executors": []})
    result = invoke(["earnings", "--from", "1764633600"])
    assert result.exit_code == 0, result.output
    table, total = result.stdout.split("\n\n")
    assert [line.split() for line in table.splitlines()] == [
        ["HWID", "BILLED", "EARNED"], ["h1", "8h", "4"], ["h2", "1h", "0.5"]]
    assert total == "total  4.5\n"
    assert fake_api.sent("GET", "/api/v1/earnings")[0].query == {"from": "1764633600"}
    assert invoke(["earnings"]).stdout == "total  0\n"
