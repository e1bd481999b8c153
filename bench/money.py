"""Money at scale: history, the CSV export and metering's cost, on a database of
1,000,000 finished, billed tasks over 1,000 accounts (`bench/moneyseed.py`).

- **History page.** One client times ``GET /api/v1/history`` for a page of 100 of a
  random busy account (a year of at least 1,200 tasks: its month fills a page on
  average) in a random month of the year, against ``gettasklist`` of an account with 100
  live tasks (the call customers poll, a hundred tasks as a list), one request of each in
  turn on one keep-alive connection.
- **CSV export.** An account's 10,000 tasks as CSV (``Accept: text/csv``, one streamed
  answer) against the same rows as JSON pages of 1000 following ``next_cursor``, in turn.
- **Metering, on the report path.** Two servers on copies of the seeded database, one
  metering and one started with ``--no-metering``; the seeded executors connect to each
  as simulated agents in this process (hello, welcome, inventory over the agent
  WebSocket, `megamind.protocol`).  A round on one server: a customer's tasks placed by
  addtask (one on each executor, the rest queued; not timed), then every agent runs what
  it is sent as a real one reports it: running with the engine's start, the ack, stopped
  with the engine's start and end; each stopped report frees the executor and the hub
  answers with the next queued task's start.  Timed: the API process's CPU (every thread)
  a report handled, and reports handled a second, from "go" until the last queued task's
  start arrives.  Rounds alternate between the servers (on, off, off, on, ...), the other
  one idle; the figure is the ratio of the median CPU a report, on / off.
- **Metering, store only.** In this process, against the store (the servers stopped): a
  task placed on every executor, then each reported running and then stopped with the
  engine's times, one `set_states` a report; rounds with the real `Ledger` and with one
  made with ``metering=False`` (what ``--no-metering`` makes) alternate on the same
  database.  The time a report, without the API around it.

``--quick`` seeds 50,000 tasks over 100 accounts (the export still reads 10,000), with
100 executors and shorter rounds.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.moneyseed import HARDWARE, YEAR_S, Account, Executor, Seeded, seed
from bench.procs import Server, bench_server, cpu_seconds
from bench.stats import Row, Summary, percentile, ratio
from megamind.config import ServerConfig
from megamind.protocol import (
    AGENT_PATH,
    API_MESSAGES,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    TOKEN_HEADER,
    Ack,
    Command,
    Hello,
    Inventory,
    Op,
    StateReport,
    Welcome,
    decode,
)
from megamind.states import TaskState
from megamind.store import Store
from megamind.store.ledger import Ledger
from megamind.store.taskmodel import NewTask, StateUpdate, Task
from megamind.store.tasks import TaskStore

TARGET_PAGE_P99_MS = 50.0  # the issue's
TARGET_METERING_RATIO = 1.05  # metering on / off: within 5 % (the issue's)
# The CSV export reads the rows without counting them and without a JSON detail each:
# it should not take longer than reading the same rows a JSON page at a time.
TARGET_EXPORT_RATIO = 1.0
PAGE = 100
JSON_PAGE = 1000
MONTH_S = YEAR_S / 12
WARMUP = 5  # requests of each kind before any is timed
RUN_S = 60.0  # how long each run metered in the store alone lasted by the engine's word
ENGINE_RUN_S = 0.005  # how long each task an agent runs lasts: long enough to be billed
HEARTBEAT_S = 5.0  # the agents' own (`ServerConfig.heartbeat_s`)
GREETING = 4  # agents connecting at once
SUBMITTERS = 16  # addtask calls at once, between the timed windows
SIDES = ("on", "off")
SEED = 10
BUSY_TASKS = 12 * PAGE  # a year's tasks of an account whose history is read


@dataclass(frozen=True)
class Size:
    tasks: int
    accounts: int
    export_rows: int  # tasks of the account whose history is exported
    executors: int  # seeded; each metering round places a task on every one
    pages: int  # history pages timed (and as many gettasklist calls)
    exports: int  # CSV exports timed (and as many JSON walks)
    meter_rounds: int  # metering rounds of each side (the report path's, and the store's alone)
    meter_tasks: int  # tasks a round of the report path places on each executor (at least 2)


FULL = Size(tasks=1_000_000, accounts=1000, export_rows=10_000, executors=200, pages=400, exports=5,
            meter_rounds=10, meter_tasks=10)
QUICK = Size(tasks=50_000, accounts=100, export_rows=10_000, executors=100, pages=200, exports=3, meter_rounds=5,
             meter_tasks=6)


# --- the API ------------------------------------------------------------------------


class Client:
    """One keep-alive connection; each call's time includes reading the whole answer."""

    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1),
                                          timeout=aiohttp.ClientTimeout(total=300))

    async def close(self) -> None:
        await self.http.close()

    async def get(self, path: str, key: str, accept: str = "application/json") -> tuple[float, bytes]:
        """Seconds the call took, and the answer's body."""
        started = time.perf_counter()
        async with self.http.get(self.base + path, headers={"api-key": key, "Accept": accept}) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GET {path}: {resp.status} {body[:300]!r}")
        return time.perf_counter() - started, body


