"""One agent process offering its host as two executors (`--slots 2`)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from .conftest import TEST_LABEL, containers_of, remove_quietly, wait_no_containers
from .processes import MEGAMIND, stop


def _mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no MemTotal in /proc/meminfo")


def _start_slots(server, key: str, state_dir: Path, label: str, slots: int) -> subprocess.Popen:
    state_dir.mkdir(parents=True, exist_ok=True)
    args = MEGAMIND + ["executor", "--api", server.url, "--api-key", key, "--state-dir", str(state_dir),
                       "--network", "none", "--slots", str(slots), "--label", f"{TEST_LABEL}={label}"]
    with open(state_dir / "agent.log", "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=log)


def _wait_connected(proc: subprocess.Popen, log: Path, count: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        if proc.poll() is not None:
            raise AssertionError(f"agent exited with {proc.returncode}:\n{text}")
        if text.count("megamind.executor.link: connected to") >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"the slots never all came online:\n{text}")


def test_two_slots_are_two_executors_with_half_the_ram(alice, server, alice_key, run_id, tmp_path, engine):
    state_dir = tmp_path / "slotted"
    proc = _start_slots(server, alice_key, state_dir, run_id, slots=2)
    hwids: list[str] = []
    try:
        _wait_connected(proc, state_dir / "agent.log", 2)
        assert not (state_dir / "identity.json").exists()
        hwids = [json.loads((state_dir / f"slot-{i}" / "identity.json").read_text())["hwid"] for i in range(2)]
        assert len(set(hwids)) == 2

        listed = {item["hwid"]: item for item in alice.hwlist()}
        assert set(hwids) <= set(listed)
        for hwid in hwids:
            assert listed[hwid]["ram"] == _mem_total_mb() // 2
            assert listed[hwid]["gpus"] == []

        # A task on each slot runs, in a container labelled with that slot's hwid.
        tasks = {hwid: alice.run(hwid, f"echo on {hwid}; sleep 60") for hwid in hwids}
        for hwid, taskid in tasks.items():
            alice.wait_state(taskid, 3)
            (container,) = containers_of(engine, taskid)
            assert container.labels["network.megamind.hwid"] == hwid
            assert alice.wait_logs(taskid, lambda lines, hwid=hwid: lines == [f"on {hwid}"])
        assert not set(hwids) & {item["hwid"] for item in alice.hwlist()}

        # The shared event stream reaches the right slot: a stop is seen as stopped.
        first, second = tasks[hwids[0]], tasks[hwids[1]]
        (container,) = containers_of(engine, first)
        container.kill(signal="SIGKILL")
        assert alice.wait_state(first, 5)["error_msg"] == "exited with code 137"
        assert alice.task(second)["state"] == 3

        for taskid in tasks.values():
            assert alice.deltask(taskid).status == 200
            wait_no_containers(engine, taskid)
        for hwid in hwids:
            alice.wait_free(hwid)

        # A restart keeps the same hwids.
        stop(proc)
        proc = _start_slots(server, alice_key, state_dir, run_id, slots=2)
        _wait_connected(proc, state_dir / "agent.log", 4)
        again = [json.loads((state_dir / f"slot-{i}" / "identity.json").read_text())["hwid"] for i in range(2)]
        assert again == hwids
    finally:
        stop(proc)
        for hwid in hwids:
            for container in engine.containers.list(all=True, filters={"label": f"network.megamind.hwid={hwid}"}):
                remove_quietly(container)
