"""Per api-key rate limits, counted with the `limits` library.

A limit is a `limits` string such as ``"60/minute;1000/hour"``: every part must hold.
The server has a default; a key may carry its own (``megamind admin set-rate-limit``).
Registering executors is counted apart, against the server's own limit for it
(``megamind server --register-rate-limit``), whatever the key's limit for other calls.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from megamind.config import DEFAULT_RATE_LIMIT, DEFAULT_REGISTER_RATE_LIMIT
from megamind.errors import RateLimited
from megamind.store.accounts import Caller

NO_LIMIT = "none"
__all__ = ["DEFAULT_RATE_LIMIT", "DEFAULT_REGISTER_RATE_LIMIT", "KeyRateLimiter", "parse_rate_limit"]


def parse_rate_limit(text: str) -> list[RateLimitItem]:
    """Parse and check a limit; ``none`` means unlimited. Raises ValueError when malformed."""
    if text.strip().lower() == NO_LIMIT:
        return []
    return parse_many(text)


class KeyRateLimiter:
    def __init__(self, default: str) -> None:
        self._default = parse_rate_limit(default)
        self._register_default = parse_rate_limit(DEFAULT_REGISTER_RATE_LIMIT)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._parsed: dict[str, list[RateLimitItem]] = {}

    def _limits_for(self, caller: Caller) -> list[RateLimitItem]:
        if caller.rate_limit is None:
            return self._default
        return self._parse(caller.rate_limit, self._default)  # a bad stored value must not lock the key out

    def _parse(self, text: str, fallback: list[RateLimitItem]) -> list[RateLimitItem]:
        parsed = self._parsed.get(text)
        if parsed is None:
            try:
                parsed = parse_rate_limit(text)
            except ValueError:
                parsed = fallback
            self._parsed[text] = parsed
        return parsed

    async def check(self, caller: Caller) -> None:
        await self._hit(self._limits_for(caller), f"key:{caller.key_id}", "this api-key")

    async def check_registration(self, caller: Caller, limit: str) -> None:
        """One more executor registered with this key, within ``limit`` (the server's option)."""
        limits = self._parse(limit, self._register_default)
        await self._hit(limits, f"register:{caller.key_id}", "registrations of executors with this api-key")

    async def _hit(self, limits: list[RateLimitItem], identity: str, what: str) -> None:
        for item in limits:
            if not await self._limiter.hit(item, identity):
                stats = await self._limiter.get_window_stats(item, identity)
                retry_after = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(
                    f"rate limit {item} exceeded for {what}; retry in {retry_after} s",
                    retry_after=retry_after,
                )
