"""The calls agents make: registering an executor, the speed test, the channel."""

from __future__ import annotations

from aiohttp import web

from megamind.api.bodies import json_response, read_body
from megamind.api.keys import auth_key, config_key, hub_key, rate_limiter_key, store_key
from megamind.api.schemas import register_request_schema, register_response_schema
from megamind.errors import ValidationFailed

SPEEDTEST_MAX_BYTES = 16 * 1024 * 1024
_CHUNK = b"\0" * (256 * 1024)


async def register(request: web.Request) -> web.Response:
    """An owner's api-key enrols a new executor; it gets its own token back, once.
    Within the server's registration rate per key (429) and executor cap per account (403)."""
    caller = await request.app[auth_key].caller(request)
    config = request.app[config_key]
    await request.app[rate_limiter_key].check_registration(caller, config.register_rate_limit)
    body = await read_body(request, register_request_schema)
    hwid, token = await request.app[store_key].executors.register(
        caller.account.id, body["hardware"], body["cost"], config.max_executors_per_account
    )
    return json_response(register_response_schema.dump({"hwid": hwid, "token": token}), status=201)


async def speedtest(request: web.Request) -> web.StreamResponse:
    """Bytes for the agent to time its link to the platform with."""
    await request.app[auth_key].executor(request)
    try:
        size = int(request.query.get("bytes", 4 * 1024 * 1024))
    except ValueError:
        raise ValidationFailed("bytes: not an integer") from None
    if not 0 < size <= SPEEDTEST_MAX_BYTES:
        raise ValidationFailed(f"bytes: must be between 1 and {SPEEDTEST_MAX_BYTES}")
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(request)
    remaining = size
    while remaining > 0:
        chunk = _CHUNK[: min(remaining, len(_CHUNK))]
        await response.write(chunk)
        remaining -= len(chunk)
    await response.write_eof()
    return response


async def connect(request: web.Request) -> web.WebSocketResponse:
    record = await request.app[auth_key].executor(request)
    return await request.app[hub_key].serve(request, record)
