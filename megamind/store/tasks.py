"""Tasks, and the commands the executors must carry out for them.

A command is written in the same transaction as the task change that needs it, so
an answered ``addtask`` or ``deltask`` is never lost, whatever dies next.  Commands
stay pending until the agent acknowledges them; the agent drops repeats by id.
"""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from megamind import metering
from megamind.errors import ExecutorBusy, TaskNotFound, TaskQueued
from megamind.protocol import Op
from megamind.states import TaskState
from megamind.store.db import Database
from megamind.store.ledger import METER_COLUMNS, Ledger
from megamind.store.listings import ListingCache
from megamind.store.spending import Spending
from megamind.store.taskmodel import (
    COLUMNS,
    DETAIL_COLUMNS,
    DETAIL_FROM,
    Command,
    StateChanges,
    StateUpdate,
    Task,
    TaskDetail,
    detail_of_row,
    enqueue_command,
    is_live_task_conflict,
    task_of_row,
)


class TaskStore:
    """Tasks and commands (placement and the queue are `Scheduler`'s, in ``queue.py``).

    `list_for_account` is what customers poll, so each account's listing is kept in
    memory (`ListingCache`) until a task of that account changes: every write to the
    tasks table goes through this class or the scheduler (executor addresses change only
    through `forget_listings`, called by the executor store), and each write drops the
    listings it touches after it commits.
    """

    def __init__(self, db: Database, ledger: Ledger) -> None:
        self._db = db
        self._ledger = ledger
        self.listings: ListingCache[Task] = ListingCache()

    def forget_listings(self) -> None:
        """Drop every kept listing (an executor's address changed)."""
        self.listings.forget_all()

    # --- customer side -------------------------------------------------------------

    async def get(self, account_id: int, taskid: str) -> Task:
        row = await self._db.fetchone(
            f"SELECT {COLUMNS} FROM tasks WHERE taskid = ? AND account_id = ? AND deleted = 0",
            (taskid, account_id),
        )
        if row is None:
            raise TaskNotFound(f"no task {taskid!r} in this account")
        return task_of_row(row)

    async def detail(self, account_id: int, taskid: str) -> TaskDetail:
        row = await self._db.fetchone(
            f"SELECT {DETAIL_COLUMNS} {DETAIL_FROM} WHERE t.taskid = ? AND t.account_id = ? AND t.deleted = 0",
            (taskid, account_id),
        )
        if row is None:
            raise TaskNotFound(f"no task {taskid!r} in this account")
        return detail_of_row(row)

    async def details_for_account(self, account_id: int, label: tuple[str, str] | None = None) -> list[TaskDetail]:
        """The account's tasks that were not deleted, in full, oldest first; with ``label``
        (key, value), only those carrying it."""
        rows = await self._db.fetchall(
            f"SELECT {DETAIL_COLUMNS} {DETAIL_FROM} WHERE t.account_id = ? AND t.deleted = 0 ORDER BY t.created_at",
            (account_id,),
        )
        details = [detail_of_row(row) for row in rows]
        if label is not None:
            key, value = label
            details = [d for d in details if d.labels.get(key) == value]
        return details

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
        kept = self.listings.get(account_id)
        if kept is not None:
            return kept
        generation = self.listings.generation
        rows = await self._db.fetchall(
            "SELECT t.taskid, t.account_id, t.hwid, t.image, t.params, t.state, t.error_msg,"
            " t.deleted, t.cancelled, e.ip FROM tasks t LEFT JOIN executors e ON e.hwid = t.hwid"
            " WHERE t.account_id = ? AND t.deleted = 0 ORDER BY t.created_at",
            (account_id,),
        )
        tasks = [task_of_row(r, r[9] or "") for r in rows]
        self.listings.keep(account_id, tasks, generation)
        return list(tasks)

    async def delete(self, account_id: int, taskid: str) -> Command | None:
        """Mark the task deleted; the remove to send, or None when it never reached an executor."""
        try:
            return await self._delete(account_id, taskid)
        finally:
            self.listings.forget_account(account_id)

    async def _delete(self, account_id: int, taskid: str) -> Command | None:
        await self.get(account_id, taskid)
        now = time.time()
        async with self._db.transaction() as conn:
            # A live task keeps holding its executor until the agent says the container is
            # gone (`ack_command` of the remove): until then it may still run there.
            changed = await conn.execute(
                "UPDATE tasks SET deleted = 1, deleted_at = ?, queued = 0, updated_at = ?"
                " WHERE taskid = ? AND deleted = 0",
                (now, now, taskid),
            )
            if changed.rowcount == 0:
                raise TaskNotFound(f"no task {taskid!r} in this account")
            await self._ledger.step(conn, taskid, lambda meter: metering.halt(meter, now))
            row = await (await conn.execute("SELECT hwid FROM tasks WHERE taskid = ?", (taskid,))).fetchone()
            if row["hwid"] is None:  # taken out of the queue: no container anywhere
                return None
            # A start or restart that never reached the agent is pointless now.
            await conn.execute("UPDATE commands SET done = 1 WHERE taskid = ? AND done = 0", (taskid,))
            return await enqueue_command(conn, row["hwid"], taskid, Op.REMOVE, {}, now)

    async def cancel(self, account_id: int, taskid: str) -> Command | None:
        """End a queued, setting-up or running task and keep it; the remove to send, if any."""
        try:
            return await self._cancel(account_id, taskid)
        finally:
            self.listings.forget_account(account_id)

    async def _cancel(self, account_id: int, taskid: str) -> Command | None:
        await self.get(account_id, taskid)
        now = time.time()
        async with self._db.transaction() as conn:
            row = await (await conn.execute(
                "SELECT hwid, state, cancelled, queued FROM tasks WHERE taskid = ? AND deleted = 0", (taskid,)
            )).fetchone()
            if row is None:
                raise TaskNotFound(f"no task {taskid!r} in this account")
            if row["cancelled"] or (TaskState(row["state"]).finished and not row["queued"]):
                return None  # ended already: nothing changes
            await conn.execute(
                "UPDATE tasks SET state = ?, error_msg = '', cancelled = 1, queued = 0, finished_at = ?,"
                " updated_at = ? WHERE taskid = ?",
                (int(TaskState.STOPPED), now, now, taskid),
            )
            await self._ledger.step(conn, taskid, lambda meter: metering.halt(meter, now))
            if row["hwid"] is None:
                return None
            # It keeps its executor until the agent says the container is gone, as a deleted task does.
            await conn.execute("UPDATE commands SET done = 1 WHERE taskid = ? AND done = 0", (taskid,))
            return await enqueue_command(conn, row["hwid"], taskid, Op.REMOVE, {}, now)

    async def halt(self, account_id: int, reason: str) -> list[Command]:
        """The platform stops every live task of the account (queued ones included): state 5
        with ``reason``, charged up to now and not after; the removes to send."""
        now = time.time()
        commands: list[Command] = []
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE tasks SET state = ?, error_msg = ?, cancelled = 1, queued = 0, queue_deadline = NULL,"
                " finished_at = ?, updated_at = ? WHERE account_id = ? AND deleted = 0 AND cancelled = 0"
                " AND state IN (?, ?) RETURNING taskid, hwid",
                (int(TaskState.ERROR), reason, now, now, account_id, int(TaskState.SETUP), int(TaskState.RUNNING)),
            )
            for taskid, hwid in await cursor.fetchall():
                await self._ledger.step(conn, taskid, lambda meter: metering.halt(meter, now))
                if hwid is None:
                    continue
                await conn.execute("UPDATE commands SET done = 1 WHERE taskid = ? AND done = 0", (taskid,))
                commands.append(await enqueue_command(conn, hwid, taskid, Op.REMOVE, {}, now))
        self.listings.forget_account(account_id)
        return commands

    async def run_payload_of(self, taskid: str) -> dict[str, Any]:
        """The start command's fields as addtask gave them, for a restart."""
        row = await self._db.fetchone("SELECT start_payload FROM tasks WHERE taskid = ?", (taskid,))
        return json.loads(row["start_payload"]) if row else {}

    async def restart(self, account_id: int, taskid: str, run_payload: dict[str, Any]) -> Command:
        """Start the task again on its executor with ``run_payload`` (`run_payload_of`, as addtask stored it)."""
        try:
            return await self._restart(account_id, taskid, run_payload)
        finally:
            self.listings.forget_account(account_id)

    async def _restart(self, account_id: int, taskid: str, run_payload: dict[str, Any]) -> Command:
        task = await self.get(account_id, taskid)
        if task.hwid is None:
            raise TaskQueued(f"task {taskid} is queued: it starts when an executor is free")
        try:
            async with self._db.transaction() as conn:
                price = await conn.execute_fetchall("SELECT price FROM tasks WHERE taskid = ?", (taskid,))
                await Spending.check_can_start(conn, account_id, price[0][0] if price else None)
                updated = await conn.execute(
                    "UPDATE tasks SET state = ?, error_msg = '', holds_executor = 1, progress = NULL,"
                    " cancelled = 0, finished_at = NULL, exit_code = NULL, ports = '[]', updated_at = ?"
                    " WHERE taskid = ? AND deleted = 0",
                    (int(TaskState.SETUP), time.time(), taskid),
                )
                if updated.rowcount == 0:  # deleted since it was read: no restart to queue
                    raise TaskNotFound(f"no task {taskid!r} in this account")
                now = time.time()
                await self._ledger.step(conn, taskid, lambda meter: metering.halt(meter, now))
                await conn.execute(
                    "UPDATE commands SET done = 1 WHERE taskid = ? AND done = 0 AND op != 'remove'",
                    (taskid,),
                )
                return await enqueue_command(conn, task.hwid, taskid, Op.RESTART, run_payload, time.time())
        except sqlite3.IntegrityError as exc:
            if is_live_task_conflict(exc):
                raise ExecutorBusy(f"executor {task.hwid} is running another task") from None
            raise

    # --- executor side -------------------------------------------------------------

    async def for_executor(self, hwid: str) -> list[Task]:
        """Its tasks, but deleted ones that let go of it long ago."""
        rows = await self._db.fetchall(
            f"SELECT {COLUMNS} FROM tasks WHERE hwid = ? AND (deleted = 0 OR holds_executor = 1)", (hwid,))
        return [task_of_row(r) for r in rows]

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

    async def set_states(self, hwid: str, updates: list[StateUpdate]) -> StateChanges:
        """Apply reported states of tasks of this executor.

        Reports about deleted or cancelled tasks, or tasks of another executor, change
        nothing; nor does a report that would make a second task hold the executor: that
        task's container is told to stop instead (the commands to send are returned).
        """
        result = StateChanges()
        if not updates:
            return result
        changed = result.changed
        now = time.time()
        running = int(TaskState.RUNNING)
        async with self._db.transaction() as conn:
            for update in (StateUpdate(*u) for u in updates):
                state, ports = int(update.state), json.dumps([p.to_wire() for p in update.ports])
                started = min(update.started_at, now) if update.started_at is not None else now
                finished = min(update.finished_at, now) if update.finished_at is not None else now
                try:
                    # A run starts when the engine started it and ends when the engine says it
                    # ended (else: when the API heard of it).
                    cursor = await conn.execute(
                        "UPDATE tasks SET state = ?, error_msg = ?, holds_executor = ?, updated_at = ?,"
                        " exit_code = ?, ports = ?,"
                        " started_at = CASE WHEN ? = ? AND (state != ? OR started_at IS NULL) THEN ?"
                        " WHEN ? AND ? IS NOT NULL THEN ? ELSE started_at END,"
                        " finished_at = CASE WHEN ? THEN ? ELSE NULL END"
                        " WHERE taskid = ? AND hwid = ? AND deleted = 0 AND cancelled = 0"
                        " AND (state != ? OR error_msg != ? OR ports != ?)"
                        f" RETURNING {METER_COLUMNS}",
                        (state, update.error_msg, int(update.state.holds_executor), now,
                         update.exit_code, ports,
                         state, running, running, started,
                         int(update.state.finished), update.started_at, started,
                         int(update.state.finished), finished,
                         update.taskid, hwid, state, update.error_msg, ports),
                    )
                    returned = next(iter(await cursor.fetchall()), None)  # read to its end: the statement completes
                except sqlite3.IntegrityError as exc:
                    if not is_live_task_conflict(exc):
                        raise
                    # A finished task's container runs again on an executor another task
                    # holds now: the holder keeps it (only this statement is rolled back)
                    # and the intruder is stopped.
                    result.stops.append(await enqueue_command(conn, hwid, update.taskid, Op.STOP, {}, now))
                    continue
                if returned is not None:
                    changed.append(update.taskid)
                    result.freed = result.freed or not update.state.holds_executor
                    await self._ledger.step_returned(conn, returned, _meter_move(update, now))
        self.listings.forget_tasks(changed)
        return result

    async def expire_setup(self, older_than: float) -> list[tuple[str, str]]:
        """Turn tasks stuck in setup on an executor since before ``older_than`` into errors."""
        expired: list[tuple[str, str]] = []
        now = time.time()
        async with self._db.transaction() as conn:
            # One statement decides: a task restarted meanwhile has a newer updated_at.
            cursor = await conn.execute(
                "UPDATE tasks SET state = ?, error_msg = 'setup timed out', holds_executor = 0, updated_at = ?,"
                " finished_at = ? WHERE state = ? AND deleted = 0 AND queued = 0 AND updated_at < ?"
                " RETURNING taskid, hwid",
                (int(TaskState.ERROR), now, now, int(TaskState.SETUP), older_than),
            )
            expired = [(r["taskid"], r["hwid"]) for r in await cursor.fetchall()]
            # A start that arrives after the verdict would run a task shown as failed.
            await conn.executemany(
                "UPDATE commands SET done = 1 WHERE taskid = ? AND done = 0 AND op != 'remove'",
                [(t,) for t, _ in expired],
            )
        if expired:
            self.listings.forget_tasks([t for t, _ in expired])
        return expired

    # --- commands ------------------------------------------------------------------

    async def enqueue(self, hwid: str, taskid: str, op: Op, payload: dict[str, Any]) -> Command:
        async with self._db.transaction() as conn:
            return await enqueue_command(conn, hwid, taskid, op, payload, time.time())

    async def pending_commands(self, hwid: str) -> list[Command]:
        rows = await self._db.fetchall(
            "SELECT id, hwid, taskid, op, payload FROM commands WHERE hwid = ? AND done = 0 ORDER BY id",
            (hwid,),
        )
        return [Command(r["id"], r["hwid"], r["taskid"], Op(r["op"]), json.loads(r["payload"])) for r in rows]

    async def ack_command(self, hwid: str, command_id: int) -> bool:
        """The agent carried the command out.  An acknowledged remove means the container
        is gone, so only then does a deleted or cancelled task let go of its executor.
        True when the executor was let go."""
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "UPDATE commands SET done = 1 WHERE id = ? AND hwid = ? RETURNING taskid, op",
                (command_id, hwid),
            )
            row = await cursor.fetchone()
            if row is None or row["op"] != Op.REMOVE.value:
                return False
            released = await conn.execute(
                "UPDATE tasks SET holds_executor = 0 WHERE taskid = ? AND hwid = ? AND holds_executor = 1"
                " AND (deleted = 1 OR cancelled = 1)",
                (row["taskid"], hwid),
            )
            return released.rowcount > 0

    async def release_retired(self, hwid: str, taskids: list[str]) -> bool:
        """Deleted or cancelled tasks whose containers the agent no longer has let go of the
        executor; True when one did."""
        if not taskids:
            return False
        async with self._db.transaction() as conn:
            cursor = await conn.executemany(
                "UPDATE tasks SET holds_executor = 0 WHERE taskid = ? AND hwid = ? AND holds_executor = 1"
                " AND (deleted = 1 OR cancelled = 1)",
                [(taskid, hwid) for taskid in taskids],
            )
            return cursor.rowcount > 0


def _meter_move(update: StateUpdate, now: float):
    """What a reported state does to the task's meter: running opens or continues a run;
    anything else ends the run under way, at the engine's end when it gave one."""
    if update.state == TaskState.RUNNING:
        return lambda meter: metering.running(meter, update.run_key, update.started_at, now)
    return lambda meter: metering.ended(meter, update.finished_at, now, update.started_at)
