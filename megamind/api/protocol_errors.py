"""JSON answers for requests that fail before any handler runs.

aiohttp answers malformed HTTP (a header over 8 KiB, a broken request line, bad
chunking) from its protocol layer with a plain-text body, outside the middlewares.
Our contract says every error is ``{"code", "message"}``, so the protocol handler is
replaced by one whose error answer is JSON; logging and connection handling stay
aiohttp's own.

The same handler bounds how long a request's head may take to arrive.  aiohttp only
closes a connection whose head never completes when its keep-alive timeout runs out
(75 s under ``run_app``), so a client trickling header bytes (slowloris) held a
connection that long; here it gets ``HEADER_READ_TIMEOUT_S`` from its first byte,
then a 408 in JSON and a closed connection.  Idle keep-alive connections, which have
sent nothing, are still aiohttp's to time out.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus

from aiohttp import web_protocol, web_server

from megamind.api.bodies import error_response
from megamind.errors import ErrorCode

_MAX_MESSAGE = 200
HEADER_READ_TIMEOUT_S = 10.0


def _raw_json_answer(status: int, code: ErrorCode, message: str) -> bytes:
    """The error as bytes for the socket itself: no handler and no response writer yet."""
    body = error_response(code, message, status).body
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


class JsonErrorRequestHandler(web_protocol.RequestHandler):
    _head_deadline: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        # Bytes that arrive while no request is queued or being handled begin a head.
        between_requests = not self._messages and not getattr(self, "_request_in_progress", False)
        if between_requests and self._head_deadline is None and data:
            self._head_deadline = self._loop.call_later(HEADER_READ_TIMEOUT_S, self._head_too_slow)
        super().data_received(data)
        if self._messages and self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_too_slow(self) -> None:
        self._head_deadline = None
        transport = self.transport
        if self._messages or getattr(self, "_request_in_progress", False) or transport is None:
            return
        text = f"the request head did not arrive within {HEADER_READ_TIMEOUT_S:g} s"
        transport.write(_raw_json_answer(408, ErrorCode.REQUEST_TIMEOUT, text))
        self.force_close()
        transport.close()

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None
        super().connection_lost(exc)

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None):
        # Logs, and refuses when part of a response has already gone out.
        super().handle_error(request, status, exc, message)
        if status >= 500:
            code, text = ErrorCode.INTERNAL, "unexpected server error; the request may be retried"
        else:
            code = ErrorCode.BAD_REQUEST
            detail = str(getattr(exc, "message", None) or message or exc or HTTPStatus(status).phrase)
            text = f"malformed HTTP request: {detail}"[:_MAX_MESSAGE]
        response = error_response(code, text, status)
        response.force_close()
        return response


def install() -> None:
    """Make aiohttp's servers use the JSON error handler (idempotent)."""
    web_server.RequestHandler = JsonErrorRequestHandler
