"""Reading request bodies and writing JSON answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from marshmallow import Schema, ValidationError

from megamind.api.keys import config_key
from megamind.errors import (
    BadRequest,
    ErrorCode,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    ValidationFailed,
)

BODY_READ_TIMEOUT_S = 10.0
# No call's body nests deeper than a few levels (addtask: the body, ports, a port object);
# anything deeper is refused before the schema sees it.
MAX_JSON_DEPTH = 32

# Clients of the original document may send JSON as curl's default form type or with
# no type at all; anything that is plainly not JSON is refused.
_JSON_COMPATIBLE_TYPES = {
    "application/json",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "text/plain",
}


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )


def error_response(code: ErrorCode | int, message: str, status: int) -> web.Response:
    return json_response({"code": int(code), "message": message}, status=status)


async def read_body(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The body loaded through ``schema``; every way it can be wrong is a clear error."""
    if request.body_exists and request.content_type not in _JSON_COMPATIBLE_TYPES:
        raise UnsupportedMediaType(
            f"the body must be JSON (Content-Type: application/json), not {request.content_type}"
        )
    limit = request.app[config_key].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        # Refused on the announcement alone: nothing of it is read or buffered.
        raise PayloadTooLarge(f"the body is larger than {limit} bytes")
    try:
        # A client trickling its body holds a connection, never the server's memory:
        # past client_max_size the read fails with 413, past the timeout with 408.
        raw = await asyncio.wait_for(request.read(), BODY_READ_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise RequestTimeout(f"the body did not arrive within {BODY_READ_TIMEOUT_S:g} s") from None
    return parse_body(raw, schema)


def parse_body(raw: bytes, schema: Schema) -> dict[str, Any]:
    """A body's bytes loaded through ``schema``: a 400 or a 422 for anything wrong, whatever it holds."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not valid UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text) if text.strip() else None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise BadRequest(f"the body is nested deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError as exc:  # an integer of more digits than Python converts (4300)
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    _check_shape(data, lone_surrogates_possible="\\u" in text)
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object")
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise ValidationFailed(describe_validation_error(exc.messages)) from None


def read_query(request: web.Request, schema: Schema) -> dict[str, Any]:
    """The query string loaded through ``schema``; anything wrong is a 422 naming the field."""
    try:
        return schema.load(dict(request.query))
    except ValidationError as exc:
        raise ValidationFailed(describe_validation_error(exc.messages)) from None


def describe_validation_error(messages: Any, prefix: str = "") -> str:
    """Flatten marshmallow's nested messages into one sentence naming each field."""
    parts: list[str] = []
    if isinstance(messages, dict):
        for field, inner in messages.items():
            name = f"{prefix}.{field}" if prefix else str(field)
            if field == "_schema":
                name = prefix or "body"
            parts.append(describe_validation_error(inner, name))
    elif isinstance(messages, list):
        texts = [m if isinstance(m, str) else describe_validation_error(m, prefix) for m in messages]
        parts.append(f"{prefix}: {' '.join(texts)}" if prefix else " ".join(texts))
    else:
        parts.append(f"{prefix}: {messages}")
    return "; ".join(parts)


def _check_shape(data: Any, *, lone_surrogates_possible: bool) -> None:
    """Refuse a body nested deeper than any call takes, or holding a lone surrogate.

    An explicit stack, not recursion: json.loads takes nesting up to Python's recursion
    limit, and a walk that recursed on top of that would fail deep in the stack instead.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if lone_surrogates_possible and not _is_text(value):
                raise BadRequest("the body holds a \\u escape of a lone surrogate, which is not a character")
        elif isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest(f"the body is nested deeper than {MAX_JSON_DEPTH} levels")
            if isinstance(value, dict):
                stack.extend((key, depth) for key in value)
                value = value.values()
            stack.extend((item, depth + 1) for item in value)


def _is_text(value: str) -> bool:
    """JSON may escape half a UTF-16 pair (\\ud800); such a string is no Unicode text."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
