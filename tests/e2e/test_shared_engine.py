"""Several agents on one engine never touch each other's containers."""

from __future__ import annotations

from .conftest import containers_of, wait_no_containers


def test_agents_sharing_an_engine_keep_to_their_own(alice, start_executor, engine):
    one, two = start_executor(), start_executor()
    assert one.hwid != two.hwid
    task_one = alice.run(one.hwid, "sleep 60")
    task_two = alice.run(two.hwid, "sleep 60")
    alice.wait_state(task_one, 3)
    alice.wait_state(task_two, 3)

    # Restarting one agent re-adopts only its own task and leaves the other's alone.
    one.stop()
    start_executor(one.state_dir)
    alice.wait_state(task_one, 3)
    assert alice.deltask(task_one).status == 200
    alice.wait_free(one.hwid)
    wait_no_containers(engine, task_one)
    (other,) = containers_of(engine, task_two)
    assert other.status == "running"
    assert alice.task(task_two)["state"] == 3
