"""An owner removes a connected executor: a real agent on the real engine, a server of its own."""

from __future__ import annotations

import json
import os
import subprocess

from megamind.cli.executor import EXIT_UNREGISTERED
from megamind.protocol import AGENT_PATH, SPEEDTEST_PATH, TOKEN_HEADER

from .api import Api
from .processes import MEGAMIND

LONG = "echo started; sleep 120"


def _rm(platform, hwid: str) -> None:
    env = {**os.environ, "MEGAMIND_API_URL": platform.server.url, "MEGAMIND_API_KEY": platform.key}
    removed = subprocess.run(MEGAMIND + ["executors", "rm", hwid], env=env, capture_output=True, text=True,
                             timeout=60)
    assert (removed.returncode, removed.stdout) == (0, f"removed {hwid}\n"), removed.stderr


def test_megamind_executors_rm_disconnects_the_agent_for_good(platform, start_own_executor):
    ex = start_own_executor()
    hwid = ex.hwid
    token = json.loads((ex.state_dir / "identity.json").read_text())["token"]
    _rm(platform, hwid)

    # The agent's link closes, its token is refused, and it stops instead of registering again.
    assert ex.proc.wait(timeout=30) == EXIT_UNREGISTERED, ex.log_text()
    assert f"the API does not know executor {hwid} any more" in ex.log_text()
    assert ex.connections() == 1
    as_agent = Api(platform.server.url, None)
    for path in (SPEEDTEST_PATH, AGENT_PATH):
        answer = as_agent.call("GET", path, headers={TOKEN_HEADER: token})
        assert answer.status == 401 and answer.json["code"] == 4, answer
    assert hwid not in [h["hwid"] for h in platform.api.hwlist()]
    assert platform.api.call("GET", "/api/v1/executors").json == []

    # Started again on the same state folder, it is refused again and says why.
    ex.start()
    assert ex.proc.wait(timeout=60) == EXIT_UNREGISTERED, ex.log_text()
    assert ex.log_text().count("was removed") == 2
    assert platform.api.call("GET", "/api/v1/executors").json == []


def test_the_task_of_a_removed_executor_ends_in_error(platform, start_own_executor):
    ex = start_own_executor()
    api = platform.api
    taskid = api.run(ex.hwid, LONG)
    api.wait_state(taskid, 3)
    _rm(platform, ex.hwid)
    assert ex.proc.wait(timeout=30) == EXIT_UNREGISTERED, ex.log_text()
    task = api.wait_state(taskid, 5)
    assert task["error_msg"] == "executor removed by its owner"
    detail = api.detail(taskid)
    assert detail["finished_at"] is not None and detail["billed_seconds"] > 0
    refused = api.addtask(ex.hwid, "echo hi")
    assert refused.status == 404 and refused.json["code"] == 8