@dataclass
class Pages:
    history_ms: list[float]
    listing_ms: list[float]
    rows: list[int]  # rows on each history page
    totals: list[int]  # tasks in each page's account and month


def _month_query(seeded: Seeded, rng: random.Random) -> str:
    to = seeded.now - rng.randrange(12) * MONTH_S
    return f"/history?from={to - MONTH_S:.3f}&to={to:.3f}&limit={PAGE}"


def busy_accounts(seeded: Seeded) -> list[Account]:
    """The accounts whose month holds a full page on average (or, in a tiny run, the largest):
    a page of fewer rows costs less, so these are the ones the target is about."""
    busy = [a for a in seeded.customers if a.tasks >= BUSY_TASKS]
    return busy or [max(seeded.customers, key=lambda a: a.tasks)]


async def _pages(client: Client, seeded: Seeded, size: Size, rng: random.Random) -> Pages:
    """A history page of a random account and month, then gettasklist, in turn (each pair
    in the other order than the one before)."""
    out = Pages([], [], [], [])
    busy = busy_accounts(seeded)

    async def page(timed: bool) -> None:
        seconds, body = await client.get(_month_query(seeded, rng), rng.choice(busy).key)
        answer = json.loads(body)
        if len(answer["tasks"]) > PAGE:
            raise RuntimeError(f"a page of {PAGE} held {len(answer['tasks'])} tasks")
        if timed:
            out.history_ms.append(seconds * 1000)
            out.rows.append(len(answer["tasks"]))
            out.totals.append(answer["total"])

    async def listing(timed: bool) -> None:
        seconds, body = await client.get("/gettasklist", seeded.listed.key)
        if len(json.loads(body)) != seeded.listed.tasks:
            raise RuntimeError(f"gettasklist did not list the account's {seeded.listed.tasks} tasks")
        if timed:
            out.listing_ms.append(seconds * 1000)

    for _ in range(WARMUP):
        await page(False)
        await listing(False)
    for n in range(size.pages):
        sides = [page, listing] if n % 2 == 0 else [listing, page]
        for side in sides:
            await side(True)
    return out


async def _csv_export(client: Client, account: Account) -> float:
    seconds, body = await client.get("/history", account.key, accept="text/csv")
    records = list(csv.reader(io.StringIO(body.decode("utf-8"), newline="")))
    if len(records) - 1 != account.tasks:  # the header, then a row a task
        raise RuntimeError(f"the CSV export held {len(records) - 1} rows, not {account.tasks}")
    return seconds


