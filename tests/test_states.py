import pytest

from megamind.states import TaskState, state_of_exit, visible_state


def test_numbers_are_the_contract_table():
    assert [(s.name, int(s)) for s in TaskState] == [
        ("UNKNOWN", 1), ("SETUP", 2), ("RUNNING", 3), ("STOPPED", 4), ("ERROR", 5),
    ]


@pytest.mark.parametrize("state, holds", [
    (TaskState.UNKNOWN, False),
    (TaskState.SETUP, True),
    (TaskState.RUNNING, True),
    (TaskState.STOPPED, False),
    (TaskState.ERROR, False),
])
def test_holds_executor(state, holds):
    assert state.holds_executor is holds


@pytest.mark.parametrize("state, finished", [
    (TaskState.UNKNOWN, False),
    (TaskState.SETUP, False),
    (TaskState.RUNNING, False),
    (TaskState.STOPPED, True),
    (TaskState.ERROR, True),
])
def test_finished(state, finished):
    assert state.finished is finished


@pytest.mark.parametrize("state", list(TaskState))
def test_visible_state_online_is_the_stored_state(state):
    assert visible_state(state, executor_online=True) is state


@pytest.mark.parametrize("state, shown", [
    (TaskState.SETUP, TaskState.UNKNOWN),
    (TaskState.RUNNING, TaskState.UNKNOWN),
    (TaskState.STOPPED, TaskState.STOPPED),
    (TaskState.ERROR, TaskState.ERROR),
    (TaskState.UNKNOWN, TaskState.UNKNOWN),
])
def test_visible_state_offline(state, shown):
    assert visible_state(state, executor_online=False) is shown


def test_state_of_exit():
    assert state_of_exit(0) == (TaskState.STOPPED, "")
    assert state_of_exit(3) == (TaskState.ERROR, "exited with code 3")
    assert state_of_exit(137) == (TaskState.ERROR, "exited with code 137")
    assert state_of_exit(-1) == (TaskState.ERROR, "exited with code -1")
