"""Each account's task listing, kept in memory until a task of that account changes.

`gettasklist` is what customers poll.  The task store drops the listings a write
touches after the write commits; a listing read across a change (``generation``
moved meanwhile) is never kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Generic, TypeVar

# Listings kept in memory at most, counted in tasks (a few MB).
MAX_CACHED_LISTED_TASKS = 20_000

T = TypeVar("T")


class ListingCache(Generic[T]):
    def __init__(self, limit: int = MAX_CACHED_LISTED_TASKS) -> None:
        self._limit = limit
        self._listings: dict[int, list[T]] = {}
        self._listed: dict[str, int] = {}  # taskid -> account, for tasks in a kept listing
        self._count = 0
        self.generation = 0  # bumped by every change; a listing read across one is not kept

    def get(self, account_id: int) -> list[T] | None:
        kept = self._listings.get(account_id)
        return None if kept is None else list(kept)

    def forget_account(self, account_id: int) -> None:
        self.generation += 1
        tasks = self._listings.pop(account_id, None)
        if tasks is not None:
            self._count -= len(tasks)
            for task in tasks:
                self._listed.pop(task.taskid, None)

    def forget_tasks(self, taskids: Iterable[str]) -> None:
        self.generation += 1
        for taskid in taskids:
            account_id = self._listed.get(taskid)
            if account_id is not None:
                self.forget_account(account_id)

    def forget_all(self) -> None:
        self.generation += 1
        self._listings.clear()
        self._listed.clear()
        self._count = 0

    def keep(self, account_id: int, tasks: list[T], read_at_generation: int) -> None:
        """Keep a listing read when ``generation`` was ``read_at_generation``, if nothing changed since."""
        if read_at_generation != self.generation or len(tasks) > self._limit:
            return
        if self._count + len(tasks) > self._limit:
            self.forget_all()
        previous = self._listings.pop(account_id, None)  # two reads of one listing raced
        if previous is not None:
            self._count -= len(previous)
        self._listings[account_id] = tasks
        self._count += len(tasks)
        for task in tasks:
            self._listed[task.taskid] = account_id
