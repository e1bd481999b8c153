"""History on real processes: a task that ran to its end and was deleted stays in the
account's history, with what it was billed, through the JSON call, its CSV and the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess

from .conftest import wait_no_containers
from .processes import MEGAMIND

PRICE = 36.0  # per hour: 0.01 a second


def _megamind(platform, config_file, *args: str) -> subprocess.CompletedProcess:
    """One `megamind` command as its own process, with the account's key and the API's URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEGAMIND_")}
    env.update(MEGAMIND_CONFIG=str(config_file), MEGAMIND_API_KEY=platform.key, MEGAMIND_API_URL=platform.server.url)
    result = subprocess.run(MEGAMIND + list(args), env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    return result


def _csv_row(text: str, taskid: str) -> dict[str, str]:
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    (row,) = [r for r in rows if r["taskid"] == taskid]
    return row


def test_a_deleted_task_stays_in_the_history_with_its_bill(platform, start_own_executor, engine, tmp_path):
    api = platform.api
    ex = start_own_executor(extra_args=("--cost", str(PRICE)))
    taskid = api.run(ex.hwid, "echo ran; sleep 1")
    assert api.wait_state(taskid, 4, 5, timeout=30)["state"] == 4
    ended = api.detail(taskid)
    assert ended["billed_seconds"] > 0.5 and ended["cost"] > 0, ended

    assert api.deltask(taskid).status == 200
    wait_no_containers(engine, taskid)
    gone = api.call("GET", f"/api/v1/task/{taskid}")
    assert gone.status == 404 and gone.json["code"] == 7, gone
    assert api.task(taskid) is None

    # JSON: the task, marked deleted, billed as it was before.
    answer = api.call("GET", "/api/v1/history")
    assert answer.status == 200, answer
    page = answer.json
    (item,) = [t for t in page["tasks"] if t["taskid"] == taskid]
    assert item["deleted"] is True and item["deleted_at"] is not None
    assert item["state"] == 4 and item["hwid"] == ex.hwid
    assert (item["price"], item["billed_seconds"], item["cost"]) == (
        PRICE, ended["billed_seconds"], ended["cost"])
    assert "env" not in item
    assert page["total"] == 1 and page["has_more"] is False and page["next_cursor"] is None

    # CSV: the same row.
    answer = api.call("GET", "/api/v1/history", headers={"Accept": "text/csv"})
    assert answer.status == 200, answer
    assert answer.headers["Content-Type"].startswith("text/csv")
    row = _csv_row(answer.raw.decode("utf-8"), taskid)
    assert row["deleted"] == "true" and row["state"] == "4" and row["hwid"] == ex.hwid
    assert float(row["billed_seconds"]) == ended["billed_seconds"]
    assert float(row["cost"]) == ended["cost"]
    assert float(row["price"]) == PRICE

    # The CLI: `megamind history` as JSON, as a table and as CSV.
    config_file = tmp_path / "cli" / "config.json"
    listed = json.loads(_megamind(platform, config_file, "history", "--json").stdout)
    (item,) = [t for t in listed["tasks"] if t["taskid"] == taskid]
    assert item["deleted"] is True
    assert (item["billed_seconds"], item["cost"]) == (ended["billed_seconds"], ended["cost"])
    table = _megamind(platform, config_file, "history").stdout.splitlines()
    assert table[0].split() == ["TASKID", "IMAGE", "STATE", "CREATED", "BILLED", "COST", "DELETED"]
    (line,) = [r for r in table[1:] if r.startswith(taskid)]
    assert line.split()[2] == "stopped" and line.rstrip().endswith("yes"), line
    row = _csv_row(_megamind(platform, config_file, "history", "--csv").stdout, taskid)
    assert row["deleted"] == "true" and float(row["billed_seconds"]) == ended["billed_seconds"]
