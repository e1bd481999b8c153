"""Kept task listings never show what the database no longer says."""

from __future__ import annotations

import asyncio

from megamind.states import TaskState

from .helpers import create_task

RUN = {"image": "127.0.0.1:5000/x:latest", "public_image": "megamind.network/x:latest", "params": ""}


async def _listing(store, account) -> list[tuple[str, TaskState, str, str]]:
    return [(t.taskid, t.state, t.error_msg, t.ip) for t in await store.tasks.list_for_account(account.id)]


async def test_every_change_shows_in_the_next_listing(store, account, hwid):
    assert await _listing(store, account) == []
    task, _ = await create_task(store, account.id, hwid, "megamind.network/x:latest", "", RUN)
    assert await _listing(store, account) == [(task.taskid, TaskState.SETUP, "", "")]
    await store.tasks.set_states(hwid, [(task.taskid, TaskState.RUNNING, "")])
    assert (await _listing(store, account))[0][1] == TaskState.RUNNING
    await store.executors.update_on_connect(hwid, {}, 0.5, "10.1.2.3")
    assert (await _listing(store, account))[0][3] == "10.1.2.3"
    await store.tasks.set_states(hwid, [(task.taskid, TaskState.ERROR, "exited with code 3")])
    assert (await _listing(store, account))[0][1:3] == (TaskState.ERROR, "exited with code 3")
    await store.tasks.restart(account.id, task.taskid, RUN)
    assert (await _listing(store, account))[0][1] == TaskState.SETUP
    await store.tasks.expire_setup(older_than=float("inf"))
    assert (await _listing(store, account))[0][1:3] == (TaskState.ERROR, "setup timed out")
    await store.tasks.delete(account.id, task.taskid)
    assert await _listing(store, account) == []


async def test_a_listing_read_across_a_change_is_not_kept(store, account, hwid):
    task, _ = await create_task(store, account.id, hwid, "megamind.network/x:latest", "", RUN)
    # A read and a state change interleave: whichever wins, the next read is fresh.
    await asyncio.gather(
        store.tasks.list_for_account(account.id),
        store.tasks.set_states(hwid, [(task.taskid, TaskState.RUNNING, "")]),
    )
    assert (await _listing(store, account))[0][1] == TaskState.RUNNING


async def test_listings_of_other_accounts_stay_apart(store, account, hwid):
    bob, _ = await store.accounts.create("bob")
    bob_hwid, _ = await store.executors.register(bob.id, {}, 0.0)
    mine, _ = await create_task(store, account.id, hwid, "megamind.network/x:latest", "", RUN)
    assert await _listing(store, bob) == []
    theirs, _ = await create_task(store, bob.id, bob_hwid, "megamind.network/x:latest", "", RUN)
    assert [t[0] for t in await _listing(store, bob)] == [theirs.taskid]
    assert [t[0] for t in await _listing(store, account)] == [mine.taskid]
    # The returned list is the caller's own: changing it changes nothing kept.
    (await store.tasks.list_for_account(account.id)).clear()
    assert [t[0] for t in await _listing(store, account)] == [mine.taskid]
