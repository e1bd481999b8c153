"""The example image of registry/, built and pushed with its own script, run as a task."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

BUILD_IMAGE = Path(__file__).resolve().parents[2] / "registry" / "build-image.sh"


def test_helloworld_builds_pushes_and_runs(alice, executor, registry):
    pushed = subprocess.run(
        [str(BUILD_IMAGE), "helloworld", "e2e", registry.address],
        check=True, capture_output=True, text=True, timeout=120, env=os.environ.copy(),
    )
    assert pushed.stdout.strip() == f"{registry.address}/helloworld:e2e"

    taskid = alice.run(executor.hwid, '{"who": "e2e"}', image="megamind.network/helloworld:e2e")
    alice.wait_state(taskid, 3)
    task = alice.wait_state(taskid, 4, timeout=30)
    assert task["error_msg"] == ""
    lines = alice.logs(taskid)
    assert lines[0] == "Hello from Megamind!"
    assert any('{"who": "e2e"}' in line for line in lines)
