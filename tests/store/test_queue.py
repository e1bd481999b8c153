"""Placement and the queue against the real SQLite store: random fleets and random histories of
submissions, executors freeing up, going on- and offline, deletions and expiries, with the
invariants checked after every step; and many decisions at once, through two connections."""

import asyncio
import itertools
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megamind.errors import ExecutorBusy, Unsatisfiable
from megamind.jobspec import RunSpec, TaskLimits
from megamind.placement import Capacity, Need, Requirements, fits, placement_order
from megamind.states import TaskState
from megamind.store import Store
from megamind.store.taskmodel import NewTask, StateUpdate

IMAGE = "megamind.network/helloworld:latest"
RUN = {"image": "127.0.0.1:5000/helloworld:latest", "public_image": IMAGE, "params": ""}


def hardware(gpus: int = 0, cpu_count: int = 4, ram: int = 16000, rating: float = 2.0, vram: int = 8000) -> dict:
    return {"gpus": ["nVidia 1060 6G"] * gpus, "gpu_memory_mb": [vram] * gpus, "cpus": ["cpu"],
            "cpu_count": cpu_count, "ram": ram, "network": "1gbit", "calculated_perfomance_rating": rating}


def mostly_none(*values):
    return st.sampled_from((None,) * 8 + values)


executors = st.tuples(
    st.builds(hardware, gpus=st.integers(0, 2), cpu_count=st.sampled_from((1, 4, 8)),
              ram=st.sampled_from((4000, 16000)), rating=st.sampled_from((1.0, 3.0)),
              vram=st.sampled_from((4000, 8000))),
    st.sampled_from((0.1, 0.5, 1.0)),  # cost: ties are common
    st.sampled_from((True, True, False)),  # online
)
submissions = st.fixed_dictionaries({
    # gpus=3 is more than any executor has: refused as unsatisfiable.
    "requirements": st.builds(Requirements, gpus=mostly_none(1, 2, 3), min_vram_mb=mostly_none(6000),
                              ram=mostly_none(8000), max_cost=mostly_none(0.5)),
    "limits": st.builds(TaskLimits, cpus=mostly_none(2.0), memory=mostly_none(12000)),
    "priority": st.sampled_from((0, 50, 100)),
    "account": st.integers(0, 1),
})
# Submissions and frees come most often, so queues build up and drain; an expiry empties the queue.
_KINDS = ("submit",) * 6 + ("free",) * 4 + ("toggle",) * 2 + ("delete", "expire")
_ARGUMENTS = {
    "submit": submissions,
    "free": st.integers(0, 5),  # the n-th executor a task holds
    "toggle": st.integers(0, 5),  # the n-th executor
    "delete": st.integers(0, 50),  # the n-th task not deleted
    "expire": st.none(),
}
steps = st.lists(st.sampled_from(_KINDS).flatmap(lambda kind: st.tuples(st.just(kind), _ARGUMENTS[kind])),
                 min_size=8, max_size=40)


