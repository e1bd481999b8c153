"""Placement and the queue: a task goes to the cheapest free fitting executor, or waits.

Every decision is one write transaction that reads what it decides on: a submission
looks for a free executor and either takes it or joins the queue; an executor that
frees up (or comes online) takes the first queued task that fits it.  Since the two
never interleave, no submission and no freed executor miss each other, and the
partial unique index on live tasks keeps any two tasks off one executor.

SQLite's ``BEGIN IMMEDIATE`` serialises those transactions.  On PostgreSQL (a later
issue) the same statements run under one advisory lock per decision
(``pg_advisory_xact_lock``), which gives the same order across API replicas; the
queue and the executors' online flags live in the database, not in a process.

Costs stay linear: a submission reads the executors once (narrowed in SQL on the
size columns), a freed executor reads the queue from its head in served order
(narrowed in SQL on the requirement columns), and nothing pairs every queued task
with every executor.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from megamind.errors import ExecutorBusy, ExecutorNotFound, Unsatisfiable
from megamind.jobspec import TaskLimits, queue_timed_out
from megamind.placement import Capacity, Need, Requirements, fits, never_fits, pending_reason
from megamind.protocol import Op
from megamind.secrets import new_task_id
from megamind.states import TaskState
from megamind.store.db import Database
from megamind.store.spending import Spending
from megamind.store.taskmodel import Command, NewTask, Task, enqueue_command, is_live_task_conflict

# Queued tasks a freed executor reads per round, in served order, before looking further.
QUEUE_PAGE = 64

_EXECUTOR_SIZE = ("e.hwid, e.cost, e.online, e.gpu_count, e.min_vram_mb, e.cpu_count, e.cpu_share, e.ram_mb,"
                  " e.rating, e.gpu_names,"
                  " EXISTS (SELECT 1 FROM tasks t WHERE t.hwid = e.hwid AND t.holds_executor = 1) AS busy")
# Only what could fit, by the size columns; `fits` decides the rest (every GPU of the model).
# A removed executor never fits: it is never placed on, waited for or counted.
_EXECUTOR_NARROWING = (" e.removed_at IS NULL AND e.gpu_count >= ? AND e.min_vram_mb >= ? AND e.cpu_count >= ?"
                       " AND e.cpu_share >= ? AND e.ram_mb >= ? AND (? IS NULL OR e.cost <= ?) AND (? IS NULL OR e.rating >= ?)"
                       " AND (? IS NULL OR e.gpu_names LIKE ? ESCAPE '\\')")
_FREE = " AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.hwid = e.hwid AND t.holds_executor = 1)"
_PLACEMENT_ORDER = " ORDER BY e.cost, e.rating DESC, e.hwid"
# Rows read before `fits` is asked of the rest: the SQL narrowing leaves few that do not fit.
_FIRST_ROWS = 16


def _narrowing_args(need: Need) -> tuple:
    model = None
    if need.gpu_model:
        escaped = need.gpu_model.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        model = f"%{escaped}%"
    return (need.gpus, need.vram_mb, need.cpus, need.cpu_share - 1e-9, need.ram,
            need.max_cost, need.max_cost, need.min_rating, need.min_rating, model, model)


async def _first_fit(conn, need: Need, where: str, args: tuple) -> Capacity | None:
    """The first executor in placement order that fits, reading a few rows unless they all miss."""
    sql = f"SELECT {_EXECUTOR_SIZE} FROM executors e WHERE {where}{_PLACEMENT_ORDER}"
    rows = await conn.execute_fetchall(f"{sql} LIMIT {_FIRST_ROWS}", args)
    if len(rows) == _FIRST_ROWS and not any(fits(need, Capacity.of_columns(r)) for r in rows):
        rows = await conn.execute_fetchall(sql, args)
    return next((cap for cap in map(Capacity.of_columns, rows) if fits(need, cap)), None)


@dataclass(frozen=True)
class Placed:
    task: Task
    command: Command | None  # the start to send; None while queued


@dataclass(frozen=True)
class QueuedTask:
    taskid: str
    image: str
    priority: int
    created_at: float
    queue_deadline: float
    queue_position: int
    pending_reason: str


class Scheduler:
    def __init__(self, db: Database, forget_account: Callable[[int], None]) -> None:
        self._db = db
        self._forget_account = forget_account  # the task store's kept listings

    # --- a new task ------------------------------------------------------------------

    async def submit(self, new: NewTask) -> Placed:
        now = time.time()
        need = Need.of(new.requirements, new.spec.limits)
        taskid = new_task_id()
        try:
            async with self._db.transaction() as conn:
                if new.hwid is not None:
                    cost = await self._cost_of(conn, new.hwid)
                    await Spending.check_can_start(conn, new.account_id, cost)
                    placed = await self._insert(conn, taskid, new, need, now, new.hwid, cost)
                else:
                    executor = await self._cheapest_free(conn, need)
                    if executor is None:
                        cheapest = await self._cheapest_fitting(conn, need)
                        await Spending.check_can_start(conn, new.account_id, cheapest.cost)
                        placed = await self._insert(conn, taskid, new, need, now, None, None)
                    else:
                        await Spending.check_can_start(conn, new.account_id, executor.cost)
                        placed = await self._insert(conn, taskid, new, need, now, executor.hwid, executor.cost)
        except sqlite3.IntegrityError as exc:
            if is_live_task_conflict(exc):
                raise ExecutorBusy(f"executor {new.hwid} is running another task") from None
            raise
        self._forget_account(new.account_id)
        return placed

    @staticmethod
    async def _cost_of(conn, hwid: str) -> float:
        rows = await conn.execute_fetchall("SELECT cost FROM executors WHERE hwid = ? AND removed_at IS NULL", (hwid,))
        if not rows:  # removed since addtask looked it up
            raise ExecutorNotFound(f"hwid: no executor {hwid!r}; pick one from gethwlist")
        return float(rows[0][0])

    @staticmethod
    async def _cheapest_free(conn, need: Need) -> Capacity | None:
        return await _first_fit(conn, need, f"e.online = 1 AND {_EXECUTOR_NARROWING}{_FREE}", _narrowing_args(need))

    @staticmethod
    async def _cheapest_fitting(conn, need: Need) -> Capacity:
        """The cheapest registered executor, online or not, that fits; 422 when none ever would."""
        cheapest = await _first_fit(conn, need, _EXECUTOR_NARROWING, _narrowing_args(need))
        if cheapest is not None:
            return cheapest
        # The rare answer reads every executor, to name what none of them has.
        every = await conn.execute_fetchall(f"SELECT {_EXECUTOR_SIZE} FROM executors e WHERE e.removed_at IS NULL")
        raise Unsatisfiable(never_fits(need, map(Capacity.of_columns, every)))

    @staticmethod
    async def _insert(conn, taskid: str, new: NewTask, need: Need, now: float, hwid: str | None,
                      price: float | None) -> Placed:
        queued = hwid is None
        await conn.execute(
            "INSERT INTO tasks (taskid, account_id, hwid, image, params, state, error_msg, holds_executor,"
            " deleted, created_at, updated_at, inputs, pinned, requirements, spec, start_payload, priority,"
            " queued, queue_timeout, queue_deadline, need_gpus, need_vram_mb, need_cpus, need_cpu_share,"
            " need_ram_mb, max_cost, min_rating, price, placed_at, labels)"
            " VALUES (?,?,?,?,?,?,'',?,0,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (taskid, new.account_id, hwid, new.image, new.params, int(TaskState.SETUP), int(not queued),
             now, now, json.dumps(list(new.inputs)), int(new.hwid is not None),
             json.dumps(new.requirements.to_dict()), json.dumps(new.spec.to_wire()),
             json.dumps(new.start_payload), new.priority, int(queued), new.queue_timeout,
             now + new.queue_timeout if queued else None, need.gpus, need.vram_mb, need.cpus,
             need.cpu_share, need.ram, need.max_cost, need.min_rating, price, None if queued else now,
             json.dumps(new.labels)),
        )
        task = Task(taskid, new.account_id, hwid, new.image, new.params, TaskState.SETUP, "", False)
        if queued:
            return Placed(task, None)
        return Placed(task, await enqueue_command(conn, hwid, taskid, Op.START, new.start_payload, now))

    # --- an executor to fill ---------------------------------------------------------

    async def drain(self, hwid: str) -> Command | None:
        """Give a free online executor the first queued task that fits it; its start, if any."""
        now = time.time()
        account_id = None
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall(
                f"SELECT {_EXECUTOR_SIZE} FROM executors e WHERE e.hwid = ? AND e.removed_at IS NULL", (hwid,))
            if not rows or not rows[0]["online"] or rows[0]["busy"]:
                return None
            cap = Capacity.of_columns(rows[0])
            chosen = await self._first_fitting(conn, cap)
            if chosen is None:
                return None
            taskid, account_id, payload = chosen
            await conn.execute(
                "UPDATE tasks SET hwid = ?, queued = 0, holds_executor = 1, queue_deadline = NULL, price = ?,"
                " placed_at = ?, updated_at = ? WHERE taskid = ? AND queued = 1",
                (hwid, cap.cost, now, now, taskid),
            )
            command = await enqueue_command(conn, hwid, taskid, Op.START, payload, now)
        self._forget_account(account_id)
        return command

    async def _first_fitting(self, conn, cap: Capacity) -> tuple[str, int, dict] | None:
        """The queue's first task this executor can hold, read from the head a page at a time."""
        after: tuple[int, float, str] | None = None
        while True:
            keyset = "" if after is None else \
                " AND (priority < ? OR (priority = ? AND (created_at > ? OR (created_at = ? AND taskid > ?))))"
            keyset_args = () if after is None else (after[0], after[0], after[1], after[1], after[2])
            rows = await conn.execute_fetchall(
                "SELECT taskid, account_id, start_payload, requirements, need_cpu_share, need_ram_mb, priority,"
                " created_at FROM tasks WHERE queued = 1 AND need_gpus <= ? AND need_vram_mb <= ?"
                " AND need_cpus <= ? AND need_cpu_share <= ? AND need_ram_mb <= ?"
                " AND (max_cost IS NULL OR max_cost >= ?) AND (min_rating IS NULL OR min_rating <= ?)"
                f"{keyset} ORDER BY priority DESC, created_at, taskid LIMIT ?",
                (len(cap.gpu_names), cap.min_vram_mb, cap.cpu_count, cap.cpu_share + 1e-9, cap.ram,
                 cap.cost, cap.rating, *keyset_args, QUEUE_PAGE),
            )
            for r in rows:
                if fits(_need_of(r), cap):
                    return r["taskid"], r["account_id"], json.loads(r["start_payload"])
            if len(rows) < QUEUE_PAGE:
                return None
            last = rows[-1]
            after = (last["priority"], last["created_at"], last["taskid"])

    # --- waiting -----------------------------------------------------------------------

    async def expire(self, now: float | None = None) -> list[str]:
        """End queued tasks whose queue_timeout has passed, in error; their ids."""
        now = time.time() if now is None else now
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall(
                "SELECT taskid, account_id, queue_timeout FROM tasks WHERE queued = 1 AND queue_deadline <= ?",
                (now,),
            )
            await conn.executemany(
                "UPDATE tasks SET queued = 0, state = ?, error_msg = ?, finished_at = ?, updated_at = ?"
                " WHERE taskid = ? AND queued = 1",
                [(int(TaskState.ERROR), queue_timed_out(r["queue_timeout"]), now, now, r["taskid"]) for r in rows],
            )
        for account_id in {r["account_id"] for r in rows}:
            self._forget_account(account_id)
        return [r["taskid"] for r in rows]

    async def position(self, taskid: str, priority: int, created_at: float) -> int:
        """Where a queued task stands in served order: 1 for the next to be placed."""
        ahead = await self._db.fetchone(
            "SELECT count(*) FROM tasks WHERE queued = 1 AND (priority > ? OR (priority = ?"
            " AND (created_at < ? OR (created_at = ? AND taskid < ?))))",
            (priority, priority, created_at, created_at, taskid),
        )
        return ahead[0] + 1

    async def explain(self, need: Need) -> str:
        """Why a task of this need waits: how many executors fit it, and what they are doing."""
        if need.gpu_model is None:  # the size columns decide alone: counted in SQL
            row = await self._db.fetchone(
                "SELECT count(*), coalesce(sum(1 - e.online), 0), coalesce(sum(CASE WHEN e.online = 1 AND EXISTS"
                " (SELECT 1 FROM tasks t WHERE t.hwid = e.hwid AND t.holds_executor = 1) THEN 1 ELSE 0 END), 0)"
                f" FROM executors e WHERE {_EXECUTOR_NARROWING}", _narrowing_args(need))
            return pending_reason(row[0], row[2], row[1])
        rows = await self._db.fetchall(
            f"SELECT {_EXECUTOR_SIZE} FROM executors e WHERE {_EXECUTOR_NARROWING}", _narrowing_args(need))
        fitting = [r for r in rows if fits(need, Capacity.of_columns(r))]
        offline = sum(1 for r in fitting if not r["online"])
        busy = sum(1 for r in fitting if r["online"] and r["busy"])
        return pending_reason(len(fitting), busy, offline)

    async def queued_for_account(self, account_id: int, limit: int = 1000) -> list[QueuedTask]:
        """The account's queued tasks, next first.  Positions come from one pass over the
        queue, and each distinct need is explained once, however many tasks share it."""
        rows = await self._db.fetchall(
            "SELECT * FROM (SELECT taskid, account_id, image, priority, created_at, queue_deadline, requirements,"
            " need_cpu_share, need_ram_mb, ROW_NUMBER() OVER (ORDER BY priority DESC, created_at, taskid) AS position"
            " FROM tasks WHERE queued = 1) AS queue WHERE account_id = ? ORDER BY position LIMIT ?",
            (account_id, limit),
        )
        reasons: dict[tuple, str] = {}
        items = []
        for r in rows:
            key = (r["requirements"], r["need_cpu_share"], r["need_ram_mb"])
            if key not in reasons:
                reasons[key] = await self.explain(_need_of(r))
            items.append(QueuedTask(r["taskid"], r["image"], r["priority"], r["created_at"], r["queue_deadline"],
                                    r["position"], reasons[key]))
        return items

    # --- again ---------------------------------------------------------------------------

    async def requeue(self, account_id: int, taskid: str) -> Command | None:
        """Restart a task that ended before it was placed (cancelled, or out of queue time):
        placed at once if a free executor fits it, else queued again; its start, if placed."""
        now = time.time()
        async with self._db.transaction() as conn:
            rows = await conn.execute_fetchall(
                "SELECT requirements, need_cpu_share, need_ram_mb, queue_timeout, start_payload FROM tasks"
                " WHERE taskid = ? AND account_id = ? AND deleted = 0 AND hwid IS NULL AND queued = 0",
                (taskid, account_id),
            )
            if not rows:
                return None
            row = rows[0]
            executor = await self._cheapest_free(conn, _need_of(row))
            await conn.execute(
                "UPDATE tasks SET state = ?, error_msg = '', cancelled = 0, finished_at = NULL, updated_at = ?,"
                " queued = ?, queue_deadline = ?, hwid = ?, holds_executor = ?, price = ?, placed_at = ?"
                " WHERE taskid = ?",
                (int(TaskState.SETUP), now, int(executor is None),
                 now + row["queue_timeout"] if executor is None else None,
                 executor.hwid if executor else None, int(executor is not None),
                 executor.cost if executor else None, now if executor else None, taskid),
            )
            command = None
            if executor is not None:
                command = await enqueue_command(conn, executor.hwid, taskid, Op.START,
                                                json.loads(row["start_payload"]), now)
        self._forget_account(account_id)
        return command


def _need_of(row) -> Need:
    """A stored task's need, from its requirements and the limit columns."""
    return Need.of(Requirements.from_dict(json.loads(row["requirements"])),
                   TaskLimits(cpus=row["need_cpu_share"] or None, memory=row["need_ram_mb"] or None))

