from megamind.protocol import ContainerReport, ContainerStatus

STATUS_RUNNING, STATUS_EXITED, STATUS_BUSY = ContainerStatus.RUNNING, ContainerStatus.EXITED, ContainerStatus.BUSY
from megamind.reconcile import VANISHED, reconcile
from megamind.states import TaskState
from megamind.store.taskmodel import Task


def task(taskid, state=TaskState.RUNNING, deleted=False, cancelled=False):
    return Task(taskid, 1, "hw", "megamind.network/x:latest", "", state, "", deleted, cancelled=cancelled)


def _brief(states):
    return [(u.taskid, u.state, u.error_msg) for u in states]


def report(taskid, status=STATUS_RUNNING, exit_code=None):
    return ContainerReport(taskid, status, exit_code)


def test_running_container_confirms_running():
    plan = reconcile([task("a", TaskState.SETUP)], [report("a")], set())
    assert _brief(plan.states) == [("a", TaskState.RUNNING, "")]
    assert plan.remove == []


def test_exited_zero_is_stopped_and_nonzero_is_error():
    plan = reconcile(
        [task("a"), task("b")],
        [report("a", STATUS_EXITED, 0), report("b", STATUS_EXITED, 3)],
        set(),
    )
    assert _brief(plan.states) == [("a", TaskState.STOPPED, ""), ("b", TaskState.ERROR, "exited with code 3")]


def test_exited_without_code_counts_as_zero():
    plan = reconcile([task("a")], [report("a", STATUS_EXITED, None)], set())
    assert _brief(plan.states) == [("a", TaskState.STOPPED, "")]


def test_created_container_with_no_command_is_error():
    plan = reconcile([task("a", TaskState.SETUP)], [report("a", ContainerStatus.CREATED)], set())
    assert _brief(plan.states) == [("a", TaskState.ERROR, "container left created")]


def test_missing_container_of_live_task_vanished():
    plan = reconcile([task("a", TaskState.RUNNING), task("b", TaskState.SETUP)], [], set())
    assert _brief(plan.states) == [("a", TaskState.ERROR, VANISHED), ("b", TaskState.ERROR, VANISHED)]
    assert VANISHED == "container vanished"


def test_missing_container_of_finished_task_is_fine():
    plan = reconcile([task("a", TaskState.STOPPED), task("b", TaskState.ERROR)], [], set())
    assert _brief(plan.states) == []
    assert plan.remove == []


def test_pending_commands_suspend_judgement():
    plan = reconcile(
        [task("a", TaskState.SETUP), task("b", TaskState.RUNNING)],
        [report("b", STATUS_EXITED, 1)],
        {"a", "b"},
    )
    assert _brief(plan.states) == []
    assert plan.remove == []


def test_busy_container_is_left_alone():
    plan = reconcile([task("a", TaskState.SETUP)], [report("a", STATUS_BUSY)], set())
    assert _brief(plan.states) == []
    assert plan.remove == []


def test_orphans_are_removed():
    plan = reconcile(
        [task("gone", TaskState.RUNNING, deleted=True)],
        [report("gone"), report("stranger", STATUS_EXITED, 0)],
        set(),
    )
    assert sorted(plan.remove) == ["gone", "stranger"]
    assert _brief(plan.states) == []


def test_orphan_with_pending_remove_is_not_removed_twice():
    plan = reconcile([task("gone", deleted=True)], [report("gone")], {"gone"})
    assert plan.remove == []


def test_deleted_task_missing_container_changes_nothing():
    plan = reconcile([task("gone", TaskState.RUNNING, deleted=True)], [], set())
    assert _brief(plan.states) == [] and plan.remove == []


def test_retired_tasks_without_containers_are_released():
    # The store lets go only of those that still hold the executor.
    plan = reconcile([task("a", TaskState.RUNNING, deleted=True), task("b", TaskState.STOPPED, cancelled=True),
                      task("c", TaskState.STOPPED)], [], set())
    assert plan.released == ["a", "b"]
    assert _brief(plan.states) == [] and plan.remove == []


def test_cancelled_task_whose_container_remains_is_removed_and_its_state_kept():
    plan = reconcile([task("a", TaskState.STOPPED, cancelled=True)], [report("a", STATUS_EXITED, 137)], set())
    assert plan.remove == ["a"] and _brief(plan.states) == []


def test_deleted_task_whose_container_remains_is_removed_not_released():
    plan = reconcile([task("a", TaskState.RUNNING, deleted=True)], [report("a")], set())
    assert plan.remove == ["a"] and plan.released == []


def test_an_inventory_does_not_overwrite_what_the_agent_reported_of_the_same_state():
    ended = Task("a", 1, "hw", "megamind.network/x:latest", "", TaskState.ERROR, "runtime limit of 2 s reached", False)
    running = task("b", TaskState.RUNNING)  # its stored ports came with the agent's running report
    plan = reconcile([ended, running], [report("a", STATUS_EXITED, 137), report("b")], set())
    assert _brief(plan.states) == []


def test_an_orphan_named_twice_is_one_remove():
    plan = reconcile([], [report("stray"), report("stray", STATUS_EXITED, 0), report("other")], set())
    assert plan.remove == ["stray", "other"]


def test_a_live_task_named_twice_is_judged_once():
    plan = reconcile([task("a", TaskState.SETUP)], [report("a"), report("a", STATUS_EXITED, 1)], set())
    assert _brief(plan.states) == [("a", TaskState.RUNNING, "")]


def test_an_orphan_with_a_command_pending_gets_no_other():
    plan = reconcile([task("a", TaskState.STOPPED, deleted=True)], [report("a"), report("b")], {"a", "b"})
    assert plan.remove == []
