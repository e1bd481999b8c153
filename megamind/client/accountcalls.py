"""The account's calls, as coroutines of AsyncClient: what a task would cost before it
runs, the balance and the spend limit, what was spent and earned, and the account's tasks
page by page (the live ones, and history with the deleted ones)."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from decimal import Decimal

from typing_extensions import Unpack

from megamind.client.billing import Account, Earnings, Estimate, Usage
from megamind.client.listings import TaskPage, TimeBound, history_query, range_query, task_page_query
from megamind.client.models import Task, file_ids
from megamind.client.spec import JobOptions, addtask_body
from megamind.client.transport import Transport, decode_answer, read_answer
from megamind.states import TaskState

__all__ = ["AccountCalls", "StateFilter"]

StateFilter = TaskState | int | str  # a TaskState, its number or its name


class AccountCalls:
    """Mixed into AsyncClient, whose transport it calls."""

    _http: Transport

    async def estimate(self, image: str, hwid: str | None = None, params: str = "",
                       **job: Unpack[JobOptions]) -> Estimate:
        """What ``add_task`` with the same arguments would do now, without doing it: how many
        executors fit, the cheapest free ones, its place in the queue, the price, the time and
        the cost it would likely come to."""
        inputs = job.pop("inputs", ())
        body = addtask_body(image, params, hwid, **job, file_ids=file_ids(inputs))
        data = await self._http.call("POST", "/api/v1/estimate", body, parse_float=Decimal)
        return decode_answer(data, Estimate.from_json)

    async def account(self) -> Account:
        """The caller's account: its balance (None when not prepaid), what it spent today and
        this month, and its spend limit per hour."""
        data = await self._http.call("GET", "/api/v1/account", parse_float=Decimal)
        return decode_answer(data, Account.from_json)

    async def set_spend_limit(self, per_hour: float | Decimal | None) -> Account:
        """Refuse new tasks once the account has spent this much in the last hour; None: no
        limit. The account as it is then."""
        if per_hour is not None:
            if isinstance(per_hour, bool) or not isinstance(per_hour, (int, float, Decimal)):
                raise TypeError(f"spend limit: {per_hour!r} is not an amount")
            if not math.isfinite(per_hour) or per_hour < 0:
                raise ValueError(f"spend limit: {per_hour!r} is not an amount of 0 or more")
        # JSON has no decimals: the number's float, whose text keeps the six decimals that count.
        body = {"spend_limit_per_hour": None if per_hour is None else float(per_hour)}
        data = await self._http.call("PATCH", "/api/v1/account", body, parse_float=Decimal)
        return decode_answer(data, Account.from_json)

    async def usage(self, from_: TimeBound | None = None, to: TimeBound | None = None) -> Usage:
        """What the account spent from ``from_`` to ``to`` (the API's range when not given),
        per day and per image. Bounds: a date, a datetime, ``YYYY-MM-DD`` or Unix seconds."""
        data = await self._http.call("GET", "/api/v1/usage", params=range_query(from_, to), parse_float=Decimal)
        return decode_answer(data, Usage.from_json)

    async def earnings(self, from_: TimeBound | None = None, to: TimeBound | None = None) -> Earnings:
        """What the caller's executors earned from ``from_`` to ``to``, each and in all (as an owner)."""
        data = await self._http.call("GET", "/api/v1/earnings", params=range_query(from_, to), parse_float=Decimal)
        return decode_answer(data, Earnings.from_json)

    async def history(self, from_: TimeBound | None = None, to: TimeBound | None = None,
                      state: StateFilter | None = None, image: str | None = None, limit: int | None = None,
                      cursor: str | None = None) -> TaskPage:
        """One page of the tasks the account created from ``from_`` to ``to``, deleted ones
        included (``Task.deleted``), newest first; ``cursor`` is the previous page's
        ``next_cursor``. ``limit``: tasks per page (the API's default when not given)."""
        query = history_query(from_=from_, to=to, state=state, image=image, limit=limit, cursor=cursor)
        return decode_answer(await self._http.call("GET", "/api/v1/history", params=query), TaskPage.from_json)

    async def iter_history(self, from_: TimeBound | None = None, to: TimeBound | None = None,
                           state: StateFilter | None = None, image: str | None = None,
                           limit: int | None = None) -> AsyncIterator[Task]:
        """Every task of ``history``, page after page (``limit`` tasks each), newest first."""
        cursor = None
        while True:
            page = await self.history(from_, to, state, image, limit, cursor)
            for task in page.tasks:
                yield task
            if not page.has_more or page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def history_csv(self, from_: TimeBound | None = None, to: TimeBound | None = None,
                          state: StateFilter | None = None, image: str | None = None) -> str:
        """Every task of ``history`` (not one page) as CSV text, a header line first."""
        query = history_query(from_=from_, to=to, state=state, image=image)
        async with self._http.open("GET", "/api/v1/history", accept="text/csv", params=query) as resp:
            return (await read_answer(resp)).decode("utf-8")

    async def tasks_page(self, state: StateFilter | None = None, image: str | None = None,
                         limit: int | None = None, cursor: str | None = None) -> TaskPage:
        """One page of the account's live tasks (not deleted ones), newest first, with their
        details; ``cursor`` is the previous page's ``next_cursor``."""
        query = task_page_query(state=state, image=image, limit=limit, cursor=cursor)
        return decode_answer(await self._http.call("GET", "/api/v1/tasks", params=query), TaskPage.from_json)
