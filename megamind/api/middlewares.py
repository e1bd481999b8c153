"""Where every failure becomes a ``{"code", "message"}`` answer."""

from __future__ import annotations

import logging

from aiohttp import web

from megamind.api.bodies import error_response
from megamind.api.keys import ACCOUNT, auth_key, config_key, rate_limiter_key
from megamind.errors import ErrorCode, MegamindError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: ErrorCode.BAD_REQUEST,
    401: ErrorCode.UNAUTHORIZED,
    403: ErrorCode.FORBIDDEN,
    404: ErrorCode.ROUTE_NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
    429: ErrorCode.RATE_LIMITED,
    503: ErrorCode.UNAVAILABLE,
}

CUSTOMER_PREFIX = "/api/v1/"


def _http_error_message(exc: web.HTTPException, request: web.Request) -> str:
    if exc.status == 404:
        return f"no such call: {request.method} {request.path}"
    if exc.status == 405:
        allowed = ", ".join(sorted(getattr(exc, "allowed_methods", ()) or ()))
        return f"{request.path} does not accept {request.method}" + (f"; use {allowed}" if allowed else "")
    if exc.status == 413:
        return f"the body is larger than {request.app[config_key].max_body_bytes} bytes"
    return exc.reason


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except MegamindError as exc:
        response = error_response(exc.code, exc.message, exc.status)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, ErrorCode.BAD_REQUEST if exc.status < 500 else ErrorCode.INTERNAL)
        response = error_response(code, _http_error_message(exc, request), exc.status)
        if exc.status == 405 and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return error_response(ErrorCode.INTERNAL, "unexpected server error; the request may be retried", 500)


@web.middleware
async def customer_auth_middleware(request: web.Request, handler) -> web.StreamResponse:
    """Customer calls need an api-key and stay within its rate limit.

    Unknown routes still answer 404 first.
    """
    if request.path.startswith(CUSTOMER_PREFIX) and request.match_info.http_exception is None:
        caller = await request.app[auth_key].caller(request)
        await request.app[rate_limiter_key].check(caller)
        request[ACCOUNT] = caller.account
    return await handler(request)
