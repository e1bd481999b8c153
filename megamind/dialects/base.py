"""What every dialect shares: who calls, within which rate limit, and errors in the seed's shape.

A dialect is a sub-application under its base path.  Its handlers read the platform's
resources from ``request.config_dict`` (the root app's keys) and the caller's account from
``request[ACCOUNT]``, which `account_middleware` sets from the api-key (the ``api-key``
header, ``Authorization: Bearer <api-key>`` or HTTP Basic with the account's name and the
api-key as password).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from megamind.api.bodies import error_response
from megamind.api.keys import ACCOUNT, auth_key, rate_limiter_key
from megamind.api.ratelimit import KeyRateLimiter
from megamind.errors import MegamindError, RateLimited

# status, Megamind's code, message -> the answer in the seed's error shape.
RenderError = Callable[[int, int, str], web.Response]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def native_error(status: int, code: int, message: str) -> web.Response:
    """Megamind's own ``{"code", "message"}``, for seeds that show no error body."""
    return error_response(code, message, status)


def error_middleware(render: RenderError) -> Callable:
    """Domain errors answered in the seed's shape; a 429 keeps its ``Retry-After``."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except MegamindError as exc:
            response = render(exc.status, int(exc.code), exc.message)
            if exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
            return response

    return middleware


def account_middleware(limiter: web.AppKey[KeyRateLimiter] | None = None,
                       open_paths: Iterable[str] = ()) -> Callable:
    """Every route needs an account's api-key, but ``open_paths`` (routes' full paths, e.g.
    ``/flux/v1/token``, as their resources' canonical form gives them), and counts against a rate limit: the dialect's own limiter
    (an AppKey of the sub-application) or the server's."""
    exempt = frozenset(open_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.http_exception is None and _canonical(request) not in exempt:
            await authenticate(request, request.app[limiter] if limiter is not None else None)
        return await handler(request)

    return middleware


async def authenticate(request: web.Request, limiter: KeyRateLimiter | None = None) -> None:
    """Set ``request[ACCOUNT]`` from the request's api-key, within the rate limit."""
    caller = await request.config_dict[auth_key].caller(request)
    await (limiter or request.config_dict[rate_limiter_key]).check(caller)
    request[ACCOUNT] = caller.account


def _canonical(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else request.path


__all__ = ["RateLimited", "account_middleware", "authenticate", "error_middleware", "native_error"]
