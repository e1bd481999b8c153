"""Who is calling: api-keys for customers and owners, tokens for executors.

The two credentials are distinct in form and in store: a customer key never opens
the agent channel and an executor token never opens a customer call.
"""

from __future__ import annotations

import time

from aiohttp import web

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
        key = request.headers.get(API_KEY_HEADER)
        if not key:
            raise Unauthorized("the api-key header is missing")
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
        token = request.headers.get(TOKEN_HEADER)
        if not token:
            raise Unauthorized(f"the {TOKEN_HEADER} header is missing")
        record = await self._store.executors.by_token(token)
        if record is None:
            raise Unauthorized(f"the {TOKEN_HEADER} is unknown")
        return record
