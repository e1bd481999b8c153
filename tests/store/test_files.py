"""Input files: the account's own, fetched only for a live task that lists them."""

import pytest

from megamind.errors import ValidationFailed
from megamind.store.files import MAX_NAME_BYTES, check_file_name, new_file_id

from .helpers import create_task

RUN = {"image": "127.0.0.1:5000/helloworld:latest", "public_image": "megamind.network/helloworld:latest", "params": ""}


@pytest.mark.parametrize("name", ["data.csv", "weights v2.bin", "ünïcode", ".hidden", "..x", "a" * MAX_NAME_BYTES,
                                  "é" * (MAX_NAME_BYTES // 2)])
def test_plain_file_names_are_accepted(name):
    assert check_file_name(name) == name


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "/etc/passwd", "../up", "nul\0byte", "a" * (MAX_NAME_BYTES + 1),
                                  "é" * (MAX_NAME_BYTES // 2 + 1), "\ud800"])
def test_other_names_are_refused(name):
    with pytest.raises(ValidationFailed):
        check_file_name(name)


async def test_files_belong_to_their_account(store, account):
    other, _ = await store.accounts.create("bob")
    mine = await store.files.add(account.id, new_file_id(), "a.txt", 3, "ab" * 32)
    theirs = await store.files.add(other.id, new_file_id(), "b.txt", 4, "cd" * 32)
    assert (mine.name, mine.size, mine.account_id) == ("a.txt", 3, account.id)
    assert await store.files.of_account(account.id, [mine.file_id]) == [mine]
    assert await store.files.of_account(account.id, []) == []
    with pytest.raises(ValidationFailed, match=theirs.file_id):
        await store.files.of_account(account.id, [mine.file_id, theirs.file_id])
    with pytest.raises(ValidationFailed, match="nosuch"):
        await store.files.of_account(account.id, ["nosuch"])
    with pytest.raises(ValidationFailed):
        await store.files.add(account.id, new_file_id(), "../x", 1, "")


async def test_an_executor_gets_a_file_only_for_a_live_task_of_its_own_that_lists_it(store, account, hwid):
    listed = await store.files.add(account.id, new_file_id(), "in.bin", 1, "")
    unlisted = await store.files.add(account.id, new_file_id(), "other.bin", 1, "")
    task, _ = await create_task(store, account.id, hwid, "megamind.network/helloworld:latest", "", RUN,
                                       inputs=[listed.file_id])
    other_hwid, _ = await store.executors.register(account.id, {}, 0.0)
    assert await store.files.input_of(hwid, task.taskid, listed.file_id) == listed
    assert await store.files.input_of(hwid, task.taskid, unlisted.file_id) is None
    assert await store.files.input_of(other_hwid, task.taskid, listed.file_id) is None
    assert await store.files.input_of(hwid, "never-issued", listed.file_id) is None
    await store.tasks.delete(account.id, task.taskid)
    assert await store.files.input_of(hwid, task.taskid, listed.file_id) is None
