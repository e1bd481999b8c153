"""The agent's one WebSocket to the API: connect, say hello, stay connected, reconnect.

A session is hello -> welcome -> whatever the agent does on ``on_welcome`` (it tells
its inventory) -> commands until the link breaks.  Every message goes out through
``send``, which answers False rather than raising when the link is down: whatever was
not sent is found again by the next session (commands are resent by the API, output
is read again from the API's cursor, states are re-read from the engine).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aiohttp

from megamind.executor.identity import Identity
from megamind.executor.runtime import ENGINE_ERRORS
from megamind.protocol import (
    AGENT_PATH,
    API_MESSAGES,
    MAX_MESSAGE_BYTES,
    TOKEN_HEADER,
    Command,
    Message,
    ProtocolError,
    Refused,
    Welcome,
    decode,
)

log = logging.getLogger(__name__)

RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0)
CONNECT_TIMEOUT_S = 10.0
WELCOME_TIMEOUT_S = 30.0


class Unregistered(Exception):
    """The API does not know this agent's token."""


class RefusedByApi(Exception):
    """The API will not serve this agent (another protocol version); retrying will not help."""


class ApiLink:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        identity: Identity,
        heartbeat_s: float,
        hello: Callable[[], Awaitable[Message]],
        on_welcome: Callable[[Welcome], Awaitable[None]],
        on_command: Callable[[Command], None],
        on_unreadable: Callable[[str, ProtocolError], Awaitable[None]],
    ) -> None:
        self._http = http
        self._identity = identity
        self._heartbeat_s = heartbeat_s
        self._hello = hello
        self._on_welcome = on_welcome
        self._on_command = on_command
        self._on_unreadable = on_unreadable
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self.session = 0  # counts sessions: what was said in an older one may not have arrived
        self.connected = asyncio.Event()

    @property
    def up(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def send(self, message: Message) -> bool:
        ws = self._ws
        if ws is None or ws.closed:
            return False
        try:
            await ws.send_str(message.encode())
            return True
        except (ConnectionError, RuntimeError, aiohttp.ClientError):
            return False

    async def stay_connected(self) -> None:
        attempt = 0
        url = self._identity.api_url.rstrip("/") + AGENT_PATH
        while True:
            try:
                # A link that accepts bytes but never answers must not hold the agent forever.
                ws = await asyncio.wait_for(
                    self._http.ws_connect(
                        url,
                        headers={TOKEN_HEADER: self._identity.token},
                        heartbeat=self._heartbeat_s,
                        max_msg_size=MAX_MESSAGE_BYTES,
                    ),
                    timeout=CONNECT_TIMEOUT_S,
                )
                async with ws:
                    attempt = 0
                    await self._session(ws)
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 401:
                    raise Unregistered("the API does not know this executor's token") from None
                log.warning("API refused the connection: %s", exc)
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
                log.info("API unreachable (%s); retrying", exc.__class__.__name__)
            except ProtocolError as exc:
                log.warning("API said something this agent does not understand: %s", exc)
            except ENGINE_ERRORS as exc:
                # No inventory without the engine: say nothing rather than something false.
                log.warning("engine not answering (%s); retrying", exc.__class__.__name__)
            finally:
                self._ws = None
                self.connected.clear()
            await asyncio.sleep(RECONNECT_DELAYS_S[min(attempt, len(RECONNECT_DELAYS_S) - 1)])
            attempt += 1

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        await ws.send_str((await self._hello()).encode())
        first = await ws.receive(timeout=WELCOME_TIMEOUT_S)
        if first.type != aiohttp.WSMsgType.TEXT:
            return  # closed before the welcome: reconnect
        welcome = decode(first.data, API_MESSAGES)
        if isinstance(welcome, Refused):
            raise RefusedByApi(welcome.message)
        if not isinstance(welcome, Welcome):
            raise ProtocolError(f"expected welcome, got {welcome.type}")
        self.session += 1
        self._ws = ws
        await self._on_welcome(welcome)
        self.connected.set()
        log.info("connected to %s as %s", self._identity.api_url, welcome.hwid)
        async for message in ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                command = decode(message.data, API_MESSAGES)
                if not isinstance(command, Command):
                    raise ProtocolError(f"expected a command, got {command.type}")
            except ProtocolError as exc:
                # Sent again after every reconnect: breaking the link would not help.
                await self._on_unreadable(message.data, exc)
                continue
            self._on_command(command)
