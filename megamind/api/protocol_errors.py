"""JSON answers for requests that fail before any handler runs.

aiohttp answers malformed HTTP (a header over 8 KiB, a broken request line, bad
chunking) from its protocol layer with a plain-text body, outside the middlewares.
Our contract says every error is ``{"code", "message"}``, so the protocol handler is
replaced by one whose error answer is JSON; logging and connection handling stay
aiohttp's own.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from aiohttp import web_protocol, web_server
from aiohttp.web import Response

from megamind.errors import ErrorCode

_MAX_MESSAGE = 200


class JsonErrorRequestHandler(web_protocol.RequestHandler):
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
        response = Response(
            status=status,
            body=json.dumps({"code": int(code), "message": text}).encode(),
            content_type="application/json",
        )
        response.force_close()
        return response


def install() -> None:
    """Make aiohttp's servers use the JSON error handler (idempotent)."""
    web_server.RequestHandler = JsonErrorRequestHandler
