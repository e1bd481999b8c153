"""The API's side of the agent channel: one WebSocket per connected executor.

The hub knows which executors are online, hands them commands, and turns what they
report (inventory, states, phases, log batches, acknowledgements) into store writes.
An executor is online once it has told its inventory, so nobody sees it before the
API knows what it holds.

A removed executor is retired (`retire`): it goes offline, its live tasks end in error
(charged up to then), its link closes and nothing it still says is heard.  The owner's
``DELETE`` retires it at once; one an admin revoked from another process is found by the
app's periodic check (``app.background_ctx``), which calls `retire` too.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web
from marshmallow import ValidationError

from megamind import protocol
from megamind.api.jobschemas import MAX_COST
from megamind.api.schemas import HardwareReportSchema
from megamind.progress import progress_of
from megamind.protocol import (
    AGENT_MESSAGES,
    MAX_INVENTORY,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    Ack,
    ContainerReport,
    Hello,
    Inventory,
    LogBatch,
    Message,
    Op,
    Phase,
    PhaseReport,
    ProtocolError,
    Refused,
    StateReport,
    Stream,
    Welcome,
    decode,
)
from megamind.reconcile import reconcile
from megamind.states import TaskState
from megamind.store import Store
from megamind.store.executors import ExecutorRecord
from megamind.store.taskmodel import Command, StateUpdate

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0
MAX_PHASES_PER_LINK = 1000
# Containers of ids the store never placed on the executor that one link is told to remove,
# each once (a bound on what one connection can make the API send).
MAX_STRAYS_PER_LINK = MAX_INVENTORY
# The error_msg of a task whose executor was removed under it.
REMOVED_BY_OWNER = "executor removed by its owner"
REVOKED = "executor revoked by the platform"


class _Removed(Exception):
    """The executor was removed while its agent said hello."""


# A stored command as it is sent: what is minted for the moment of sending (a pull token) added.
Stamp = Callable[[Command], Awaitable[protocol.Command]]


async def as_stored(command: Command) -> protocol.Command:
    return command.message()


@dataclass(eq=False)
class AgentLink:
    record: ExecutorRecord
    ws: web.WebSocketResponse
    stamp: Stamp = as_stored
    sent: set[int] = field(default_factory=set)
    # taskid -> how far its setup has got, as this agent last said; gone with the link.
    phases: dict[str, Phase] = field(default_factory=dict)
    # Ids the store never placed here whose containers this link was told to remove.
    strays: set[str] = field(default_factory=set)
    removed: bool = False  # retired: nothing it says is heard any more

    # Stamping may wait for the store: sends stay in the order they were asked for.
    sending: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, command: Command) -> None:
        async with self.sending:
            if command.id in self.sent:
                return
            message = await self.stamp(command)
            self.sent.add(command.id)
            await self.ws.send_str(message.encode())


class ExecutorHub:
    def __init__(self, store: Store, heartbeat_s: float, results_limit: int, stamp: Stamp = as_stored) -> None:
        self._store = store
        self._stamp = stamp
        self._heartbeat_s = heartbeat_s
        self._results_limit = results_limit
        self._going_offline: set[asyncio.Future] = set()
        self._links: dict[str, AgentLink] = {}
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()
        self._closing: set[asyncio.Future] = set()
        self._retiring: set[str] = set()  # hwids `retire` is at: the owner's call and the check never both
        # Ids of removes sent and never stored: negative, so never a stored command's, and
        # counting down from this start's microseconds, so never one an agent saw before.
        self._stray_ids = itertools.count(-int(time.time() * 1_000_000), -1)

    # --- what the customer API asks --------------------------------------------------

    def is_online(self, hwid: str) -> bool:
        return hwid in self._links

    def phase(self, hwid: str, taskid: str) -> str | None:
        """How far the setup of a task has got, while its executor is connected."""
        link = self._links.get(hwid)
        phase = link.phases.get(taskid) if link else None
        return phase.value if phase else None

    def online(self) -> list[ExecutorRecord]:
        return [link.record for link in self._links.values()]

    async def fill(self, hwid: str) -> None:
        """An executor may have room: give it the first queued task that fits."""
        command = await self._store.scheduler.drain(hwid)
        if command is not None:
            await self.dispatch(command)

    async def dispatch(self, command: Command) -> None:
        """Send now if the agent is here; otherwise it waits, stored, for the reconnect."""
        link = self._links.get(command.hwid)
        if link is None:
            return
        try:
            await link.send(command)
        except (ConnectionError, RuntimeError) as exc:
            log.info("command %s to %s not sent now (%s); resent on reconnect", command.id, command.hwid, exc)

    # --- the agent channel ------------------------------------------------------------

    async def serve(self, request: web.Request, record: ExecutorRecord) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=self._heartbeat_s, max_msg_size=MAX_MESSAGE_BYTES)
        await ws.prepare(request)
        self._sockets.add(ws)
        link = AgentLink(record, ws, self._stamp)
        close_code, reason = None, b""
        try:
            refusal = await self._greet(link, request.remote or "")
            if refusal is None:
                async for message in ws:
                    if link.removed:
                        break
                    if message.type == WSMsgType.TEXT:
                        await self._handle(link, decode(message.data, AGENT_MESSAGES))
            else:
                close_code, reason = WSCloseCode.POLICY_VIOLATION, refusal
        except _Removed:
            close_code, reason = WSCloseCode.POLICY_VIOLATION, b"executor removed"
        except ProtocolError as exc:
            log.warning("executor %s broke the protocol: %s", record.hwid, exc)
            close_code, reason = WSCloseCode.POLICY_VIOLATION, str(exc)[:100].encode()
        except asyncio.TimeoutError:
            log.warning("executor %s sent no hello in time", record.hwid)
            close_code, reason = WSCloseCode.POLICY_VIOLATION, b"no hello"
        except Exception:
            # The socket is upgraded: an HTTP error answer cannot be written on it any more.
            log.exception("executor %s: unexpected error on the agent channel", record.hwid)
            close_code, reason = WSCloseCode.INTERNAL_ERROR, b"server error"
        finally:
            # Offline at once: the closing handshake below may wait on a silent peer.
            if self._links.get(record.hwid) is link:
                del self._links[record.hwid]
                # Shielded: a handler cancelled at shutdown still finishes it, and close() waits for it.
                going = asyncio.ensure_future(self._go_offline(record.hwid))
                self._going_offline.add(going)
                going.add_done_callback(self._going_offline.discard)
                await asyncio.shield(going)
                log.info("executor %s offline", record.hwid)
        if close_code is not None:
            await ws.close(code=close_code, message=reason)
        return ws

    async def _go_offline(self, hwid: str) -> None:
        await self._store.executors.set_online(hwid, False)
        await self._store.ledger.lose_sight(hwid)

    async def _greet(self, link: AgentLink, ip: str) -> bytes | None:
        """hello -> welcome, with where the API's copy of each task's output ends.  When the
        agent speaks another protocol version or claims what no machine has, it is told why
        (refused: it stops) and the reason to close with is returned."""
        message = await link.ws.receive(timeout=HELLO_TIMEOUT_S)
        if message.type != WSMsgType.TEXT:
            raise ProtocolError("the first message must be hello")
        hello = decode(message.data, AGENT_MESSAGES)
        if not isinstance(hello, Hello):
            raise ProtocolError(f"the first message must be hello, not {hello.type}")
        if hello.protocol != PROTOCOL_VERSION:
            text = (f"this API speaks agent protocol {PROTOCOL_VERSION}, the agent {hello.protocol}: "
                    "run the executor of the same Megamind release as the API")
            log.warning("executor %s refused: %s", link.record.hwid, text)
            await link.ws.send_str(Refused(text).encode())
            return b"protocol version"
        try:
            hardware = _hardware(hello)
        except ValueError as exc:
            text = f"the API refuses this executor's hello: {exc}"
            log.warning("executor %s refused: %s", link.record.hwid, text)
            await link.ws.send_str(Refused(text).encode())
            return b"claims refused"
        hwid = link.record.hwid
        await self._store.executors.update_on_connect(hwid, hardware, hello.cost, ip, hello.publish_address)
        link.record.hardware, link.record.cost, link.record.ip = hardware, hello.cost, ip
        link.record.publish_address = hello.publish_address
        # Seen again: what it ran while silent is billed only if the silence was short.
        await self._store.ledger.seen_again(hwid)
        held = [t.taskid for t in await self._store.tasks.for_executor(hwid) if not t.deleted]
        cursors = await self._store.logs.cursors(held)
        await link.ws.send_str(Welcome(hwid, cursors, self._results_limit).encode())
        return None

    async def _come_online(self, link: AgentLink) -> None:
        hwid = link.record.hwid
        previous = self._links.get(hwid)
        self._links[hwid] = link
        if previous is not None and previous is not link:
            # The agent came back before its old socket was noticed dead.
            await previous.ws.close(code=WSCloseCode.GOING_AWAY, message=b"replaced")
        if not await self._store.executors.set_online(hwid, True):
            raise _Removed(hwid)  # removed since its token was read: its link is let go in `serve`
        for command in await self._store.tasks.pending_commands(hwid):
            await link.send(command)
        log.info("executor %s online from %s", hwid, link.record.ip)
        await self.fill(hwid)

    async def _reconcile(self, link: AgentLink, inventory: tuple[ContainerReport, ...], clock_shift: float) -> None:
        hwid = link.record.hwid
        tasks = await self._store.tasks.for_executor(hwid)
        pending = {c.taskid for c in await self._store.tasks.pending_commands(hwid)}
        plan = reconcile(tasks, list(inventory), pending, clock_shift)
        await self._apply_states(hwid, plan.states)
        if plan.remove:
            await self._remove_orphans(link, plan.remove)
        if await self._store.tasks.release_retired(hwid, plan.released) and self.is_online(hwid):
            await self.fill(hwid)

    async def _remove_orphans(self, link: AgentLink, taskids: list[str]) -> None:
        """Containers of no live task, with no command pending: a task the executor was given
        gets one stored remove (the plan leaves out ids with one pending); an id the store never
        placed here is told to go once per link, and nothing is stored for it."""
        hwid = link.record.hwid
        given = await self._store.executors.given(hwid, taskids)
        for taskid in taskids:
            if taskid in given:
                await self.dispatch(await self._store.tasks.enqueue(hwid, taskid, Op.REMOVE, {}))
            elif taskid not in link.strays and len(link.strays) < MAX_STRAYS_PER_LINK:
                link.strays.add(taskid)
                try:
                    await link.send(Command(next(self._stray_ids), hwid, taskid, Op.REMOVE, {}))
                except (ConnectionError, RuntimeError):
                    return  # the link is going: the next one is told again

    async def _apply_states(self, hwid: str, states: list[StateUpdate]) -> None:
        if any(update.state.finished for update in states):
            # Finished means complete: the task's last lines are on disk before its end is.
            await self._store.logs.flush()
        changes = await self._store.tasks.set_states(hwid, states)
        for command in changes.stops:
            await self.dispatch(command)
        if changes.freed:
            await self.fill(hwid)

    async def _handle(self, link: AgentLink, message: Message) -> None:
        hwid = link.record.hwid
        if isinstance(message, LogBatch):
            await self._keep_logs(hwid, message)
        elif isinstance(message, StateReport):
            if message.state != TaskState.SETUP:
                link.phases.pop(message.taskid, None)
            shift = _clock_shift(message.sent_at)
            await self._apply_states(hwid, [StateUpdate(
                message.taskid, message.state, message.error_msg, message.exit_code, message.ports,
                message.started_at, _shifted(message.started_at, shift), _shifted(message.finished_at, shift),
            )])
        elif isinstance(message, PhaseReport):
            # Read only for tasks of this executor (the detail call asks by hwid),
            # so an agent can only describe its own tasks; the map is bounded.
            if message.taskid in link.phases or len(link.phases) < MAX_PHASES_PER_LINK:
                link.phases[message.taskid] = message.phase
        elif isinstance(message, Ack):
            link.sent.discard(message.id)
            if await self._store.tasks.ack_command(hwid, message.id):
                await self.fill(hwid)
        elif isinstance(message, Inventory):
            await self._reconcile(link, message.containers, _clock_shift(message.sent_at))
            if self._links.get(hwid) is not link:
                await self._come_online(link)
        else:
            raise ProtocolError(f"{message.type} is not a message an agent sends now")

    async def _keep_logs(self, hwid: str, batch: LogBatch) -> None:
        if not await self._store.tasks.is_live_on(hwid, batch.taskid):
            return
        if not await self._store.logs.append(batch):
            log.info("log batch of %s does not continue the stored output; dropped", batch.taskid)
            return
        progress = progress_of(e.text for e in batch.entries if e.stream is Stream.STDOUT and not e.dropped)
        if progress is not None:
            await self._store.tasks.set_progress(batch.taskid, progress)

    # --- removed executors -------------------------------------------------------------

    async def retire(self, hwid: str, reason: str = REVOKED) -> None:
        """An executor that was removed (`ExecutorStore.remove`): offline now, its live tasks
        ended in error with ``reason`` and charged up to now (up to when it was last seen,
        if it is not connected), deleted and cancelled ones let go of it, and its link closed."""
        if hwid in self._retiring:
            return
        self._retiring.add(hwid)
        try:
            await self._retire(hwid, reason)
        finally:
            self._retiring.discard(hwid)

    async def _retire(self, hwid: str, reason: str) -> None:
        link = self._links.pop(hwid, None)
        if link is not None:
            link.removed = True
        await self._store.executors.set_online(hwid, False)
        tasks = await self._store.tasks.for_executor(hwid)
        live = [t.taskid for t in tasks if not t.retired and t.state.holds_executor]
        if live:
            ended = None if link is not None else await self._store.executors.seen_at(hwid)
            await self._store.logs.flush()
            await self._store.tasks.set_states(
                hwid, [StateUpdate(taskid, TaskState.ERROR, reason, finished_at=ended) for taskid in live])
        await self._store.tasks.release_retired(hwid, [t.taskid for t in tasks if t.retired])
        if link is not None:
            log.info("executor %s removed: its link closes, %d task(s) ended", hwid, len(live))
            # Sent now; the socket closes once its handler has let go of it (no handshake is
            # waited for: the agent gets the close frame, then the connection ends).
            closing = asyncio.ensure_future(
                link.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"executor removed"))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        # Offline first, while the store is open: the handlers' own goodbyes may come after it closed.
        await asyncio.gather(*self._going_offline, return_exceptions=True)
        links, self._links = self._links, {}
        for hwid in links:
            await self._go_offline(hwid)
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
        await asyncio.gather(*self._closing, return_exceptions=True)


_hardware_schema = HardwareReportSchema()


def _hardware(hello: Hello) -> dict:
    """The hardware an agent reports, checked field by field like a registration's, and its
    price; ValueError says what no machine has."""
    if hello.cost > MAX_COST:
        raise ValueError(f"cost: {hello.cost} per hour is more than {MAX_COST:g}")
    try:
        return _hardware_schema.load(hello.hardware)
    except ValidationError as exc:
        raise ValueError(f"hardware: {exc.messages}") from None


def _clock_shift(agent_sent_at: float | None) -> float:
    """The API's clock minus the agent's, as far as one message tells (it left just now)."""
    return 0.0 if agent_sent_at is None else time.time() - agent_sent_at


def _shifted(agent_moment: float | None, shift: float) -> float | None:
    return None if agent_moment is None else agent_moment + shift
