import asyncio
import time

import pytest

from megamind.jobspec import RunSpec
from megamind.errors import ExecutorBusy, TaskNotFound
from megamind.protocol import Op
from megamind.states import TaskState

from .helpers import create_task

RUN = {"image": "127.0.0.1:5000/helloworld:latest", "public_image": "megamind.network/helloworld:latest", "params": "p"}



async def create(store, account, hwid, image="megamind.network/helloworld:latest", params="p"):
    return await create_task(store, account.id, hwid, image, params, RUN)


async def test_create_reserves_the_executor_and_queues_start(store, account, hwid):
    task, command = await create(store, account, hwid)
    assert task.state is TaskState.SETUP and not task.deleted and task.error_msg == ""
    assert len(task.taskid) >= 20 and task.taskid.isalnum()
    assert await store.tasks.busy_executors() == {hwid}
    assert command.op == "start" and command.taskid == task.taskid and command.hwid == hwid
    assert command.payload == RUN
    assert command.message().to_wire() == {
        "type": "command", "id": command.id, "op": "start", "taskid": task.taskid, "inputs": [], **RUN,
        "spec": RunSpec().to_wire()}
    assert await store.tasks.pending_commands(hwid) == [command]
    stored = await store.tasks.get(account.id, task.taskid)
    assert (stored.image, stored.params, stored.state) == ("megamind.network/helloworld:latest", "p", TaskState.SETUP)


async def test_second_create_on_the_same_executor_is_busy(store, account, hwid):
    await create(store, account, hwid)
    with pytest.raises(ExecutorBusy):
        await create(store, account, hwid)
    assert len(await store.tasks.list_for_account(account.id)) == 1
    # The failed create left no command behind.
    assert len(await store.tasks.pending_commands(hwid)) == 1


