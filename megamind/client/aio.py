"""The asyncio client, on aiohttp.

    async with AsyncClient("http://127.0.0.1:8080", key) as api:
        free = await api.hw_list()
        taskid = await api.add_task("megamind.network/helloworld:latest", free[0].hwid)
        task = await api.wait_task(taskid)
        print(task.state.name, (await api.task_logs(taskid)).text)
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Collection
from typing import Any, Callable, TypeVar
from urllib.parse import quote

import aiohttp

from megamind.client.config import load_settings
from megamind.client.errors import (
    MegamindClientError,
    RateLimited,
    TransportError,
    error_for,
)
from megamind.client.models import Executor, HardwareItem, Image, Task, TaskLogs
from megamind.states import TaskState

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
# What --wait waits for: the task got going, or it will not.
SETTLED = frozenset({TaskState.RUNNING, TaskState.STOPPED, TaskState.ERROR})
# After a task ends, its last lines may still be on their way from the agent.
FINAL_LOGS_GRACE_S = 2.0


class WaitTimeout(MegamindClientError):
    """The task did not reach the awaited state in time; it goes on regardless."""

    def __init__(self, task: Task, timeout: float) -> None:
        super().__init__(f"task {task.taskid} is still {task.state_name} after {timeout:g} s")
        self.task = task
        self.timeout = timeout


def normalize_api_url(url: str) -> str:
    """The base URL without a trailing slash or ``/api``: ``http://host:8080``."""
    url = url.strip().rstrip("/")
    if url.endswith("/api"):
        url = url[: -len("/api")]
    if "://" not in url:
        url = "http://" + url
    return url


def new_lines(previous: list[str], current: list[str]) -> list[str]:
    """The lines of ``current`` that follow on from ``previous``.

    Both are windows on the end of one stream: the longest end of ``previous`` that
    begins ``current`` is what both have seen.  A stream that repeats identical lines
    can hide some repeats; more lines than a window between two looks are lost.
    """
    for overlap in range(min(len(previous), len(current)), 0, -1):
        if previous[len(previous) - overlap:] == current[:overlap]:
            return current[overlap:]
    return list(current)


