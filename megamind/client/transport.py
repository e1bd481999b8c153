"""HTTP for the clients: one session, the api-key on every request, and every answer
turned into a value or a typed error.

JSON calls are bounded by the client's timeout as a whole.  Bodies that take as long as
they are large (results, uploads, a followed log) are bounded by silence instead: no
byte for that long is a TransportError.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import aiohttp

from megamind.client.errors import TransportError, error_for
from megamind.wire import ProtocolError

T = TypeVar("T")

ERROR_BODY_LIMIT = 64 * 1024  # an error answer is small JSON; more than this is not the API


def normalize_api_url(url: str) -> str:
    """The base URL without a trailing slash or ``/api``: ``http://host:8080``."""
    url = url.strip().rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    if "://" not in url:
        url = "http://" + url
    return url


class Transport:
    def __init__(self, api_url: str, api_key: str | None, timeout: float,
                 session: aiohttp.ClientSession | None = None) -> None:
        self.api_url = normalize_api_url(api_url)
        self.timeout = timeout
        self._api_key = api_key
        self._session = session
        self._owns_session = session is None

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
            self._owns_session = True
        return self._session

    def _headers(self, accept: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Accept": accept, **(extra or {})}
        if self._api_key:
            headers["api-key"] = self._api_key
        return headers

    async def call(self, method: str, path: str, body: Any = None, *,
                   params: Mapping[str, str] | None = None,
                   parse_float: Callable[[str], Any] | None = None) -> Any:
        """One JSON call: the decoded answer, or the API's error raised as its class.

        ``parse_float`` builds each JSON number with a fraction from its text (Decimal for
        amounts of money: exactly what the API wrote, not the nearest binary float).
        """
        url = self.api_url + path
        with self._translated(method, path):
            async with self._http().request(method, url, json=body, params=params,
                                            headers=self._headers("application/json")) as resp:
                raw = await resp.read()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        try:
            data = json.loads(raw, parse_float=parse_float)
        except ValueError:
            raise TransportError(
                f"{method} {url} answered HTTP {status} that is not JSON: {raw[:200]!r}"
                " (is this the Megamind API?)"
            ) from None
        if 200 <= status < 300:
            return data
        raise _error(method, url, status, data, raw, retry_after)

    @contextlib.asynccontextmanager
    async def open(self, method: str, path: str, *, accept: str, params: Mapping[str, str] | None = None,
                   data: Any = None, headers: Mapping[str, str] | None = None,
                   idle_timeout: float | None = None) -> AsyncIterator[aiohttp.ClientResponse]:
        """A successful answer whose body the caller reads as it comes.

        ``idle_timeout`` (the client's timeout by default) bounds the silence between two
        reads; an error answer is raised as its class before anything is yielded.  Errors
        of the connection while the caller reads are raised as they are (aiohttp's), so
        that a caller who can resume may tell them apart.
        """
        url = self.api_url + path
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout,
                                        sock_read=self.timeout if idle_timeout is None else idle_timeout)
        with self._translated(method, path):
            resp = await self._http().request(method, url, params=params, data=data, timeout=timeout,
                                              headers=self._headers(accept, headers))
        try:
            if not 200 <= resp.status < 300:
                with self._translated(method, path):
                    raw = await resp.content.read(ERROR_BODY_LIMIT)
                try:
                    answer = json.loads(raw)
                except ValueError:
                    answer = None
                raise _error(method, url, resp.status, answer, raw, resp.headers.get("Retry-After"))
            yield resp
        finally:
            resp.release()

    @contextlib.contextmanager
    def _translated(self, method: str, path: str):
        """aiohttp's failures to reach the API, as TransportError."""
        try:
            yield
        except asyncio.TimeoutError:
            raise TransportError(
                f"the Megamind API at {self.api_url} did not answer {method} {path} in time"
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"cannot reach the Megamind API at {self.api_url}: {reason(exc)}") from None


async def read_answer(resp: aiohttp.ClientResponse) -> bytes:
    """The whole body of an answer opened with ``Transport.open``."""
    try:
        return await resp.read()
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise TransportError(f"the answer to {resp.method} {resp.url.path} stopped coming: {exc}") from None


def decode_answer(data: Any, build: Callable[[Any], T]) -> T:
    """``build(data)``; an answer of another shape than the API's is a TransportError."""
    try:
        return build(data)
    except (KeyError, TypeError, ValueError, AttributeError, ProtocolError) as exc:
        raise TransportError(
            f"the API answered an unexpected shape ({type(exc).__name__}: {exc})"
        ) from None


def _error(method: str, url: str, status: int, data: Any, raw: bytes, retry_after: str | None) -> Exception:
    if isinstance(data, dict) and isinstance(data.get("code"), int) and isinstance(data.get("message"), str):
        return error_for(data["code"], data["message"], status, _seconds(retry_after))
    return TransportError(f"{method} {url} answered HTTP {status} with an unexpected body: {raw[:200]!r}")


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def reason(exc: BaseException) -> str:
    """A failure of the connection in a few words."""
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.errno:
        return os.strerror(exc.os_error.errno)
    return str(exc) or type(exc).__name__
