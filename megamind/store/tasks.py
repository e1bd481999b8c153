"""Tasks, and the commands the executors must carry out for them.

A command is written in the same transaction as the task change that needs it, so
an answered ``addtask`` or ``deltask`` is never lost, whatever dies next.  Commands
stay pending until the agent acknowledges them; the agent drops repeats by id.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from megamind import protocol
from megamind.errors import ExecutorBusy, TaskNotFound
from megamind.protocol import Op
from megamind.secrets import new_task_id
from megamind.states import TaskState
from megamind.store.db import Database
from megamind.store.listings import ListingCache


@dataclass(frozen=True)
class Task:
    taskid: str
    account_id: int
    hwid: str
    image: str
    params: str
    state: TaskState
    error_msg: str
    deleted: bool
    ip: str = ""  # the executor's address, filled in by listings


@dataclass(frozen=True)
class Command:
    """A command stored for an executor until its agent acknowledges it."""

    id: int
    hwid: str
    taskid: str
    op: Op
    payload: dict[str, Any]  # protocol.Command's fields beyond id, op and taskid

    def message(self) -> protocol.Command:
        return protocol.Command.from_body({"id": self.id, "op": self.op.value, "taskid": self.taskid, **self.payload})


@dataclass(frozen=True)
class Results:
    """The archive of files a task left in /megamind/output/, as its agent uploaded it."""

    size: int  # bytes of the tar.gz
    truncated: int  # files the agent left out to stay within the bound
    created_at: float


@dataclass(frozen=True)
class TaskDetail:
    task: Task  # with the executor's address
    created_at: float
    updated_at: float
    pending_command: str | None  # the newest command the agent has not acknowledged
    progress: float | None = None  # the task's last MEGAMIND_PROGRESS line, 0-100
    results: Results | None = None


@dataclass
class StateChanges:
    changed: list[str] = field(default_factory=list)  # taskids whose state changed
    stops: list[Command] = field(default_factory=list)  # to send: containers that must not run


_COLUMNS = "taskid, account_id, hwid, image, params, state, error_msg, deleted"
_STATES = {int(state): state for state in TaskState}
_new = object.__new__


def _task(row, ip: str = "") -> Task:
    """A Task from a row in `_COLUMNS` order.

    Listings build one per row on every request, so the frozen instance is filled in
    directly: the same fields the generated ``__init__`` sets, without a guarded
    ``__setattr__`` per field (a listing of 100 tasks costs 20 us instead of 200).
    """
    task = _new(Task)
    task.__dict__.update(
        taskid=row[0],
        account_id=row[1],
        hwid=row[2],
        image=row[3],
        params=row[4],
        state=_STATES[row[5]],
        error_msg=row[6],
        deleted=bool(row[7]),
        ip=ip,
    )
    return task


def _is_live_task_conflict(exc: sqlite3.IntegrityError) -> bool:
    return "tasks.hwid" in str(exc)


class TaskStore:
    """Tasks and commands.

    `list_for_account` is what customers poll, so each account's listing is kept in
    memory (`ListingCache`) until a task of that account changes: every write to the
    tasks table goes through this class (and executor addresses change only through
    `forget_listings`, called by the executor store), and each write drops the
    listings it touches after it commits.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._listings: ListingCache[Task] = ListingCache()

    def forget_listings(self) -> None:
        """Drop every kept listing (an executor's address changed)."""
        self._listings.forget_all()

    # --- customer side -------------------------------------------------------------

    async def create(
        self, account_id: int, hwid: str, image: str, params: str, run_payload: dict[str, Any],
        inputs: Sequence[str] = (),
    ) -> tuple[Task, Command]:
        """Reserve the executor and queue the start, atomically.

        The partial unique index on live tasks makes the reservation race-free: of two
        concurrent requests for one executor, the second insert fails.  ``inputs`` are
        the ids of the files the task may fetch.
        """
        now = time.time()
        task = Task(new_task_id(), account_id, hwid, image, params, TaskState.SETUP, "", False)
        try:
            async with self._db.transaction() as conn:
                await conn.execute(
                    "INSERT INTO tasks (taskid, account_id, hwid, image, params, state, error_msg,"
                    " holds_executor, deleted, created_at, updated_at, inputs) VALUES (?,?,?,?,?,?,'',1,0,?,?,?)",
                    (task.taskid, account_id, hwid, image, params, int(TaskState.SETUP), now, now,
                     json.dumps(list(inputs))),
                )
                command = await self._enqueue(conn, hwid, task.taskid, Op.START, run_payload)
        except sqlite3.IntegrityError as exc:
            if _is_live_task_conflict(exc):
                raise ExecutorBusy(f"executor {hwid} is running another task") from None
            raise
        self._listings.forget_account(account_id)
        return task, command

    async def get(self, account_id: int, taskid: str) -> Task:
        row = await self._db.fetchone(
            f"SELECT {_COLUMNS} FROM tasks WHERE taskid = ? AND account_id = ? AND deleted = 0",
            (taskid, account_id),
        )
        if row is None:
            raise TaskNotFound(f"no task {taskid!r} in this account")
        return _task(row)

    async def detail(self, account_id: int, taskid: str) -> TaskDetail:
        row = await self._db.fetchone(
            "SELECT t.taskid, t.account_id, t.hwid, t.image, t.params, t.state, t.error_msg, t.deleted,"
            " e.ip, t.created_at, t.updated_at,"
            " (SELECT op FROM commands c WHERE c.taskid = t.taskid AND c.done = 0 ORDER BY c.id DESC LIMIT 1),"
            " t.progress, t.results_size, t.results_truncated, t.results_at"
            " FROM tasks t JOIN executors e ON e.hwid = t.hwid"
            " WHERE t.taskid = ? AND t.account_id = ? AND t.deleted = 0",
            (taskid, account_id),
        )
        if row is None:
            raise TaskNotFound(f"no task {taskid!r} in this account")
        results = Results(row[13], row[14], row[15]) if row[13] is not None else None
        return TaskDetail(_task(row, row[8]), row[9], row[10], row[11], row[12], results)

    async def inputs_of(self, taskid: str) -> list[str]:
        """The ids of the files the task was given, in the order addtask named them."""
        row = await self._db.fetchone("SELECT inputs FROM tasks WHERE taskid = ?", (taskid,))
        return json.loads(row["inputs"]) if row else []

    async def holders_of_owned_executors(self, owner_id: int) -> dict[str, tuple[str | None, int]]:
        """hwid -> (taskid, account id) of the task holding each executor this account owns;
        the taskid is None for a deleted task whose container is still being removed."""
        rows = await self._db.fetchall(
            "SELECT t.hwid, CASE WHEN t.deleted = 0 THEN t.taskid END AS taskid, t.account_id"
            " FROM tasks t JOIN executors e ON e.hwid = t.hwid"
            " WHERE e.account_id = ? AND t.holds_executor = 1",
            (owner_id,),
        )
        return {r["hwid"]: (r["taskid"], r["account_id"]) for r in rows}

    async def list_for_account(self, account_id: int) -> list[Task]:
        """The account's tasks that were not deleted, oldest first."""
        kept = self._listings.get(account_id)
        if kept is not None:
            return kept
        generation = self._listings.generation
        rows = await self._db.fetchall(
            "SELECT t.taskid, t.account_id, t.hwid, t.image, t.params, t.state, t.error_msg,"
            " t.deleted, e.ip FROM tasks t JOIN executors e ON e.hwid = t.hwid"
            " WHERE t.account_id = ? AND t.deleted = 0 ORDER BY t.created_at",
            (account_id,),
        )
        tasks = [_task(r, r[8]) for r in rows]
        self._listings.keep(account_id, tasks, generation)
        return list(tasks)

    async def delete(self, account_id: int, taskid: str) -> Command:
        try:
            return await self._delete(account_id, taskid)
        finally:
            self._listings.forget_account(account_id)

    async def _delete(self, account_id: int, taskid: str) -> Command:
        task = await self.get(account_id, taskid)
        async with self._db.transaction() as conn:
            # A live task keeps holding its executor until the agent says the container is
            # gone (`ack_command` of the remove): until then it may still run there.
            changed = await conn.execute(
                "UPDATE tasks SET deleted = 1, updated_at = ?"
                " WHERE taskid = ? AND deleted = 0",
                (time.time(), taskid),
            )
            if changed.rowcount == 0:
                raise TaskNotFound(f"no task {taskid!r} in this account")
            # A start or restart that never reached the agent is pointless now.
            await conn.execute(
                "UPDATE commands SET done = 1 WHERE taskid = ? AND done = 0", (taskid,)
            )
            return await self._enqueue(conn, task.hwid, taskid, Op.REMOVE, {})

    async def restart(self, account_id: int, taskid: str, run_payload: dict[str, Any]) -> Command:
        try:
            return await self._restart(account_id, taskid, run_payload)
        finally:
            self._listings.forget_account(account_id)

    async def _restart(self, account_id: int, taskid: str, run_payload: dict[str, Any]) -> Command:
        task = await self.get(account_id, taskid)
        try:
            async with self._db.transaction() as conn:
                updated = await conn.execute(
                    "UPDATE tasks SET state = ?, error_msg = '', holds_executor = 1, progress = NULL,"
                    " updated_at = ? WHERE taskid = ? AND deleted = 0",
                    (int(TaskState.SETUP), time.time(), taskid),
                )
                if updated.rowcount == 0:  # deleted since it was read: no restart to queue
                    raise TaskNotFound(f"no task {taskid!r} in this account")
                await conn.execute(
                    "UPDATE commands SET done = 1 WHERE taskid = ? AND done = 0 AND op != 'remove'",
                    (taskid,),
                )
                return await self._enqueue(conn, task.hwid, taskid, Op.RESTART, run_payload)
        except sqlite3.IntegrityError as exc:
            if _is_live_task_conflict(exc):
                raise ExecutorBusy(f"executor {task.hwid} is running another task") from None
            raise

    # --- executor side -------------------------------------------------------------

    async def for_executor(self, hwid: str) -> list[Task]:
        rows = await self._db.fetchall(f"SELECT {_COLUMNS} FROM tasks WHERE hwid = ?", (hwid,))
        return [_task(r) for r in rows]

    async def is_live_on(self, hwid: str, taskid: str) -> bool:
        row = await self._db.fetchone(
            "SELECT 1 FROM tasks WHERE taskid = ? AND hwid = ? AND deleted = 0", (taskid, hwid)
        )
        return row is not None

    async def set_progress(self, taskid: str, progress: float) -> None:
        # Not in any listing, so no kept listing goes stale.
        await self._db.execute(
            "UPDATE tasks SET progress = ? WHERE taskid = ? AND deleted = 0", (progress, taskid)
        )

    async def set_results(self, taskid: str, size: int, truncated: int) -> bool:
        """Record the task's new results archive; False when the task is deleted or unknown."""
        changed = await self._db.execute(
            "UPDATE tasks SET results_size = ?, results_truncated = ?, results_at = ?"
            " WHERE taskid = ? AND deleted = 0",
            (size, truncated, time.time(), taskid),
        )
        return changed > 0

    async def busy_executors(self) -> set[str]:
        rows = await self._db.fetchall("SELECT hwid FROM tasks WHERE holds_executor = 1")
        return {r["hwid"] for r in rows}

    async def set_states(self, hwid: str, updates: list[tuple[str, TaskState, str]]) -> StateChanges:
        """Apply reported states of tasks of this executor.

        Reports about deleted tasks, or tasks of another executor, change nothing; nor
        does a report that would make a second task hold the executor: that task's
        container is told to stop instead (the commands to send are returned).
        """
        result = StateChanges()
        if not updates:
            return result
        changed = result.changed
        now = time.time()
        async with self._db.transaction() as conn:
            for taskid, state, error_msg in updates:
                try:
                    cursor = await conn.execute(
                        "UPDATE tasks SET state = ?, error_msg = ?, holds_executor = ?, updated_at = ?"
                        " WHERE taskid = ? AND hwid = ? AND deleted = 0 AND (state != ? OR error_msg != ?)",
                        (int(state), error_msg, int(state.holds_executor), now, taskid, hwid,
                         int(state), error_msg),
                    )
                except sqlite3.IntegrityError as exc:
                    if not _is_live_task_conflict(exc):
                        raise
                    # A finished task's container runs again on an executor another task
                    # holds now: the holder keeps it (only this statement is rolled back)
                    # and the intruder is stopped.
                    result.stops.append(await self._enqueue(conn, hwid, taskid, Op.STOP, {}))
                    continue
                if cursor.rowcount:
                    changed.append(taskid)
        self._listings.forget_tasks(changed)
        return result

    async def expire_setup(self, older_than: float) -> list[tuple[str, str]]:
        """Turn tasks stuck in setup since before ``older_than`` into errors."""
        expired: list[tuple[str, str]] = []
        async with self._db.transaction() as conn:
            # One statement decides: a task restarted meanwhile has a newer updated_at.
            cursor = await conn.execute(
                "UPDATE tasks SET state = ?, error_msg = 'setup timed out', holds_executor = 0, updated_at = ?"
                " WHERE state = ? AND deleted = 0 AND updated_at < ? RETURNING taskid, hwid",
                (int(TaskState.ERROR), time.time(), int(TaskState.SETUP), older_than),
            )
            expired = [(r["taskid"], r["hwid"]) for r in await cursor.fetchall()]
            # A start that arrives after the verdict would run a task shown as failed.
            await conn.executemany(
                "UPDATE commands SET done = 1 WHERE taskid = ? AND done = 0 AND op != 'remove'",
                [(t,) for t, _ in expired],
            )
        if expired:
            self._listings.forget_tasks([t for t, _ in expired])
        return expired

    # --- commands ------------------------------------------------------------------

    async def enqueue(self, hwid: str, taskid: str, op: Op, payload: dict[str, Any]) -> Command:
        async with self._db.transaction() as conn:
            return await self._enqueue(conn, hwid, taskid, op, payload)

    async def pending_commands(self, hwid: str) -> list[Command]:
        rows = await self._db.fetchall(
            "SELECT id, hwid, taskid, op, payload FROM commands WHERE hwid = ? AND done = 0 ORDER BY id",
            (hwid,),
        )
        return [Command(r["id"], r["hwid"], r["taskid"], Op(r["op"]), json.loads(r["payload"])) for r in rows]

    async def ack_command(self, hwid: str, command_id: int) -> None:
        """The agent carried the command out.  An acknowledged remove means the container
        is gone, so only then does a deleted task let go of its executor."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE commands SET done = 1 WHERE id = ? AND hwid = ? RETURNING taskid, op",
                (command_id, hwid),
            )
            row = await cursor.fetchone()
            if row is not None and row["op"] == Op.REMOVE.value:
                await conn.execute(
                    "UPDATE tasks SET holds_executor = 0 WHERE taskid = ? AND hwid = ? AND deleted = 1",
                    (row["taskid"], hwid),
                )

    async def release_deleted(self, hwid: str, taskids: list[str]) -> None:
        """Deleted tasks whose containers the agent no longer has let go of the executor."""
        if not taskids:
            return
        async with self._db.transaction() as conn:
            await conn.executemany(
                "UPDATE tasks SET holds_executor = 0 WHERE taskid = ? AND hwid = ? AND deleted = 1",
                [(t, hwid) for t in taskids],
            )

    @staticmethod
    async def _enqueue(conn, hwid: str, taskid: str, op: Op, payload: dict[str, Any]) -> Command:
        cursor = await conn.execute(
            "INSERT INTO commands (hwid, taskid, op, payload, created_at) VALUES (?, ?, ?, ?, ?)",
            (hwid, taskid, op.value, json.dumps(payload), time.time()),
        )
        return Command(cursor.lastrowid, hwid, taskid, op, payload)
