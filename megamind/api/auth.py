"""Who is calling: api-keys for customers and owners, tokens for executors.

The two credentials are distinct in form and in store: a customer key never opens
the agent channel and an executor token never opens a customer call.
"""

from __future__ import annotations

import binascii
import time

from aiohttp import BasicAuth, hdrs, web

from megamind.errors import Unauthorized
from megamind.protocol import TOKEN_HEADER
from megamind.store import Store
from megamind.store.accounts import Caller
from megamind.store.executors import ExecutorRecord

API_KEY_HEADER = "api-key"
_MAX_CACHED_KEYS = 10_000


class Authenticator:
    def __init__(self, store: Store, cache_ttl_s: float) -> None:
        self._store = store
        self._ttl = cache_ttl_s
        # A short-lived cache: a revoked key stops working within the TTL.
        self._cache: dict[str, tuple[float, Caller]] = {}

    async def caller(self, request: web.Request) -> Caller:
        """The caller of an api-key given as the ``api-key`` header, as ``Authorization:
        Bearer <api-key>``, or as HTTP Basic with the account's name and the api-key."""
        key, name = presented_key(request)
        caller = await self.caller_of_key(key)
        if name is not None and name != caller.account.name:
            raise Unauthorized("the api-key is not of the account the Basic credentials name")
        return caller

    async def caller_of_key(self, key: str) -> Caller:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        caller = await self._store.accounts.by_api_key(key)
        if caller is None:
            self._cache.pop(key, None)
            raise Unauthorized("the api-key is unknown or revoked")
        if len(self._cache) >= _MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[key] = (now + self._ttl, caller)
        return caller

    async def executor(self, request: web.Request) -> ExecutorRecord:
        """Read on every request and connection, never cached: a removed executor's token
        stops working at once, also when another process (`megamind admin`) removed it."""
        token = request.headers.get(TOKEN_HEADER)
        if not token:
            raise Unauthorized(f"the {TOKEN_HEADER} header is missing")
        record = await self._store.executors.by_token(token)
        if record is None:
            raise Unauthorized(f"the {TOKEN_HEADER} is unknown or revoked (its executor was removed)")
        return record


def presented_key(request: web.Request) -> tuple[str, str | None]:
    """The api-key a request presents, and the account name when it came as HTTP Basic."""
    key = request.headers.get(API_KEY_HEADER)
    if key:
        return key, None
    header = request.headers.get(hdrs.AUTHORIZATION, "").strip()
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), None
    if scheme.lower() == "basic":
        try:
            basic = BasicAuth.decode(header)
        except (ValueError, binascii.Error):
            raise Unauthorized("the Basic credentials are not base64 of name:api-key") from None
        if basic.password:
            return basic.password, basic.login
    raise Unauthorized("the api-key is missing: send it as the api-key header, as Authorization: Bearer "
                       "<api-key>, or as HTTP Basic with the account's name and the api-key")
