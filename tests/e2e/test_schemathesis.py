"""The server against the OpenAPI document it publishes: `schemathesis run --checks all`.

Every check schemathesis has (no 5xx, status codes, content types, headers and bodies as
documented, schema-violating requests refused, schema-valid ones accepted, a deleted
task gone and a created one there, ...) and one of ours (every error is exactly
``{"code", "message"}``), on every operation the document lists, in the coverage, fuzzing
and stateful phases. ``schemathesis_hooks.py`` says what the document cannot: which
refusals depend on state rather than on the request.

The run has an account of its own, with no rate limit, one registered executor (never
connected: placements wait in the queue instead of failing for want of any executor) and
two uploaded files; the tasks and executors it leaves are deleted after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from megamind.api.openapi import SPEC_PATH
from megamind.protocol import REGISTER_PATH
from megamind.testing import SAMPLE_HARDWARE

from .api import Api

# Loaded by the schemathesis process only: imported here, its hooks would apply to every
# schemathesis test of this process. The two variables below are the ones it reads.
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
KEY_VARIABLE, FILES_VARIABLE, DROPPED_VARIABLE = "MEGAMIND_FUZZ_KEY", "MEGAMIND_FUZZ_FILES", "MEGAMIND_FUZZ_DROPPED"

# Half a minute on an idle machine, under two when it is busy; the seed makes a failure repeatable
# (MEGAMIND_FUZZ_SEED picks another).
MAX_EXAMPLES = 50
SEED = int(os.environ.get("MEGAMIND_FUZZ_SEED", "20261202"))
RUN_TIMEOUT_S = 600
ACCOUNT = "spec-fuzzer"
METHODS = {"get", "put", "post", "delete", "patch"}
# A refusal is a refusal: 413 (the body is past the server's bound, which no schema states)
# is one too. Past that bound a valid body is refused, and an account past its hourly limit
# is answered 402 (the hook names which 402s).
CONFIG = f"""\
hooks = "{HOOKS}"

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429", "5xx"]

[checks.positive_data_acceptance]
expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
"""


@dataclass
class Fuzzer:
    api: Api
    key: str
    hwid: str
    files: list[str]


@pytest.fixture(scope="module")
def fuzzer(server) -> Fuzzer:
    key = server.create_account(ACCOUNT)
    server.set_rate_limit(ACCOUNT, "none")
    api = Api(server.url, key)
    registered = api.call("POST", REGISTER_PATH, {"hardware": SAMPLE_HARDWARE, "cost": 0.5})
    assert registered.status == 201, registered
    files = []
    for name in ("one.txt", "two.txt"):
        uploaded = api.call("POST", f"/api/v1/files?name={name}", raw=name.encode(),
                            headers={"Content-Type": "application/octet-stream"})
        assert uploaded.status == 201, uploaded
        files.append(uploaded.json["file_id"])
    yield Fuzzer(api, key, registered.json["hwid"], files)
    _delete_every_task(api)
    for executor in api.call("GET", "/api/v1/executors").json:  # the hooks register anew what the run removed
        assert api.call("DELETE", f"/api/v1/executors/{executor['hwid']}").status == 200


def _delete_every_task(api: Api) -> None:
    """A generated task may wait in the queue for the shared server's next executor, which
    belongs to another test."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        listing = api.call("GET", "/api/v1/gettasklist")
        assert listing.status == 200, listing
        if not listing.json:
            return
        for task in listing.json:
            api.deltask(task["taskid"])
    raise AssertionError("the fuzzer's tasks were not all deleted within 60 s")


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_the_server_does_what_its_published_spec_says(server, fuzzer, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    report, dropped = tmp_path / "report.json", tmp_path / "dropped.jsonl"
    env = {**os.environ, KEY_VARIABLE: fuzzer.key, FILES_VARIABLE: ",".join(fuzzer.files),
           DROPPED_VARIABLE: str(dropped)}
    run = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
         "run", server.url + SPEC_PATH, "--checks", "all", "--header", f"api-key: {fuzzer.key}",
         "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--output-truncate", "true",
         "--report", "json", "--report-json-path", str(report)],
        check=False, capture_output=True, text=True, env=env, timeout=RUN_TIMEOUT_S, cwd=tmp_path,
    )
    output = run.stdout[-30_000:] + run.stderr[-5_000:]
    assert report.exists(), output
    summary = json.loads(report.read_text())
    assert summary["failures"] == [] and summary["errors"] == [] and run.returncode == 0, output
    published = fuzzer.api.call("GET", SPEC_PATH).json
    # Every operation but the document's own, which schemathesis loads rather than tests.
    operations = sum(1 for path, item in published["paths"].items() for method in item
                     if method in METHODS and path != SPEC_PATH)
    assert summary["operations"]["tested"] == summary["operations"]["total"] == operations, summary["operations"]
    phases = {name: phase["status"] for name, phase in summary["phases"].items()}
    assert all(phases[name] == "success" for name in ("coverage", "fuzzing", "stateful")), phases
    excused = [json.loads(line) for line in dropped.read_text().splitlines()] if dropped.exists() else []
    print(f"schemathesis: {summary['test_cases']}, {len(excused)} refusals excused by state:",
          sorted({(e['reason'], e['operation']) for e in excused}))
