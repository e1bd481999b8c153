"""The API's side of the agent channel: one WebSocket per connected executor.

The hub knows which executors are online, hands them commands, and turns what they
report (hello and inventory, states, log lines, acknowledgements) into store writes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from marshmallow import ValidationError

from megamind.api.schemas import hello_schema
from megamind.protocol import MAX_LINE_CHARS, PHASES, TAIL_LINES, ContainerReport
from megamind.reconcile import reconcile
from megamind.states import TaskState
from megamind.store import Store
from megamind.store.executors import ExecutorRecord
from megamind.store.tasks import Command

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0


MAX_PHASES_PER_LINK = 1000


@dataclass(eq=False)
class AgentLink:
    record: ExecutorRecord
    ws: web.WebSocketResponse
    sent: set[int] = field(default_factory=set)
    # taskid -> how far its setup has got, as this agent last said; gone with the link.
    phases: dict[str, str] = field(default_factory=dict)

    async def send(self, command: Command) -> None:
        if command.id in self.sent:
            return
        self.sent.add(command.id)
        await self.ws.send_json(command.message())


def _clean_text(text: str) -> str:
    """Text an agent sent, made storable: lone surrogates cannot be encoded as UTF-8."""
    return text.encode("utf-8", "replace").decode("utf-8")


class ProtocolError(Exception):
    """The agent said something the protocol does not allow; the link is closed."""


class ExecutorHub:
    def __init__(self, store: Store, heartbeat_s: float) -> None:
        self._store = store
        self._heartbeat_s = heartbeat_s
        self._links: dict[str, AgentLink] = {}
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    # --- what the customer API asks --------------------------------------------------

    def is_online(self, hwid: str) -> bool:
        return hwid in self._links

    def phase(self, hwid: str, taskid: str) -> str | None:
        """How far the setup of a task has got, while its executor is connected."""
        link = self._links.get(hwid)
        return link.phases.get(taskid) if link else None

    def online(self) -> list[ExecutorRecord]:
        return [link.record for link in self._links.values()]

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
        ws = web.WebSocketResponse(heartbeat=self._heartbeat_s, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        self._sockets.add(ws)
        link = AgentLink(record, ws)
        close_code, reason = None, b""
        try:
            await self._greet(link, request.remote or "")
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                await self._handle(link, json.loads(message.data))
        except (ProtocolError, ValidationError, ValueError, KeyError, TypeError) as exc:
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
                log.info("executor %s offline", record.hwid)
        if close_code is not None:
            await ws.close(code=close_code, message=reason)
        return ws

    async def _greet(self, link: AgentLink, ip: str) -> None:
        message = await link.ws.receive_json(timeout=HELLO_TIMEOUT_S)
        hello = hello_schema.load(message)
        hwid = link.record.hwid
        await self._store.executors.update_on_connect(hwid, hello["hardware"], hello["cost"], ip)
        link.record.hardware, link.record.cost, link.record.ip = hello["hardware"], hello["cost"], ip
        await self._reconcile(hwid, [ContainerReport.from_message(i) for i in hello["inventory"]])
        previous = self._links.get(hwid)
        self._links[hwid] = link
        if previous is not None:
            # The agent came back before its old socket was noticed dead.
            await previous.ws.close(code=WSCloseCode.GOING_AWAY, message=b"replaced")
        await link.ws.send_json({"type": "welcome", "hwid": hwid})
        for command in await self._store.tasks.pending_commands(hwid):
            await link.send(command)
        log.info("executor %s online from %s", hwid, ip)

    async def _reconcile(self, hwid: str, inventory: list[ContainerReport]) -> None:
        tasks = await self._store.tasks.for_executor(hwid)
        pending = {c.taskid for c in await self._store.tasks.pending_commands(hwid)}
        plan = reconcile(tasks, inventory, pending)
        await self._apply_states(hwid, plan.states)
        for taskid in plan.remove:
            command = await self._store.tasks.enqueue(hwid, taskid, "remove", {})
            await self.dispatch(command)

    async def _apply_states(self, hwid: str, states: list[tuple[str, TaskState, str]]) -> None:
        changes = await self._store.tasks.set_states(hwid, states)
        for command in changes.stops:
            await self.dispatch(command)

    async def _handle(self, link: AgentLink, message: dict[str, Any]) -> None:
        hwid = link.record.hwid
        if not isinstance(message, dict):
            raise ProtocolError("a message must be a JSON object")
        kind = message.get("type")
        if kind == "state":
            state = TaskState(int(message["state"]))
            if state == TaskState.UNKNOWN:
                raise ProtocolError("agents report known states only")
            error_msg = _clean_text(str(message.get("error_msg", ""))[:4096])
            taskid = str(message["taskid"])
            if state != TaskState.SETUP:
                link.phases.pop(taskid, None)
            await self._apply_states(hwid, [(taskid, state, error_msg)])
        elif kind == "phase":
            phase, taskid = message["phase"], str(message["taskid"])
            if phase not in PHASES:
                raise ProtocolError(f"unknown phase {phase!r}")
            # Read only for tasks of this executor (the detail call asks by hwid),
            # so an agent can only describe its own tasks; the map is bounded.
            if taskid in link.phases or len(link.phases) < MAX_PHASES_PER_LINK:
                link.phases[taskid] = phase
        elif kind == "logs":
            lines = message["lines"]
            if not isinstance(lines, list):
                raise ProtocolError("logs.lines must be a list")
            lines = [_clean_text(str(line)[:MAX_LINE_CHARS]) for line in lines[-TAIL_LINES:]]
            taskid = str(message["taskid"])
            if await self._store.tasks.is_live_on(hwid, taskid):
                await self._store.logs.append(taskid, lines, bool(message.get("reset")))
        elif kind == "ack":
            command_id = int(message["id"])
            link.sent.discard(command_id)
            await self._store.tasks.ack_command(hwid, command_id)
        elif kind == "inventory":
            await self._reconcile(hwid, [ContainerReport.from_message(i) for i in message["inventory"]])
        else:
            raise ProtocolError(f"unknown message type {kind!r}")

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")
