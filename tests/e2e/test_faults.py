"""What survives what: agent restarts, server restarts, an agent that stops answering."""

from __future__ import annotations

import signal
import time

from .conftest import containers_of, wait_no_containers

FOREVER = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done"


def _last_tick(lines: list[str]) -> int:
    return int(lines[-1].split()[1]) if lines else 0


def test_agent_restart_readopts_running_containers(alice, start_executor, engine):
    first = start_executor()
    taskid = alice.run(first.hwid, FOREVER)
    alice.wait_state(taskid, 3)
    (container,) = containers_of(engine, taskid)
    assert first.stop() == 0

    container.reload()
    assert container.status == "running"  # the agent's exit leaves tasks alone
    second = start_executor(first.state_dir)
    assert second.hwid == first.hwid

    alice.wait_state(taskid, 3)
    before = _last_tick(alice.logs(taskid))
    alice.wait_logs(taskid, lambda ls: _last_tick(ls) > before + 3)  # logs continue
    (same,) = containers_of(engine, taskid)  # not restarted, not duplicated
    assert same.id == container.id
    assert same.attrs["State"]["StartedAt"] == container.attrs["State"]["StartedAt"]


def test_tasks_deleted_while_the_agent_is_away_are_removed_on_return(alice, start_executor, engine):
    first = start_executor()
    taskid = alice.run(first.hwid, FOREVER)
    alice.wait_state(taskid, 3)
    first.stop()
    assert alice.deltask(taskid).status == 200
    assert len(containers_of(engine, taskid)) == 1
    start_executor(first.state_dir)
    wait_no_containers(engine, taskid)


def test_a_container_that_vanished_while_the_agent_was_away_is_an_error(alice, start_executor, engine):
    first = start_executor()
    taskid = alice.run(first.hwid, FOREVER)
    alice.wait_state(taskid, 3)
    first.stop()
    containers_of(engine, taskid)[0].remove(force=True)
    start_executor(first.state_dir)
    task = alice.wait_state(taskid, 5)
    assert task["error_msg"] == "container vanished"


def test_a_silent_agent_turns_its_tasks_unknown_then_true_again(alice, executor):
    running = alice.run(executor.hwid, FOREVER)
    alice.wait_state(running, 3)
    executor.proc.send_signal(signal.SIGSTOP)  # alive but answering nothing
    try:
        stopped_at = time.monotonic()
        alice.wait_state(running, 1, timeout=15)
        assert time.monotonic() - stopped_at < 15
        assert executor.hwid not in [i["hwid"] for i in alice.hwlist()]
    finally:
        executor.proc.send_signal(signal.SIGCONT)
    alice.wait_state(running, 3, timeout=15)


def test_server_restart_loses_nothing(alice, server, executor):
    running = alice.run(executor.hwid, FOREVER)
    alice.wait_state(running, 3)
    alice.wait_logs(running, lambda ls: len(ls) >= 2)
    before = alice.tasks()

    assert server.stop() == 0
    server.start()

    alice.wait_state(running, 3, timeout=15)  # the agent came back by itself
    after = alice.tasks()
    assert [t["taskid"] for t in after] == [t["taskid"] for t in before]
    for old, new in zip(before, after):
        assert {k: v for k, v in old.items() if k != "state"} == {k: v for k, v in new.items() if k != "state"}
    before_tick = _last_tick(alice.logs(running))
    assert before_tick > 0
    alice.wait_logs(running, lambda ls: _last_tick(ls) > before_tick)