class Checked:
    """A store and what the test knows: each executor's size and each task's need."""

    def __init__(self, store: Store, accounts: list[int]) -> None:
        self.store, self.accounts = store, accounts
        self.caps: dict[str, Capacity] = {}
        self.needs: dict[str, Need] = {}
        self.owners: dict[str, int] = {}

    async def rows(self, sql: str, params=()) -> list:
        return await self.store.db.fetchall(sql, params)

    async def holders(self) -> dict[str, str]:
        rows = await self.rows("SELECT hwid, taskid FROM tasks WHERE holds_executor = 1")
        held = [r["hwid"] for r in rows]
        assert len(held) == len(set(held)), f"an executor held by two tasks: {held}"
        return {r["hwid"]: r["taskid"] for r in rows}

    async def free_online(self) -> list[str]:
        holders = await self.holders()
        online = await self.rows("SELECT hwid FROM executors WHERE online = 1")
        return sorted(r["hwid"] for r in online if r["hwid"] not in holders)

    async def queue(self) -> list[str]:
        """Queued task ids in served order: higher priority, then older."""
        rows = await self.rows("SELECT taskid FROM tasks WHERE queued = 1 ORDER BY priority DESC, created_at, taskid")
        return [r["taskid"] for r in rows]

    async def check(self) -> None:
        await self.holders()
        odd = await self.rows("SELECT taskid FROM tasks WHERE queued = 1 AND (hwid IS NOT NULL OR"
                              " holds_executor = 1 OR deleted = 1 OR state != ?)", (int(TaskState.SETUP),))
        assert odd == [], "a queued task must be in setup, on no executor"
        queued = await self.queue()
        for hwid in await self.free_online():
            fitting = [t for t in queued if fits(self.needs[t], self.caps[hwid])]
            assert fitting == [], f"free online executor {hwid} could hold queued {fitting}"

    async def expected_next(self, hwid: str) -> str | None:
        """What a freed executor must take: the first queued task that fits it."""
        if hwid not in await self.free_online():
            return None
        return next((t for t in await self.queue() if fits(self.needs[t], self.caps[hwid])), None)

    async def drain(self, hwid: str) -> None:
        expected = await self.expected_next(hwid)
        command = await self.store.scheduler.drain(hwid)
        assert (command.taskid if command else None) == expected
        assert command is None or (command.op, command.hwid) == ("start", hwid)

    async def submit(self, requirements: Requirements, limits: TaskLimits, priority: int, account: int) -> None:
        need = Need.of(requirements, limits)
        free = [self.caps[h] for h in await self.free_online()]
        cheapest = min((c for c in free if fits(need, c)), key=placement_order, default=None)
        never = not any(fits(need, c) for c in self.caps.values())
        try:
            placed = await self.store.scheduler.submit(NewTask(
                self.accounts[account], IMAGE, "", RUN, requirements=requirements, spec=RunSpec(limits=limits),
                priority=priority))
        except Unsatisfiable:
            assert never, "refused although an executor could hold it"
            return
        assert not never, "accepted although no executor could ever hold it"
        assert placed.task.hwid == (cheapest.hwid if cheapest else None)
        assert (placed.command is None) == (cheapest is None)
        self.needs[placed.task.taskid] = need
        self.owners[placed.task.taskid] = self.accounts[account]

    async def free(self, index: int) -> None:
        """A held executor's task stopped, as its agent reports; then the hub fills it."""
        holders = sorted((await self.holders()).items())
        if not holders:
            return
        hwid, holder = holders[index % len(holders)]
        changes = await self.store.tasks.set_states(hwid, [StateUpdate(holder, TaskState.STOPPED, "")])
        assert changes.freed
        await self.drain(hwid)

    async def toggle(self, hwid: str) -> None:
        """The executor goes offline, or comes online and is filled, as the hub does."""
        online = (await self.store.executors.get(hwid)).online
        await self.store.executors.set_online(hwid, not online)
        if not online:
            await self.drain(hwid)

    async def delete(self, index: int) -> None:
        live = await self.rows("SELECT taskid FROM tasks WHERE deleted = 0 ORDER BY taskid")
        if not live:
            return
        taskid = live[index % len(live)]["taskid"]
        remove = await self.store.tasks.delete(self.owners[taskid], taskid)
        if remove is not None and await self.store.tasks.ack_command(remove.hwid, remove.id):
            await self.drain(remove.hwid)  # the container is gone: the executor may take the next

    async def expire(self) -> None:
        queued = await self.queue()
        assert sorted(await self.store.scheduler.expire(now=time.time() + 10**8)) == sorted(queued)


