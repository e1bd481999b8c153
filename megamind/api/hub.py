"""The API's side of the agent channel: one WebSocket per connected executor.

The hub knows which executors are online, hands them commands, and turns what they
report (inventory, states, phases, log batches, acknowledgements) into store writes.
An executor is online once it has told its inventory, so nobody sees it before the
API knows what it holds.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web
from marshmallow import ValidationError

from megamind.api.schemas import HardwareReportSchema
from megamind.progress import progress_of
from megamind.protocol import (
    AGENT_MESSAGES,
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


@dataclass(eq=False)
class AgentLink:
    record: ExecutorRecord
    ws: web.WebSocketResponse
    sent: set[int] = field(default_factory=set)
    # taskid -> how far its setup has got, as this agent last said; gone with the link.
    phases: dict[str, Phase] = field(default_factory=dict)

    async def send(self, command: Command) -> None:
        if command.id in self.sent:
            return
        self.sent.add(command.id)
        await self.ws.send_str(command.message().encode())


class ExecutorHub:
    def __init__(self, store: Store, heartbeat_s: float, results_limit: int) -> None:
        self._store = store
        self._heartbeat_s = heartbeat_s
        self._results_limit = results_limit
        self._going_offline: set[asyncio.Future] = set()
        self._links: dict[str, AgentLink] = {}
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

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
        link = AgentLink(record, ws)
        close_code, reason = None, b""
        try:
            if await self._greet(link, request.remote or ""):
                async for message in ws:
                    if message.type == WSMsgType.TEXT:
                        await self._handle(link, decode(message.data, AGENT_MESSAGES))
            else:
                close_code, reason = WSCloseCode.POLICY_VIOLATION, b"protocol version"
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

    async def _greet(self, link: AgentLink, ip: str) -> bool:
        """hello -> welcome, with where the API's copy of each task's output ends.
        False when the agent speaks another protocol version (it was told why)."""
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
            return False
        hardware = _hardware(hello)
        hwid = link.record.hwid
        await self._store.executors.update_on_connect(hwid, hardware, hello.cost, ip, hello.publish_address)
        link.record.hardware, link.record.cost, link.record.ip = hardware, hello.cost, ip
        link.record.publish_address = hello.publish_address
        # Seen again: what it ran while silent is billed only if the silence was short.
        await self._store.ledger.seen_again(hwid)
        held = [t.taskid for t in await self._store.tasks.for_executor(hwid) if not t.deleted]
        cursors = await self._store.logs.cursors(held)
        await link.ws.send_str(Welcome(hwid, cursors, self._results_limit).encode())
        return True

    async def _come_online(self, link: AgentLink) -> None:
        hwid = link.record.hwid
        previous = self._links.get(hwid)
        self._links[hwid] = link
        if previous is not None and previous is not link:
            # The agent came back before its old socket was noticed dead.
            await previous.ws.close(code=WSCloseCode.GOING_AWAY, message=b"replaced")
        await self._store.executors.set_online(hwid, True)
        for command in await self._store.tasks.pending_commands(hwid):
            await link.send(command)
        log.info("executor %s online from %s", hwid, link.record.ip)
        await self.fill(hwid)

    async def _reconcile(self, hwid: str, inventory: tuple[ContainerReport, ...], clock_shift: float) -> None:
        tasks = await self._store.tasks.for_executor(hwid)
        pending = {c.taskid for c in await self._store.tasks.pending_commands(hwid)}
        plan = reconcile(tasks, list(inventory), pending, clock_shift)
        await self._apply_states(hwid, plan.states)
        for taskid in plan.remove:
            await self.dispatch(await self._store.tasks.enqueue(hwid, taskid, Op.REMOVE, {}))
        if await self._store.tasks.release_retired(hwid, plan.released) and self.is_online(hwid):
            await self.fill(hwid)

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
            await self._reconcile(hwid, message.containers, _clock_shift(message.sent_at))
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

    async def close(self) -> None:
        # Offline first, while the store is open: the handlers' own goodbyes may come after it closed.
        await asyncio.gather(*self._going_offline, return_exceptions=True)
        links, self._links = self._links, {}
        for hwid in links:
            await self._go_offline(hwid)
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


_hardware_schema = HardwareReportSchema()


def _hardware(hello: Hello) -> dict:
    """The hardware an agent reports, checked field by field like a registration's."""
    try:
        return _hardware_schema.load(hello.hardware)
    except ValidationError as exc:
        raise ProtocolError(f"hello.hardware: {exc.messages}") from None


def _clock_shift(agent_sent_at: float | None) -> float:
    """The API's clock minus the agent's, as far as one message tells (it left just now)."""
    return 0.0 if agent_sent_at is None else time.time() - agent_sent_at


def _shifted(agent_moment: float | None, shift: float) -> float | None:
    return None if agent_moment is None else agent_moment + shift
