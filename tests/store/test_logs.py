from megamind.store import Store
from megamind.store.logs import TAIL_LINES

RUN = {"image": "127.0.0.1:5000/helloworld:latest", "public_image": "megamind.network/helloworld:latest", "params": ""}


async def new_task(store, account, hwid):
    task, _ = await store.tasks.create(account.id, hwid, "megamind.network/helloworld:latest", "", RUN)
    return task.taskid


async def stored_row(store, taskid):
    return await store.db.fetchone("SELECT lines FROM task_logs WHERE taskid = ?", (taskid,))


async def test_empty_tail(store, account, hwid):
    taskid = await new_task(store, account, hwid)
    assert await store.logs.tail(taskid) == []
    assert await store.logs.tail("never-issued") == []


async def test_tail_is_bounded_to_20_oldest_first(store, account, hwid):
    taskid = await new_task(store, account, hwid)
    await store.logs.append(taskid, [f"a{i}" for i in range(15)], reset=True)
    await store.logs.append(taskid, [f"b{i}" for i in range(15)], reset=False)
    tail = await store.logs.tail(taskid)
    assert TAIL_LINES == 20
    assert tail == [f"a{i}" for i in range(10, 15)] + [f"b{i}" for i in range(15)]


async def test_reset_replaces_the_tail(store, account, hwid):
    taskid = await new_task(store, account, hwid)
    await store.logs.append(taskid, ["old 1", "old 2"], reset=False)
    await store.logs.append(taskid, ["new"], reset=True)
    assert await store.logs.tail(taskid) == ["new"]
    await store.logs.append(taskid, [], reset=True)
    assert await store.logs.tail(taskid) == []


async def test_reset_after_flush_replaces_the_stored_tail(store, account, hwid):
    taskid = await new_task(store, account, hwid)
    await store.logs.append(taskid, ["old"], reset=False)
    await store.logs.flush()
    await store.logs.append(taskid, ["new"], reset=True)
    await store.logs.flush()
    assert await store.logs.tail(taskid) == ["new"]


async def test_flush_persists_and_survives_reopen(tmp_path):
    path = tmp_path / "logs.sqlite"
    store = await Store.open(path)
    account, _ = await store.accounts.create("alice")
    hwid, _ = await store.executors.register(account.id, {}, 0.0)
    taskid = await new_task(store, account, hwid)
    await store.logs.append(taskid, ["line 1", "line 2"], reset=True)
    assert await stored_row(store, taskid) is None  # written behind, not at once
    await store.logs.flush()
    assert await stored_row(store, taskid) is not None
    # A later batch appends to the stored tail, even once it left memory.
    await store.logs.append(taskid, ["line 3"], reset=False)
    await store.logs.flush()
    await store.close()  # close flushes too

    store = await Store.open(path)
    try:
        assert await store.logs.tail(taskid) == ["line 1", "line 2", "line 3"]
    finally:
        await store.close()


async def test_close_flushes(tmp_path):
    path = tmp_path / "logs.sqlite"
    store = await Store.open(path)
    account, _ = await store.accounts.create("alice")
    hwid, _ = await store.executors.register(account.id, {}, 0.0)
    taskid = await new_task(store, account, hwid)
    await store.logs.append(taskid, ["unflushed"], reset=True)
    await store.close()
    store = await Store.open(path)
    try:
        assert await store.logs.tail(taskid) == ["unflushed"]
    finally:
        await store.close()


async def test_deleted_task_tails_are_not_written(store, account, hwid):
    taskid = await new_task(store, account, hwid)
    await store.logs.append(taskid, ["secret"], reset=True)
    await store.tasks.delete(account.id, taskid)
    await store.logs.flush()
    assert await stored_row(store, taskid) is None
    assert (await store.db.fetchone("SELECT COUNT(*) FROM task_logs"))[0] == 0


async def test_delete_drops_a_stored_tail(store, account, hwid):
    taskid = await new_task(store, account, hwid)
    await store.logs.append(taskid, ["x"], reset=True)
    await store.logs.flush()
    await store.tasks.delete(account.id, taskid)
    store.logs.forget(taskid)
    assert await stored_row(store, taskid) is None
    assert await store.logs.tail(taskid) == []


async def test_forget_drops_unflushed_lines(store, account, hwid):
    taskid = await new_task(store, account, hwid)
    await store.logs.append(taskid, ["x"], reset=True)
    store.logs.forget(taskid)
    await store.logs.flush()
    assert await stored_row(store, taskid) is None
    assert await store.logs.tail(taskid) == []


async def test_flush_with_nothing_dirty_writes_nothing(store, account, hwid):
    await store.logs.flush()
    assert (await store.db.fetchone("SELECT COUNT(*) FROM task_logs"))[0] == 0
