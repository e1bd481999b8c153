"""Money on the real engine: a task's bill against its container's own run time, the
ledger behind it, a bill that outlives killed processes, and a prepaid balance running out.

Each test has an API server of its own (`platform`) and reads its SQLite file
read-only to see the ledger (`charges`) the bill was made of.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

from megamind.store.spending import BALANCE_EXHAUSTED

from .conftest import containers_of, wait_no_containers
from .processes import MEGAMIND

PRICE = 3600.0  # per hour: one unit a second, so amounts read as seconds
ENGINE_SLACK_S = 1.0  # how far a bill may be from the engine's run time


# --- what the engine and the ledger say --------------------------------------------------


def _engine_instant(text: str) -> float:
    """An engine time (RFC 3339 with up to nine decimals, UTC) as Unix seconds."""
    assert text.endswith("Z") and not text.startswith("0001-"), text
    whole, _, fraction = text[:-1].partition(".")
    moment = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return moment + (float(f"0.{fraction}") if fraction else 0.0)


def engine_run_seconds(engine, taskid: str) -> float:
    """How long the task's one container ran, by the engine's StartedAt and FinishedAt."""
    (container,) = containers_of(engine, taskid)
    state = container.attrs["State"]
    assert state["Status"] == "exited", state
    return _engine_instant(state["FinishedAt"]) - _engine_instant(state["StartedAt"])


def charges(db: Path, taskid: str) -> list[sqlite3.Row]:
    """The task's rows of the ledger, read from the server's file without writing to it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM charges WHERE taskid = ? ORDER BY seq", (taskid,)).fetchall()
    finally:
        conn.close()


def check_ledger(db: Path, detail: dict, hwid: str) -> list[sqlite3.Row]:
    """The task's charges are each recorded once and add up to exactly what its detail says."""
    rows = charges(db, detail["taskid"])
    assert rows, f"no charges for {detail['taskid']}"
    seqs = [row["seq"] for row in rows]
    assert len(seqs) == len(set(seqs)), f"a (taskid, seq) twice: {seqs}"
    assert seqs == list(range(1, len(rows) + 1)), f"charges missing or out of order: {seqs}"
    assert {row["hwid"] for row in rows} == {hwid}
    assert {row["price"] for row in rows} == {detail["price"]}
    assert sum(row["ms"] for row in rows) == round(detail["billed_seconds"] * 1000), (detail, [dict(r) for r in rows])
    assert sum(row["micro"] for row in rows) == round(detail["cost"] * 1_000_000), (detail, [dict(r) for r in rows])
    return rows


def check_bill(api, engine, db: Path, taskid: str, price: float, hwid: str) -> dict:
    """The ended task's bill: its container's run time at its price, and the ledger behind it."""
    detail = api.detail(taskid)
    ran = engine_run_seconds(engine, taskid)
    assert detail["price"] == price
    assert abs(detail["billed_seconds"] - ran) <= ENGINE_SLACK_S, (
        f"billed {detail['billed_seconds']} s, the engine ran it {ran:.3f} s: {detail}")
    # One run: its amount is its milliseconds at the price, rounded once to a millionth.
    assert abs(detail["cost"] - price * detail["billed_seconds"] / 3600) <= 1e-6, detail
    check_ledger(db, detail, hwid)
    return detail


def first_end(api, taskid: str, timeout: float = 30.0) -> dict:
    """The task's list item the first time it shows it ended."""
    return api.wait_state(taskid, 4, 5, timeout=timeout)


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


# --- the tests ---------------------------------------------------------------------------


def test_a_task_is_billed_for_the_time_its_container_ran(platform, start_own_executor, engine):
    api, db = platform.api, platform.server.db
    ex = start_own_executor(extra_args=("--cost", str(PRICE)))
    taskid = api.run(ex.hwid, "sleep 3")
    task = first_end(api, taskid)
    assert task["state"] == 4, task
    # Settled when the end first shows: the end and its charge are one transaction.
    detail = check_bill(api, engine, db, taskid, PRICE, ex.hwid)
    assert 2.5 <= detail["billed_seconds"] <= 4.5, detail
    assert detail["cost"] == round(PRICE * detail["billed_seconds"] / 3600, 6)
    # Nothing is charged after the end.
    rows_at_end = [dict(row) for row in charges(db, taskid)]
    time.sleep(1.5)
    assert api.detail(taskid)["billed_seconds"] == detail["billed_seconds"]
    assert [dict(row) for row in charges(db, taskid)] == rows_at_end


