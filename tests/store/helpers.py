"""Shortcuts the store tests share."""

from megamind.store.taskmodel import NewTask


async def create_task(store, account_id, hwid, image, params, payload, inputs=()):
    """A task pinned to ``hwid``, as addtask with a hwid makes it: (task, its start command)."""
    placed = await store.scheduler.submit(NewTask(account_id, image, params, payload, inputs=tuple(inputs), hwid=hwid))
    return placed.task, placed.command