async def play(path, fleet, history) -> None:
    store = await Store.open(path)
    try:
        accounts = [(await store.accounts.create(name))[0].id for name in ("alice", "bob")]
        checked = Checked(store, accounts)
        hwids = []
        for hw, cost, online in fleet:
            hwid, _ = await store.executors.register(accounts[0], hw, cost)
            await store.executors.set_online(hwid, online)
            checked.caps[hwid] = Capacity.of(hwid, hw, cost)
            hwids.append(hwid)
        actions = {
            "submit": lambda fields: checked.submit(**fields),
            "free": checked.free,
            "toggle": lambda index: checked.toggle(hwids[index % len(hwids)]),
            "delete": checked.delete,
            "expire": lambda _: checked.expire(),
        }
        for kind, argument in history:
            await actions[kind](argument)
            await checked.check()
    finally:
        await store.close()


_runs = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fleet=st.lists(executors, min_size=1, max_size=4), history=steps)
def test_random_histories_keep_the_placement_invariants(tmp_path_factory, fleet, history):
    path = tmp_path_factory.getbasetemp() / f"history{next(_runs)}.sqlite"
    asyncio.run(play(path, fleet, history))


# --- many decisions at once ------------------------------------------------------------


async def test_simultaneous_submissions_and_drains_never_double_place(tmp_path):
    """60 submissions, pinned ones and drains at once, through two connections to one file (as two
    API processes would), then every executor freed at once; 20 rounds."""
    for round_ in range(20):
        path = tmp_path / f"round{round_}.sqlite"
        stores = (await Store.open(path), await Store.open(path))
        try:
            account = (await stores[0].accounts.create("alice"))[0].id
            checked = Checked(stores[0], [account])
            hwids = []
            for i in range(8):
                hw, cost = hardware(gpus=i % 2), (0.1, 0.5, 1.0)[i % 3]
                hwid, _ = await stores[0].executors.register(account, hw, cost)
                await stores[0].executors.set_online(hwid, True)
                checked.caps[hwid] = Capacity.of(hwid, hw, cost)
                hwids.append(hwid)

            tasks = [NewTask(account, IMAGE, "", RUN, requirements=Requirements(gpus=1 if i % 3 == 0 else None),
                             priority=i % 5 * 20) for i in range(60)]
            tasks += [NewTask(account, IMAGE, "", RUN, hwid=hwids[0]) for _ in range(5)]
            results = await asyncio.gather(
                *(stores[i % 2].scheduler.submit(task) for i, task in enumerate(tasks)),
                *(stores[i % 2].scheduler.drain(h) for i, h in enumerate(hwids)),
                return_exceptions=True)
            unpinned, pinned = results[:60], results[60:len(tasks)]
            assert not any(isinstance(r, BaseException) for r in unpinned), "placed or queued, never refused"
            assert all(isinstance(r, ExecutorBusy) for r in pinned if isinstance(r, BaseException))
            placed = [r for r in results[:len(tasks)] if not isinstance(r, BaseException)]
            for task, r in zip(tasks, results):
                if not isinstance(r, BaseException):
                    checked.needs[r.task.taskid] = Need.of(task.requirements, TaskLimits())
            on = [r.task.hwid for r in placed if r.task.hwid is not None]
            on += [c.hwid for c in results[len(tasks):] if c is not None]  # a drain that took a queued task
            assert sorted(on) == sorted(hwids), "every executor taken, none twice"
            await checked.check()

            async def free(store: Store, hwid: str, holder: str):
                await store.tasks.set_states(hwid, [StateUpdate(holder, TaskState.STOPPED, "")])
                return await store.scheduler.drain(hwid)
            holders = await checked.holders()
            commands = await asyncio.gather(
                *(free(stores[i % 2], h, holders[h]) for i, h in enumerate(hwids)),
                *(stores[(i + 1) % 2].scheduler.drain(h) for i, h in enumerate(hwids)))
            started = [c.hwid for c in commands if c is not None]
            assert sorted(started) == sorted(hwids), "each freed executor took exactly one queued task"
            await checked.check()
        finally:
            for store in stores:
                await store.close()