class AsyncClient:
    """The customer API's calls, plus the extensions, as coroutines.

    ``api_url`` and ``api_key`` default to ``MEGAMIND_API_URL`` / ``MEGAMIND_API_KEY``,
    then to what ``megamind login`` stored.
    """

    def __init__(
        self,
        api_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        if api_url is None or api_key is None:
            settings = load_settings()
            api_url = api_url if api_url is not None else settings.api_url
            api_key = api_key if api_key is not None else settings.api_key
        self.api_url = normalize_api_url(api_url)
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    def __repr__(self) -> str:
        return f"AsyncClient({self.api_url!r})"

    # --- the six calls of the contract --------------------------------------------------

    async def hw_list(self) -> list[HardwareItem]:
        """gethwlist: the executors that are online and free."""
        data = await self._call("GET", "/api/v1/gethwlist")
        return self._decode(data, lambda d: [HardwareItem.from_json(i) for i in d])

    async def add_task(self, image: str, hwid: str, params: str = "") -> str:
        """addtask: start ``image`` on executor ``hwid``; returns the new task's id."""
        body = {"image": image, "params": params, "hwid": hwid}
        return self._decode(await self._call("POST", "/api/v1/addtask", body), lambda d: str(d["taskid"]))

    async def delete_task(self, taskid: str) -> None:
        """deltask: stop the task and destroy its container."""
        await self._call("DELETE", f"/api/v1/deltask/{_segment(taskid)}")

    async def task_list(self) -> list[Task]:
        """gettasklist: the account's tasks, finished ones included."""
        data = await self._call("GET", "/api/v1/gettasklist")
        return self._decode(data, lambda d: [Task.from_json(i) for i in d])

    async def restart_task(self, taskid: str) -> None:
        """restarttask: restart the task's container (a finished task starts again)."""
        await self._call("POST", f"/api/v1/restarttask/{_segment(taskid)}")

    async def task_logs(self, taskid: str) -> TaskLogs:
        """gettasklogs: the last 20 lines of the task's stdout, decoded."""
        data = await self._call("GET", f"/api/v1/gettasklogs/{_segment(taskid)}")
        return self._decode(data, TaskLogs.from_json)

    # --- extensions ---------------------------------------------------------------------

    async def task(self, taskid: str) -> Task:
        """One task, with its executor, its pending command and its timestamps."""
        return self._decode(await self._call("GET", f"/api/v1/task/{_segment(taskid)}"), Task.from_json)

    async def executors(self) -> list[Executor]:
        """The caller's own executors (as an owner), online or not, free or busy."""
        data = await self._call("GET", "/api/v1/executors")
        return self._decode(data, lambda d: [Executor.from_json(i) for i in d])

    async def images(self) -> list[Image]:
        """Every name:tag of the platform's registry, as ``megamind.network/...`` references."""
        data = await self._call("GET", "/api/v1/images")
        return self._decode(data, lambda d: [Image.from_json(i) for i in d])

    async def openapi(self) -> dict[str, Any]:
        """The API's OpenAPI document."""
        return await self._call("GET", "/api/openapi.json")

    # --- waiting and following ----------------------------------------------------------

    async def watch_task(self, taskid: str, interval: float = 0.5) -> AsyncIterator[Task]:
        """Yield the task now, and again each time its state, error or executor changes."""
        last: tuple | None = None
        while True:
            task = await self._patiently(self.task, taskid)
            seen = (task.state, task.error_msg, task.executor_online, task.pending_command, task.phase)
            if seen != last:
                last = seen
                yield task
            await asyncio.sleep(interval)

    async def wait_task(
        self,
        taskid: str,
        until: Collection[TaskState] = SETTLED,
        timeout: float | None = None,
        interval: float = 0.5,
    ) -> Task:
        """The task once its state is one of ``until`` (running, stopped or error by default).

        Raises WaitTimeout after ``timeout`` seconds; the task itself goes on.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        task = await self._patiently(self.task, taskid)
        while task.state not in until:
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(task, timeout)
            await asyncio.sleep(interval)
            task = await self._patiently(self.task, taskid)
        return task

    async def follow_logs(
        self, taskid: str, interval: float = 0.5, grace: float = FINAL_LOGS_GRACE_S
    ) -> AsyncIterator[str]:
        """Yield the task's last lines, then each new line, until the task has ended.

        After the task is seen stopped or in error, lines are still read for ``grace``
        seconds: the last ones may arrive just after the state.
        """
        seen: list[str] = []
        ended_at: float | None = None
        while True:
            lines = (await self._patiently(self.task_logs, taskid)).lines
            for line in new_lines(seen, lines):
                yield line
            seen = lines
            if ended_at is None:
                if (await self._patiently(self.task, taskid)).finished:
                    ended_at = time.monotonic()
            elif time.monotonic() - ended_at >= grace:
                return
            await asyncio.sleep(interval)

    @staticmethod
    async def _patiently(call: Callable[[str], Awaitable[T]], taskid: str) -> T:
        """One look of a polling loop: past the rate limit, wait as told and look again."""
        while True:
            try:
                return await call(taskid)
            except RateLimited as exc:
                await asyncio.sleep(exc.retry_after or 1.0)

    # --- HTTP ---------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True
        return self._session

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        if self._api_key:
            headers["api-key"] = self._api_key
        url = self.api_url + path
        try:
            async with self._http().request(method, url, json=body, headers=headers) as resp:
                raw = await resp.read()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except asyncio.TimeoutError:
            raise TransportError(
                f"the Megamind API at {self.api_url} did not answer {method} {path} in time"
            ) from None
        except aiohttp.ClientError as exc:
            raise TransportError(f"cannot reach the Megamind API at {self.api_url}: {_reason(exc)}") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise TransportError(
                f"{method} {url} answered HTTP {status} that is not JSON: {raw[:200]!r}"
                " (is this the Megamind API?)"
            ) from None
        if 200 <= status < 300:
            return data
        if isinstance(data, dict) and isinstance(data.get("code"), int) and isinstance(data.get("message"), str):
            raise error_for(data["code"], data["message"], status, _seconds(retry_after))
        raise TransportError(f"{method} {url} answered HTTP {status} with an unexpected body: {raw[:200]!r}")

    @staticmethod
    def _decode(data: Any, build: Callable[[Any], T]) -> T:
        try:
            return build(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise TransportError(
                f"the API answered an unexpected shape ({type(exc).__name__}: {exc})"
            ) from None


def _segment(value: str) -> str:
    """A task id as one path segment, whatever characters it holds."""
    return quote(str(value), safe="")


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError) and exc.os_error.errno:
        return os.strerror(exc.os_error.errno)
    return str(exc) or type(exc).__name__