async def test_concurrent_creates_give_exactly_one_task(store, account, hwid):
    results = await asyncio.gather(*(create(store, account, hwid) for _ in range(8)), return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(created) == 1
    assert len(refused) == 7 and all(isinstance(r, ExecutorBusy) for r in refused)
    assert [t.taskid for t in await store.tasks.list_for_account(account.id)] == [created[0][0].taskid]


async def test_other_executors_stay_free(store, account, hwid):
    other, _ = await store.executors.register(account.id, {}, 0.0)
    await create(store, account, hwid)
    task, _ = await create(store, account, other)
    assert await store.tasks.busy_executors() == {hwid, other}
    assert task.hwid == other


async def test_get_is_scoped_to_the_account(store, account, hwid):
    bob, _ = await store.accounts.create("bob")
    task, _ = await create(store, account, hwid)
    with pytest.raises(TaskNotFound) as info:
        await store.tasks.get(bob.id, task.taskid)
    assert task.taskid in info.value.message
    assert await store.tasks.list_for_account(bob.id) == []
    with pytest.raises(TaskNotFound):
        await store.tasks.delete(bob.id, task.taskid)
    with pytest.raises(TaskNotFound):
        await store.tasks.restart(bob.id, task.taskid, RUN)
    assert (await store.tasks.get(account.id, task.taskid)).state is TaskState.SETUP


async def test_list_carries_the_executor_ip(store, account, hwid):
    await store.executors.update_on_connect(hwid, {}, 0.5, "192.168.1.100")
    first, _ = await create(store, account, hwid)
    await store.tasks.set_states(hwid, [(first.taskid, TaskState.STOPPED, "")])
    second, _ = await create(store, account, hwid)
    listed = await store.tasks.list_for_account(account.id)
    assert [t.taskid for t in listed] == [first.taskid, second.taskid]  # oldest first
    assert all(t.ip == "192.168.1.100" for t in listed)


async def test_delete_frees_executor_queues_remove_and_cancels_start(store, account, hwid):
    task, start = await create(store, account, hwid)
    remove = await store.tasks.delete(account.id, task.taskid)
    assert remove.op == "remove" and remove.taskid == task.taskid and remove.payload == {}
    assert await store.tasks.pending_commands(hwid) == [remove]  # the start is cancelled
    # The container may still run until the agent says it is gone.
    assert await store.tasks.busy_executors() == {hwid}
    assert await store.tasks.list_for_account(account.id) == []
    with pytest.raises(TaskNotFound):
        await store.tasks.get(account.id, task.taskid)
    with pytest.raises(TaskNotFound):
        await store.tasks.delete(account.id, task.taskid)
    assert not await store.tasks.is_live_on(hwid, task.taskid)
    # Once it is, the executor takes a new task.
    await store.tasks.ack_command(hwid, remove.id)
    assert await store.tasks.busy_executors() == set()
    new, _ = await create(store, account, hwid)
    assert new.taskid != task.taskid


async def test_restart_of_finished_task(store, account, hwid):
    task, start = await create(store, account, hwid)
    await store.tasks.ack_command(hwid, start.id)
    await store.tasks.set_states(hwid, [(task.taskid, TaskState.ERROR, "exited with code 3")])
    assert await store.tasks.busy_executors() == set()
    command = await store.tasks.restart(account.id, task.taskid, RUN)
    assert command.op == "restart" and command.payload == RUN
    stored = await store.tasks.get(account.id, task.taskid)
    assert stored.state is TaskState.SETUP and stored.error_msg == ""
    assert await store.tasks.busy_executors() == {hwid}
    assert await store.tasks.pending_commands(hwid) == [command]


async def test_restart_replaces_a_pending_start_but_keeps_a_remove(store, account, hwid):
    task, start = await create(store, account, hwid)
    restart = await store.tasks.restart(account.id, task.taskid, RUN)
    assert await store.tasks.pending_commands(hwid) == [restart]
    orphan_remove = await store.tasks.enqueue(hwid, task.taskid, Op.REMOVE, {})
    again = await store.tasks.restart(account.id, task.taskid, RUN)
    assert await store.tasks.pending_commands(hwid) == [orphan_remove, again]


async def test_restart_of_finished_task_when_the_executor_is_taken(store, account, hwid):
    task, start = await create(store, account, hwid)
    await store.tasks.ack_command(hwid, start.id)
    await store.tasks.set_states(hwid, [(task.taskid, TaskState.STOPPED, "")])
    other, other_start = await create(store, account, hwid)
    with pytest.raises(ExecutorBusy):
        await store.tasks.restart(account.id, task.taskid, RUN)
    # Nothing changed: the task stays stopped, the other keeps the executor, no command queued.
    assert (await store.tasks.get(account.id, task.taskid)).state is TaskState.STOPPED
    assert (await store.tasks.get(account.id, other.taskid)).state is TaskState.SETUP
    assert await store.tasks.pending_commands(hwid) == [other_start]


async def test_set_states(store, account, hwid):
    task, _ = await create(store, account, hwid)
    assert (await store.tasks.set_states(hwid, [(task.taskid, TaskState.RUNNING, "")])).changed == [task.taskid]
    # The same report again changes nothing.
    assert (await store.tasks.set_states(hwid, [(task.taskid, TaskState.RUNNING, "")])).changed == []
    assert await store.tasks.busy_executors() == {hwid}
    assert (await store.tasks.set_states(hwid, [(task.taskid, TaskState.ERROR, "exited with code 3")])).changed == [task.taskid]
    stored = await store.tasks.get(account.id, task.taskid)
    assert (stored.state, stored.error_msg) == (TaskState.ERROR, "exited with code 3")
    assert await store.tasks.busy_executors() == set()
    assert (await store.tasks.set_states(hwid, [])).changed == []


async def test_set_states_ignores_other_executors_tasks(store, account, hwid):
    other, _ = await store.executors.register(account.id, {}, 0.0)
    task, _ = await create(store, account, hwid)
    assert (await store.tasks.set_states(other, [(task.taskid, TaskState.ERROR, "forged")])).changed == []
    stored = await store.tasks.get(account.id, task.taskid)
    assert (stored.state, stored.error_msg) == (TaskState.SETUP, "")


async def test_set_states_ignores_deleted_tasks(store, account, hwid):
    task, _ = await create(store, account, hwid)
    remove = await store.tasks.delete(account.id, task.taskid)
    await store.tasks.ack_command(hwid, remove.id)
    assert (await store.tasks.set_states(hwid, [(task.taskid, TaskState.RUNNING, "")])).changed == []
    # A late report of the deleted task does not take the executor back.
    assert await store.tasks.busy_executors() == set()
    await create(store, account, hwid)


async def test_set_states_never_gives_the_executor_to_a_second_task(store, account, hwid):
    old, _ = await create(store, account, hwid)
    await store.tasks.set_states(hwid, [(old.taskid, TaskState.ERROR, "exited with code 1")])
    new, _ = await create(store, account, hwid)
    # A stale report says the old container runs: it must not break the batch nor steal the executor.
    changes = await store.tasks.set_states(hwid, [
        (old.taskid, TaskState.RUNNING, ""),
        (new.taskid, TaskState.RUNNING, ""),
    ])
    assert changes.changed == [new.taskid]
    # ...and the old container, running where it must not, is told to stop.
    assert [(c.taskid, c.op) for c in changes.stops] == [(old.taskid, "stop")]
    assert [c.op for c in await store.tasks.pending_commands(hwid)][-1] == "stop"
    assert (await store.tasks.get(account.id, old.taskid)).state is TaskState.ERROR
    assert (await store.tasks.get(account.id, new.taskid)).state is TaskState.RUNNING


async def test_expire_setup(store, account, hwid):
    other, _ = await store.executors.register(account.id, {}, 0.0)
    stuck, _ = await create(store, account, hwid)
    running, _ = await create(store, account, other)
    await store.tasks.set_states(other, [(running.taskid, TaskState.RUNNING, "")])

    assert await store.tasks.expire_setup(time.time() - 60) == []
    assert (await store.tasks.get(account.id, stuck.taskid)).state is TaskState.SETUP

    assert await store.tasks.expire_setup(time.time() + 1) == [(stuck.taskid, hwid)]
    stored = await store.tasks.get(account.id, stuck.taskid)
    assert (stored.state, stored.error_msg) == (TaskState.ERROR, "setup timed out")
    assert (await store.tasks.get(account.id, running.taskid)).state is TaskState.RUNNING
    assert await store.tasks.busy_executors() == {other}
    assert await store.tasks.pending_commands(hwid) == []  # its start will not run late
    assert await store.tasks.expire_setup(time.time() + 1) == []


async def test_expire_setup_skips_deleted(store, account, hwid):
    task, _ = await create(store, account, hwid)
    await store.tasks.delete(account.id, task.taskid)
    assert await store.tasks.expire_setup(time.time() + 1) == []


async def test_pending_and_ack(store, account, hwid):
    other, _ = await store.executors.register(account.id, {}, 0.0)
    task, start = await create(store, account, hwid)
    extra = await store.tasks.enqueue(hwid, "orphan", Op.REMOVE, {})
    elsewhere = await store.tasks.enqueue(other, "x", Op.REMOVE, {})
    assert [c.id for c in await store.tasks.pending_commands(hwid)] == [start.id, extra.id]
    assert start.id < extra.id

    await store.tasks.ack_command(other, start.id)  # another executor cannot ack it
    assert [c.id for c in await store.tasks.pending_commands(hwid)] == [start.id, extra.id]

    await store.tasks.ack_command(hwid, start.id)
    assert await store.tasks.pending_commands(hwid) == [extra]
    await store.tasks.ack_command(hwid, start.id)  # a repeated ack is harmless
    await store.tasks.ack_command(hwid, 10_000)  # so is an unknown id
    assert await store.tasks.pending_commands(hwid) == [extra]
    assert await store.tasks.pending_commands(other) == [elsewhere]


async def test_for_executor_and_is_live_on(store, account, hwid):
    task, _ = await create(store, account, hwid)
    assert [t.taskid for t in await store.tasks.for_executor(hwid)] == [task.taskid]
    assert await store.tasks.is_live_on(hwid, task.taskid)
    other, _ = await store.executors.register(account.id, {}, 0.0)
    assert not await store.tasks.is_live_on(other, task.taskid)
    await store.tasks.delete(account.id, task.taskid)
    deleted = await store.tasks.for_executor(hwid)
    assert [(t.taskid, t.deleted) for t in deleted] == [(task.taskid, True)]


async def test_task_ids_are_unique(store, account):
    ids = set()
    for _ in range(20):
        hwid, _ = await store.executors.register(account.id, {}, 0.0)
        task, _ = await create(store, account, hwid)
        ids.add(task.taskid)
    assert len(ids) == 20


async def test_progress_is_shown_in_the_detail_and_reset_by_a_restart(store, account, hwid):
    task, _ = await create(store, account, hwid)
    assert (await store.tasks.detail(account.id, task.taskid)).progress is None
    await store.tasks.set_progress(task.taskid, 42.5)
    assert (await store.tasks.detail(account.id, task.taskid)).progress == 42.5
    await store.tasks.set_states(hwid, [(task.taskid, TaskState.STOPPED, "")])
    await store.tasks.restart(account.id, task.taskid, RUN)
    assert (await store.tasks.detail(account.id, task.taskid)).progress is None


async def test_results_are_recorded_for_live_tasks_only(store, account, hwid):
    task, _ = await create(store, account, hwid)
    assert (await store.tasks.detail(account.id, task.taskid)).results is None
    before = time.time()
    assert await store.tasks.set_results(task.taskid, 1234, 2)
    results = (await store.tasks.detail(account.id, task.taskid)).results
    assert (results.size, results.truncated) == (1234, 2) and results.created_at >= before
    assert await store.tasks.set_results(task.taskid, 99, 0)  # a restart's replace the first
    assert (await store.tasks.detail(account.id, task.taskid)).results.size == 99
    await store.tasks.delete(account.id, task.taskid)
    assert not await store.tasks.set_results(task.taskid, 1, 0)
    assert not await store.tasks.set_results("never-issued", 1, 0)


async def test_a_task_keeps_its_input_file_ids(store, account, hwid):
    task, _ = await create_task(store, account.id, hwid, "megamind.network/helloworld:latest", "", RUN,
                                       inputs=["f1", "f2"])
    assert await store.tasks.inputs_of(task.taskid) == ["f1", "f2"]
    await store.tasks.set_states(hwid, [(task.taskid, TaskState.STOPPED, "")])
    plain, _ = await create(store, account, hwid)
    assert await store.tasks.inputs_of(plain.taskid) == []