async def _json_walk(client: Client, account: Account) -> float:
    seconds, rows, cursor = 0.0, 0, None
    while True:
        path = f"/history?limit={JSON_PAGE}" + (f"&cursor={cursor}" if cursor else "")
        took, body = await client.get(path, account.key)
        page = json.loads(body)
        seconds += took
        rows += len(page["tasks"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    if rows != account.tasks:
        raise RuntimeError(f"the JSON pages held {rows} rows, not {account.tasks}")
    return seconds


async def _exports(client: Client, seeded: Seeded, size: Size) -> tuple[list[float], list[float]]:
    """Seconds of each CSV export and of each walk through the JSON pages, in turn."""
    csv_s: list[float] = []
    json_s: list[float] = []
    await _csv_export(client, seeded.export)  # warm-up: the account's rows read once
    for n in range(size.exports):
        sides = [(csv_s, _csv_export), (json_s, _json_walk)]
        if n % 2:
            sides.reverse()
        for sink, export in sides:
            sink.append(await export(client, seeded.export))
    return csv_s, json_s


async def _api(url: str, seeded: Seeded, size: Size) -> tuple[Pages, tuple[list[float], list[float]]]:
    client = Client(url)
    try:
        pages = await _pages(client, seeded, size, random.Random(SEED))
        exports = await _exports(client, seeded, size)
    finally:
        await client.close()
    return pages, exports


# --- metering on the state-report path, through the API ----------------------------
#
# Two servers on copies of the seeded database, one metering and one with --no-metering,
# each with the seeded executors connected as simulated agents in this process.  A round
# on one server: ``total`` tasks submitted by addtask (one placed on each executor, the
# rest queued), then, on "go", every agent runs what it is sent: a running report with the
# engine's start, the command's ack, a stopped report with the engine's end; each stopped
# report frees the executor, and the hub answers it with the next queued task's start.
# The round is timed from "go" until the last queued task's start has arrived; the last
# start each agent gets is kept aside (not run until after the window), so every report
# sent in the window has been handled when it closes: exactly 2 x (total - agents).


@dataclass
class Window:
    seconds: float  # from go to the last start
    api_cpu_s: float  # the API process's CPU (every thread) over it
    reports: int

    @property
    def per_second(self) -> float:
        return self.reports / self.seconds

    @property
    def cpu_us(self) -> float:
        return self.api_cpu_s / self.reports * 1e6


def process_cpu_s(pid: int) -> float:
    """CPU seconds the live threads of a process have used, to the nanosecond (schedstat;
    the process's event loop and its SQLite threads live as long as it does), or, when the
    kernel keeps no schedstat, /proc/<pid>/stat's in clock ticks."""
    if not Path(f"/proc/{pid}/schedstat").exists():
        return cpu_seconds(pid)
    total = 0
    for thread in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((thread / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # gone meanwhile
    return total / 1e9


class _Round:
    """One round on one server: the starts its agents got, and its window."""

    def __init__(self, total: int, agents: int, pid: int) -> None:
        self.total, self.agents, self.pid = total, agents, pid
        self.received = 0  # starts of this round the agents have got
        self.held: list[tuple[_Agent, Command]] = []  # each agent's last start, run after the window
        self.go, self.ready, self.done = asyncio.Event(), asyncio.Event(), asyncio.Event()
        self.began = self.ended = 0.0
        self.cpu_began = self.cpu_ended = 0.0

    def start_received(self, agent: _Agent, command: Command) -> None:
        self.received += 1
        if self.received > self.total - self.agents:
            self.held.append((agent, command))  # no start comes after it on this executor
        else:
            agent.inbox.put_nowait((self, command))
        if self.received == self.agents:
            self.ready.set()  # one start on every executor, the rest queued
        if self.received == self.total:
            self.ended, self.cpu_ended = time.perf_counter(), process_cpu_s(self.pid)
            self.done.set()


class _Agent:
    """One seeded executor on one server, speaking `megamind.protocol`."""

    def __init__(self, fleet: MeterFleet, executor: Executor) -> None:
        self.fleet, self.executor = fleet, executor
        self.inbox: asyncio.Queue[tuple[_Round, Command]] = asyncio.Queue()
        self.welcomed = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.worker: asyncio.Task | None = None

    async def serve(self, http: aiohttp.ClientSession, greeting: asyncio.Semaphore) -> None:
        await greeting.acquire()  # released once welcomed
        try:
            await self._serve(http, greeting)
        finally:
            if not self.welcomed.is_set():
                greeting.release()

    async def _serve(self, http: aiohttp.ClientSession, greeting: asyncio.Semaphore) -> None:
        async with http.ws_connect(self.fleet.url + AGENT_PATH, headers={TOKEN_HEADER: self.executor.token},
                                   heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES) as ws:
            self.ws = ws
            self.worker = worker = asyncio.create_task(self._work())
            try:
                await ws.send_str(Hello(PROTOCOL_VERSION, HARDWARE, self.executor.cost).encode())
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT:
                        continue
                    received = decode(message.data, API_MESSAGES)
                    if isinstance(received, Welcome):
                        await ws.send_str(Inventory((), time.time()).encode())
                        self.welcomed.set()
                        greeting.release()
                    elif isinstance(received, Command):
                        if received.op not in (Op.START, Op.RESTART):
                            raise RuntimeError(f"executor {self.executor.hwid} was sent {received.op.value}")
                        self.fleet.round.start_received(self, received)
            finally:
                worker.cancel()
        if not self.fleet.closing:
            raise RuntimeError(f"executor {self.executor.hwid}: the API closed its link")

    async def _work(self) -> None:
        while True:
            round_, command = await self.inbox.get()
            await round_.go.wait()
            await self._run(command)

    async def _run(self, command: Command) -> None:
        """What an agent sends for a task that starts, runs ENGINE_RUN_S and exits 0."""
        started = time.time()  # the engine's start; this agent's clock is the API's
        await self.ws.send_str(StateReport(command.taskid, TaskState.RUNNING, started_at=started,
                                           sent_at=time.time()).encode())
        await self.ws.send_str(Ack(command.id).encode())
        await asyncio.sleep(ENGINE_RUN_S)
        finished = time.time()
        await self.ws.send_str(StateReport(command.taskid, TaskState.STOPPED, exit_code=0, started_at=started,
                                           finished_at=finished, sent_at=time.time()).encode())


class MeterFleet:
    """The seeded executors connected to one server, and the customer placing their tasks."""

    def __init__(self, server: Server, db: Path, seeded: Seeded, customer: Account) -> None:
        self.server, self.db, self.url = server, db, server.url
        self.agents = [_Agent(self, e) for e in seeded.executors]
        self.round = _Round(0, len(self.agents), server.proc.pid)
        self.closing = False
        self.links: list[asyncio.Task] = []
        self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                          timeout=aiohttp.ClientTimeout(total=None, connect=30))
        self.api = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=SUBMITTERS),
                                         headers={"api-key": customer.key},
                                         timeout=aiohttp.ClientTimeout(total=300))

    async def connect(self) -> float:
        """Seconds until every agent was welcomed and told its inventory."""
        began = time.monotonic()
        # A few at a time: each executor's greeting and inventory read every task it ever ran
        # (a year's, seeded), and all at once they would hold the API's loop past the heartbeat.
        greeting = asyncio.Semaphore(GREETING)
        self.links = [asyncio.create_task(a.serve(self.http, greeting)) for a in self.agents]
        waits = [asyncio.create_task(a.welcomed.wait()) for a in self.agents]
        await self._until(asyncio.gather(*waits), "every agent welcomed")
        # Online once the inventory is handled: the first submission must find them all free.
        await self._until(self._all_online(), "every agent online")
        return time.monotonic() - began

    async def _all_online(self) -> None:
        while await self._online() < len(self.agents):
            await asyncio.sleep(0.1)

    async def _online(self) -> int:
        """Executors online and free, as gethwlist lists them."""
        async with self.api.get(self.url + "/api/v1/gethwlist") as resp:
            return len(await resp.json(content_type=None))

    async def _watch_links(self) -> None:
        """Raise what broke an agent's link or its work, if anything did."""
        for task in self.links + [a.worker for a in self.agents if a.worker is not None]:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()

    async def _until(self, awaitable, what: str, timeout: float = 300.0) -> None:
        task = asyncio.ensure_future(awaitable)
        deadline = time.monotonic() + timeout
        while not task.done():
            await self._watch_links()
            if time.monotonic() > deadline:
                task.cancel()
                raise TimeoutError(f"money metering, {self.url}: {what} not within {timeout:.0f} s")
            await asyncio.wait([task], timeout=0.5)
        task.result()

    async def prepare(self, per_executor: int) -> None:
        """The next round's tasks submitted; returns when each executor holds one (untimed)."""
        self.round = round_ = _Round(per_executor * len(self.agents), len(self.agents), self.server.proc.pid)
        body = {"image": "megamind.network/app-0:latest", "params": "--metered"}

        async def submit() -> None:
            async with self.api.post(self.url + "/api/v1/addtask", json=body) as resp:
                answer = await resp.json(content_type=None)
                if resp.status != 200 or "taskid" not in answer:
                    raise RuntimeError(f"addtask: {resp.status} {answer}")

        await self._until(asyncio.gather(*(submit() for _ in range(round_.total))), "the round's submissions")
        await self._until(round_.ready.wait(), "a start on every executor")

    async def run(self) -> Window:
        """The prepared round, timed; then each agent's last task run (untimed)."""
        round_ = self.round
        round_.began, round_.cpu_began = time.perf_counter(), process_cpu_s(self.server.proc.pid)
        round_.go.set()
        await self._until(round_.done.wait(), "the round's last start")
        for agent, command in round_.held:
            agent.inbox.put_nowait((round_, command))
        return Window(round_.ended - round_.began, round_.cpu_ended - round_.cpu_began,
                      2 * (round_.total - round_.agents))

    async def settle(self) -> None:
        """Until no task holds an executor: every report sent has been handled."""
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        try:
            deadline = time.monotonic() + 120
            while conn.execute("SELECT COUNT(*) FROM tasks WHERE holds_executor = 1").fetchone()[0]:
                await self._watch_links()
                if time.monotonic() > deadline:
                    raise TimeoutError(f"money metering, {self.url}: tasks still held after the last round")
                await asyncio.sleep(0.05)
        finally:
            conn.close()

    async def close(self) -> None:
        self.closing = True
        for agent in self.agents:
            if agent.ws is not None:
                await agent.ws.close()
        for link in self.links:
            link.cancel()
        await asyncio.gather(*self.links, return_exceptions=True)
        await self.http.close()
        await self.api.close()


@dataclass
class ReportPath:
    on: list[Window]
    off: list[Window]
    connect_s: dict[str, float]  # until every agent was online, each side


async def _report_path(servers: dict[str, Server], dbs: dict[str, Path], seeded: Seeded, size: Size,
                       customer: Account) -> ReportPath:
    fleets = {side: MeterFleet(servers[side], dbs[side], seeded, customer) for side in SIDES}
    windows: dict[str, list[Window]] = {side: [] for side in SIDES}
    try:
        # Both fleets at once (two processes): what is timed starts after.
        connect_s = dict(zip(SIDES, await asyncio.gather(*(fleets[side].connect() for side in SIDES))))
        for fleet in fleets.values():
            await fleet.prepare(size.meter_tasks)
            await fleet.run()  # warm-up
            await fleet.prepare(size.meter_tasks)
        for n in range(size.meter_rounds):
            for side in SIDES if n % 2 == 0 else SIDES[::-1]:  # on, off, off, on, ...: no side goes first
                windows[side].append(await fleets[side].run())
                # The next round made ready now, so the other server's window runs alone.
                if len(windows[side]) < size.meter_rounds:
                    await fleets[side].prepare(size.meter_tasks)
                else:
                    await fleets[side].settle()
    finally:
        for fleet in fleets.values():
            await fleet.close()
    return ReportPath(windows["on"], windows["off"], connect_s)


def _count_after(db: Path, seeded: Seeded) -> tuple[int, int, int]:
    """Charges written since the seeding, and the benchmark's tasks that ended stopped and
    that were billed."""
    conn = sqlite3.connect(db)
    try:
        (charges,) = conn.execute("SELECT COUNT(*) FROM charges").fetchone()
        stopped, billed = conn.execute(
            "SELECT COUNT(*), COUNT(NULLIF(billed_ms, 0)) FROM tasks WHERE params = '--metered' AND state = ?",
            (int(TaskState.STOPPED),)).fetchone()
    finally:
        conn.close()
    return charges - seeded.tasks, stopped, billed


# --- metering in the store alone ----------------------------------------------------


@dataclass
class MeterRound:
    running_us: float  # a running report, on average over the round
    stopped_us: float

    @property
    def report_us(self) -> float:
        return (self.running_us + self.stopped_us) / 2


async def _meter_round(store: Store, tasks: TaskStore, seeded: Seeded, account_id: int) -> MeterRound:
    """A task placed on every executor (not timed), then each reported running, then each
    stopped, with the engine's start and end of its run."""
    placed = []
    for executor in seeded.executors:
        new = NewTask(account_id, "megamind.network/app-0:latest", "--store-metered", {}, hwid=executor.hwid)
        placed.append((await store.scheduler.submit(new)).task)
    started = time.time() - RUN_S  # the engine's start, which is also the run's key
    running = [StateUpdate(t.taskid, TaskState.RUNNING, "", None, (), started, started) for t in placed]
    running_us = await _timed_reports(tasks, placed, running)
    finished = time.time()
    stopped = [StateUpdate(t.taskid, TaskState.STOPPED, "", 0, (), started, started, finished) for t in placed]
    return MeterRound(running_us, await _timed_reports(tasks, placed, stopped))


async def _timed_reports(tasks: TaskStore, placed: list[Task], updates: list[StateUpdate]) -> float:
    """Microseconds a report, each task's in its own set_states."""
    began = time.perf_counter()
    for task, update in zip(placed, updates):
        changes = await tasks.set_states(task.hwid, [update])
        if changes.changed != [task.taskid]:
            raise RuntimeError(f"the {update.state.name.lower()} report of {task.taskid} changed nothing")
    return (time.perf_counter() - began) / len(updates) * 1e6


@dataclass
class StoreMetering:
    on: list[MeterRound]
    off: list[MeterRound]
    charges_added: int


async def _store_metering(db: Path, seeded: Seeded, size: Size) -> StoreMetering:
    store = await Store.open(db)
    try:
        # The same database and store, its ledger on or off (as `megamind server --no-metering` makes it).
        off = TaskStore(store.db, Ledger(store.db, ServerConfig.platform_fee, metering=False))
        sides = {"on": store.tasks, "off": off}
        rounds: dict[str, list[MeterRound]] = {"on": [], "off": []}
        account_id = seeded.customers[-1].id
        (before,) = await store.db.fetchone("SELECT COUNT(*) FROM charges")
        await _meter_round(store, store.tasks, seeded, account_id)  # warm-up
        for n in range(size.meter_rounds):
            for side in SIDES if n % 2 == 0 else SIDES[::-1]:
                rounds[side].append(await _meter_round(store, sides[side], seeded, account_id))
        (after,) = await store.db.fetchone("SELECT COUNT(*) FROM charges")
    finally:
        await store.close()
    return StoreMetering(rounds["on"], rounds["off"], after - before)


# --- the run ------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms"


def _page_row(size: Size, seeded: Seeded, pages: Pages, db_mb: float) -> Row:
    ours, base = Summary(pages.history_ms, "ms"), Summary(pages.listing_ms, "ms")
    full = [ms for ms, rows in zip(pages.history_ms, pages.rows) if rows == PAGE]
    full_text = _ms(full) if full else "none"
    return Row(
        "money history page", f"GET /history, a page of {PAGE} of a random busy account in a random month, "
        f"{seeded.tasks:,} tasks over {size.accounts:,} accounts: {_ms(ours.samples)} "
        f"(vs gettasklist of {seeded.listed.tasks} live tasks)",
        ours, base, ratio(ours.median, base.median), f"p99 < {TARGET_PAGE_P99_MS:g} ms",
        ours.p99 < TARGET_PAGE_P99_MS,
        [(f"money history page: {len(full)} of {len(pages.rows)} pages were full ({full_text}); rows a page "
          f"{sum(pages.rows) / len(pages.rows):.0f} on average, the month's tasks of the account "
          f"{min(pages.totals)}-{max(pages.totals)}; busy: the {len(busy_accounts(seeded))} accounts with at least "
          f"{BUSY_TASKS:,} tasks a year (accounts hold {min(a.tasks for a in seeded.customers):,}-"
          f"{max(a.tasks for a in seeded.customers):,}); ratio of medians; gettasklist "
          f"{_ms(base.samples)} (its listing is kept in memory between changes)"),
         (f"money: seeded {seeded.tasks:,} tasks and as many charges in {seeded.seconds:.0f} s, "
          f"a {db_mb:,.0f} MB database")],
    )


def _export_row(seeded: Seeded, csv_s: list[float], json_s: list[float]) -> Row:
    ours, base = Summary(csv_s, "s"), Summary(json_s, "s")
    rows = seeded.export.tasks
    return Row(
        "money csv export", f"GET /history as CSV, {rows:,} rows of one account: {rows / ours.median:,.0f} rows/s "
        f"(vs the same rows as JSON pages of {JSON_PAGE} following next_cursor: {rows / base.median:,.0f} rows/s)",
        ours, base, ratio(ours.median, base.median), f"<= {TARGET_EXPORT_RATIO:g}x JSON pages",
        ours.median <= TARGET_EXPORT_RATIO * base.median,
    )


def _metering_row(size: Size, seeded: Seeded, path: ReportPath, counts: dict[str, tuple[int, int, int]]) -> Row:
    ours = Summary([w.cpu_us for w in path.on], "us")
    base = Summary([w.cpu_us for w in path.off], "us")
    share = ratio(ours.median, base.median)
    agents = len(seeded.executors)
    per_round = (size.meter_tasks - 1) * agents  # tasks run in a round's window
    ran = (size.meter_rounds + 1) * size.meter_tasks * agents  # every task, the warm-up round's too
    rate_on = percentile([w.per_second for w in path.on], 50)
    rate_off = percentile([w.per_second for w in path.off], 50)
    (on_charges, on_stopped, on_billed), (off_charges, off_stopped, off_billed) = counts["on"], counts["off"]
    # Every task billed on the metered side (a run the minutely checkpoint caught under way has
    # two charges), nothing on the other.
    if ((on_stopped, off_stopped, on_billed, off_billed, off_charges) != (ran, ran, ran, 0, 0)
            or on_charges < ran):
        raise RuntimeError(f"money metering: tasks stopped on/off {on_stopped:,}/{off_stopped:,}, billed "
                           f"{on_billed:,}/{off_billed:,}, charges written {on_charges:,}/{off_charges:,}; "
                           f"{ran:,} tasks ran on each")
    window_s = percentile([w.seconds for w in path.on + path.off], 50)
    pooled_on, pooled_off = (sum(w.api_cpu_s for w in ws) / sum(w.reports for w in ws) * 1e6
                             for ws in (path.on, path.off))
    return Row(
        "money metering", f"state reports through the API (agent WebSocket, hub, set_states with the ledger, the "
        f"next start sent back), {agents} simulated agents, {2 * per_round:,} reports a round, {size.meter_rounds} "
        f"rounds a side: API CPU a report, metering on (vs the same server with --no-metering); reports/s "
        f"{rate_on:,.0f} (vs {rate_off:,.0f})",
        ours, base, share, f"<= {TARGET_METERING_RATIO:g}x metering off", share <= TARGET_METERING_RATIO,
        [(f"money metering: the ledger adds {ours.median - base.median:.0f} us of API CPU a report (every thread "
          f"of the process); over all rounds together {pooled_on:.0f} us on, {pooled_off:.0f} us off (ratio "
          f"{ratio(pooled_on, pooled_off):.2f}); reports handled a second, medians: {rate_on:,.0f} on, "
          f"{rate_off:,.0f} off (ratio off/on {ratio(rate_off, rate_on):.2f}); a window {window_s:.1f} s (from go "
          f"to the round's last start); each task: running with the engine's start, its ack, stopped "
          f"{ENGINE_RUN_S * 1000:g} ms later with the engine's end, answered by the next queued task's start "
          f"(placed by addtask before the window); two servers on copies of the seeded {seeded.tasks:,} tasks, one "
          f"idle while the other is timed; agents online in {path.connect_s['on']:.1f} s / "
          f"{path.connect_s['off']:.1f} s (both at once, {GREETING} greeted at a time); tasks stopped "
          f"{on_stopped:,} on, {off_stopped:,} off; billed {on_billed:,} on, {off_billed:,} off; charges written "
          f"{on_charges:,} on (one a task, two for a run the meter's checkpoint caught under way), "
          f"{off_charges:,} off")],
    )


def _store_metering_row(size: Size, seeded: Seeded, metering: StoreMetering) -> Row:
    ours = Summary([r.report_us for r in metering.on], "us")
    base = Summary([r.report_us for r in metering.off], "us")
    share = ratio(ours.median, base.median)
    expected = (len(metering.on) + 1) * len(seeded.executors)  # the warm-up round is metered too

    def split(rounds: list[MeterRound]) -> str:
        return (f"running {percentile([r.running_us for r in rounds], 50):.0f} us, "
                f"stopped {percentile([r.stopped_us for r in rounds], 50):.0f} us")

    return Row(
        "money metering, store only", f"TaskStore.set_states alone (no API, no agent), running then stopped with "
        f"the engine's times, {len(seeded.executors)} tasks a round, {size.meter_rounds} rounds a side: us a report "
        "with the ledger (vs a Ledger(metering=False), as --no-metering makes it)",
        ours, base, share, f"<= {TARGET_METERING_RATIO:g}x metering off", share <= TARGET_METERING_RATIO,
        [(f"money metering, store only: the ledger adds {ours.median - base.median:.0f} us a report; medians on: "
          f"{split(metering.on)}; off: {split(metering.off)}; charges written {metering.charges_added:,} (one a "
          f"metered task: {expected:,}); in this process on the metered server's database after its run, one "
          "set_states (one transaction) a report: the share of the whole report path is the row above")],
    )


def measure(size: Size, workdir: Path) -> tuple[list[Row], list]:
    """Seed; time history and the export on the API; time metering on the report path on
    two servers (on, off); stop them, then time metering in the store alone."""
    home, home_off = workdir / "money-api", workdir / "money-api-unmetered"
    home.mkdir(parents=True, exist_ok=True)
    home_off.mkdir(parents=True, exist_ok=True)
    dbs = {"on": home / "megamind.db", "off": home_off / "megamind.db"}
    seeded = seed(dbs["on"], size.tasks, size.accounts, size.export_rows, size.executors)
    db_mb = dbs["on"].stat().st_size / 1e6
    _copy_db(dbs["on"], dbs["off"])
    history = bench_server(dbs["on"], "127.0.0.1:9")  # no image is pulled: nothing runs
    history.start()
    try:
        pages, (csv_s, json_s) = asyncio.run(_api(history.url, seeded, size))
    finally:
        history.stop()
    # Both started afresh, alike but for metering; nothing runs but what the simulated agents report.
    servers = {"on": bench_server(dbs["on"], "127.0.0.1:9"), "off": bench_server(dbs["off"], "127.0.0.1:9")}
    servers["off"].extra_args += ("--no-metering",)
    try:
        for server in servers.values():
            server.start()
        path = asyncio.run(_report_path(servers, dbs, seeded, size, seeded.customers[-1]))
    finally:
        for server in servers.values():
            if server.proc is not None:
                server.stop()
    counts = {side: _count_after(dbs[side], seeded) for side in SIDES}
    store_metering = asyncio.run(_store_metering(dbs["on"], seeded, size))
    rows = [_page_row(size, seeded, pages, db_mb), _export_row(seeded, csv_s, json_s),
            _metering_row(size, seeded, path, counts), _store_metering_row(size, seeded, store_metering)]
    series = [("money: history page of 100 vs gettasklist", "ms",
               {"history page": pages.history_ms, "gettasklist": pages.listing_ms}),
              ("money metering: API CPU a state report, a round each", "us",
               {"metering on": [w.cpu_us for w in path.on], "--no-metering": [w.cpu_us for w in path.off]})]
    return rows, series


def _copy_db(source: Path, target: Path) -> None:
    """The same database for the other server (the seeding left no WAL behind)."""
    if Path(f"{source}-wal").exists():
        raise RuntimeError(f"{source} has a write-ahead log: not a closed database")
    shutil.copyfile(source, target)


def run(quick: bool, workdir: Path) -> tuple[list[Row], list]:
    return measure(QUICK if quick else FULL, workdir)