def test_the_bill_survives_an_agent_kill_and_an_api_kill_mid_run(platform, start_own_executor, engine, tmp_path):
    api, server = platform.api, platform.server
    price = 7.29  # not a round number: each amount is rounded to a millionth once
    state_dir = tmp_path / "billed-agent"
    ex = start_own_executor(state_dir=state_dir, extra_args=("--cost", str(price)))
    hwid = ex.hwid
    for _ in range(3):
        taskid = api.run(hwid, "sleep 6")
        api.wait_state(taskid, 3)
        running_since = time.monotonic()

        sleep_until(running_since + 1.5)
        assert ex.stop(signal.SIGKILL) == -signal.SIGKILL
        ex = start_own_executor(state_dir=state_dir, extra_args=("--cost", str(price)))  # re-adopts the container
        assert ex.hwid == hwid

        sleep_until(running_since + 3.5)
        assert time.monotonic() - running_since < 5.0, "the agent took too long to come back: not mid-run any more"
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        server.start()  # the agent comes back by itself

        task = first_end(api, taskid, timeout=40)
        assert task["state"] == 4, task
        assert time.monotonic() - running_since >= 5.0  # it really ran its 6 s, through both kills
        check_bill(api, engine, server.db, taskid, price, hwid)

        assert api.deltask(taskid).status == 200
        wait_no_containers(engine, taskid)
        api.wait_free(hwid)


def test_a_prepaid_task_is_stopped_when_the_balance_runs_out(platform, start_own_executor, engine):
    api, server = platform.api, platform.server
    # Charged every second, so the balance is watched within a second's worth.
    server.stop()
    server.extra_args = ("--meter-interval", "1")
    server.start()
    ex = start_own_executor(extra_args=("--cost", str(PRICE)))

    # A prepaid account must hold a minute's worth (60 here) to start a task; so the task
    # starts on the account as it is (not prepaid), and 5 s of credit comes while it runs.
    taskid = api.run(ex.hwid, "echo started; sleep 60")
    api.wait_state(taskid, 3)
    credited = subprocess.run(
        MEGAMIND + ["admin", "credit", "carol", "5.0", "--db", str(server.db), "--note", "e2e"],
        capture_output=True, text=True, timeout=60)
    assert credited.returncode == 0, credited.stderr
    account = api.call("GET", "/api/v1/account")
    assert account.status == 200, account
    assert account.json["name"] == "carol"
    assert 0 < account.json["balance"] <= 5.0, account.json

    task = api.wait_state(taskid, 5, timeout=20)
    assert task["error_msg"] == BALANCE_EXHAUSTED == "stopped: balance exhausted"
    detail = api.detail(taskid)
    assert detail["state"] == 5 and detail["error_msg"] == BALANCE_EXHAUSTED, detail
    wait_no_containers(engine, taskid)  # the platform stopped and removed it

    # The meter charges every interval (1 s x 3600/h = 1.0) and stops the account's tasks in
    # the same pass, charging them up to that moment and nothing after.  The pass is
    # scheduled an interval after the previous one *ended*, so the gap between two charges
    # is the interval plus the pass's own time and the event loop's lag: 0.5 s of margin
    # for that on two busy cores.
    balance = api.call("GET", "/api/v1/account").json["balance"]
    assert -(1.0 + 0.5) <= balance <= 0, balance
    check_ledger(server.db, detail, ex.hwid)
    time.sleep(1.5)  # a later pass charges nothing more
    assert api.call("GET", "/api/v1/account").json["balance"] == balance
    assert api.detail(taskid)["cost"] == detail["cost"]

    api.wait_free(ex.hwid)
    refused = api.addtask(ex.hwid, "true")
    assert refused.status == 402 and refused.json["code"] == 22, refused
    assert {t["taskid"] for t in api.tasks()} == {taskid}
