"""Faults inflicted for real: killed processes, a restarted engine, a cut network."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from .api import Api
from .conftest import containers_of, wait_no_containers
from .processes import restart_dockerd
from .proxy import CuttableProxy

FOREVER = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"


def _last_tick(lines: list[str]) -> int:
    return int(lines[-1].split()[1]) if lines else 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_killed_agent_readopts_without_twins_or_orphans(alice, start_executor, engine, sig):
    first = start_executor()
    taskid = alice.run(first.hwid, FOREVER)
    alice.wait_state(taskid, 3)
    (container,) = containers_of(engine, taskid)
    first.stop(sig)

    container.reload()
    assert container.status == "running"
    again = start_executor(first.state_dir)
    assert again.hwid == first.hwid
    alice.wait_state(taskid, 3)
    before = _last_tick(alice.logs(taskid))
    alice.wait_logs(taskid, lambda ls: _last_tick(ls) > before + 3)
    mine = engine.containers.list(all=True, filters={"label": f"network.megamind.hwid={first.hwid}"})
    assert [c.id for c in mine] == [container.id]  # no twin, no orphan
    assert mine[0].attrs["State"]["StartedAt"] == container.attrs["State"]["StartedAt"]


def test_killing_the_api_mid_submission_loses_no_answered_task(alice, server, start_executor):
    executors = [start_executor() for _ in range(3)]
    answered: list[str] = []
    stop = threading.Event()

    def submit() -> None:
        while not stop.is_set():
            for ex in executors:
                try:
                    answer = alice.addtask(ex.hwid, "exit 0")
                except OSError:
                    continue  # the API is down: nothing was answered
                if answer.status == 200:
                    answered.append(answer.json["taskid"])
            time.sleep(0.2)  # about 15 calls a second: inside the default rate limit

    submitter = threading.Thread(target=submit)
    submitter.start()
    try:
        deadline = time.monotonic() + 15
        while len(answered) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        before = [ex.connections() for ex in executors]
        server.start()
        up_at = time.monotonic()
        # Every agent comes back by itself within 5 s.
        while not all(ex.connections() > n for ex, n in zip(executors, before)):
            assert time.monotonic() - up_at < 5, [ex.log_text()[-500:] for ex in executors]
            time.sleep(0.05)
        # And the restarted API answers more submissions.
        so_far = len(answered)
        deadline = time.monotonic() + 15
        while len(answered) < so_far + 3:
            assert time.monotonic() < deadline, "the restarted API answered no new submissions"
            time.sleep(0.05)
    finally:
        stop.set()
        submitter.join()

    assert len(answered) >= 3
    listed = {t["taskid"] for t in alice.tasks()}
    assert set(answered) <= listed
    for taskid in answered:  # each exits 0: none is stuck, and none was broken by the restart
        task = alice.wait_state(taskid, 4)
        assert task["error_msg"] == "", task


def test_an_engine_restart_brings_every_state_back_true(alice, start_executor, engine):
    survivor_agent, dying_agent = start_executor(), start_executor()
    survivor = alice.run(survivor_agent.hwid, FOREVER)
    dying = alice.run(dying_agent.hwid, "echo bye; sleep 3; exit 3")
    alice.wait_state(survivor, 3)
    alice.wait_state(dying, 3)
    live_restore = engine.info().get("LiveRestoreEnabled", False)

    restart_dockerd(downtime_s=4)  # the second task exits while the engine is away

    for taskid in (survivor, dying):
        (container,) = containers_of(engine, taskid)
        if container.status == "running":
            expected, error_msg = 3, ""
        else:
            code = container.attrs["State"]["ExitCode"]
            expected, error_msg = (4, "") if code == 0 else (5, f"exited with code {code}")
        task = alice.wait_state(taskid, expected, timeout=20)
        assert task["error_msg"] == error_msg
    if live_restore:  # scripts/setup.sh starts the engine so
        assert alice.task(survivor)["state"] == 3
        assert alice.task(dying)["error_msg"] == "exited with code 3"
        before = _last_tick(alice.logs(survivor))
        alice.wait_logs(survivor, lambda ls: _last_tick(ls) > before)
    assert survivor_agent.proc.poll() is None and dying_agent.proc.poll() is None


def test_a_cut_link_shows_unknown_then_the_truth_and_catches_up_on_deletes(alice, server, start_executor, engine):
    proxy = CuttableProxy(server.port)
    proxy.start()
    try:
        keeper, leaver, quitter = (start_executor(api_url=proxy.url) for _ in range(3))
        running = alice.run(keeper.hwid, FOREVER)
        deleted = alice.run(leaver.hwid, FOREVER)
        exiting = alice.run(quitter.hwid, "sleep 8; exit 3")
        for taskid in (running, deleted, exiting):
            alice.wait_state(taskid, 3)

        proxy.cut()
        cut_at = time.monotonic()
        alice.wait_state(running, 1, timeout=15)
        alice.wait_state(exiting, 1, timeout=15 - (time.monotonic() - cut_at))
        assert alice.deltask(deleted).status == 200
        assert len(containers_of(engine, deleted)) == 1  # the agent cannot know yet
        time.sleep(max(0.0, 30 - (time.monotonic() - cut_at)))
        assert alice.task(running)["state"] == 1

        proxy.restore()
        alice.wait_state(running, 3, timeout=15)
        task = alice.wait_state(exiting, 5, timeout=15)
        assert task["error_msg"] == "exited with code 3"
        wait_no_containers(engine, deleted, timeout=15)
        alice.wait_free(leaver.hwid)
    finally:
        proxy.stop()


def test_unknown_api_key_never_reaches_the_agent_channel(server, alice_key):
    answer = Api(server.url, None).call("GET", "/api/agent/v1/connect", headers={"executor-token": alice_key})
    assert answer.status == 401 and answer.json["code"] == 4
