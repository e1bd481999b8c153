"""The blocking client, for scripts and notebooks.

    with Client("http://127.0.0.1:8080", key) as api:
        free = api.hw_list()
        taskid = api.add_task("megamind.network/helloworld:latest", free[0].hwid)
        for line in api.follow_logs(taskid):
            print(line)
        api.download_results(taskid, "results")

It runs an AsyncClient on an event loop of its own, in a thread of its own, so it works
the same where a loop is already running (Jupyter) and where none is.
"""

from __future__ import annotations

import asyncio
import threading
import os
import weakref
from decimal import Decimal
from collections.abc import AsyncIterator, Collection, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from typing_extensions import Unpack

from megamind.client.accountcalls import StateFilter
from megamind.client.aio import DEFAULT_STREAM, DEFAULT_TIMEOUT_S, SETTLED, AsyncClient
from megamind.client.billing import Account, Earnings, Estimate, Usage
from megamind.client.models import Executor, FileInfo, HardwareItem, Image, Task, TaskLogs
from megamind.client.registrycalls import RegistryInfo, Repository
from megamind.client.listings import HardwarePage, QueuedTask, TaskPage, TimeBound
from megamind.client.spec import JobOptions, PortSpec, Requirements, TaskLimits
from megamind.states import TaskState

T = TypeVar("T")


class _LoopThread:
    """An event loop running forever in a daemon thread, until stopped."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="megamind-client", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("a blocking Client cannot be called from its own loop")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # Ctrl-C here stops the call there too
            raise

    @property
    def closed(self) -> bool:
        return self.loop.is_closed()

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


def _shutdown(runner: _LoopThread, client: AsyncClient) -> None:
    if not runner.closed:
        try:
            runner.run(client.close())
        finally:
            runner.stop()


class Client:
    """The customer API's calls, plus the extensions, as plain blocking methods.

    Takes the same arguments as AsyncClient; each method returns what its coroutine
    there returns and raises the same typed errors.
    """

    def __init__(self, api_url: str | None = None, api_key: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self._async = AsyncClient(api_url, api_key, timeout=timeout)
        self._runner = _LoopThread()
        self._finalizer = weakref.finalize(self, _shutdown, self._runner, self._async)

    @property
    def api_url(self) -> str:
        return self._async.api_url

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return f"Client({self.api_url!r})"

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._runner.closed:
            coro.close()
            raise RuntimeError("this Client is closed")
        return self._runner.run(coro)

    def _iterate(self, stream: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    item = self._run(stream.__anext__())
                except StopAsyncIteration:
                    return
                yield item
        finally:
            if not self._runner.closed:
                self._runner.run(stream.aclose())

    # the six calls of the contract
    def hw_list(self) -> list[HardwareItem]:
        return self._run(self._async.hw_list())

    def add_task(
        self,
        image: str,
        hwid: str | None = None,
        params: str = "",
        *,
        requirements: Requirements | Mapping[str, Any] | None = None,
        command: str | Sequence[str] | None = None,
        env: Mapping[str, str] | None = None,
        workdir: str | None = None,
        ports: Iterable[PortSpec] | None = None,
        limits: TaskLimits | Mapping[str, Any] | None = None,
        priority: int | None = None,
        queue_timeout: int | None = None,
        inputs: Iterable[str | FileInfo] = (),
    ) -> str:
        return self._run(self._async.add_task(
            image, hwid, params, requirements=requirements, command=command, env=env, workdir=workdir,
            ports=ports, limits=limits, priority=priority, queue_timeout=queue_timeout, inputs=inputs,
        ))

    def delete_task(self, taskid: str) -> None:
        self._run(self._async.delete_task(taskid))

    def task_list(self) -> list[Task]:
        return self._run(self._async.task_list())

    def restart_task(self, taskid: str) -> None:
        self._run(self._async.restart_task(taskid))

    def task_logs(self, taskid: str) -> TaskLogs:
        return self._run(self._async.task_logs(taskid))

    # extensions
    def task(self, taskid: str) -> Task:
        return self._run(self._async.task(taskid))

    def cancel(self, taskid: str) -> None:
        self._run(self._async.cancel(taskid))

    def hardware(
        self,
        requirements: Requirements | Mapping[str, Any] | None = None,
        *,
        status: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: Any,
    ) -> HardwarePage:
        return self._run(self._async.hardware(requirements, status=status, sort=sort, limit=limit, offset=offset,
                                              **filters))

    def queue(self) -> list[QueuedTask]:
        return self._run(self._async.queue())

    def executors(self) -> list[Executor]:
        return self._run(self._async.executors())

    def remove_executor(self, hwid: str) -> None:
        self._run(self._async.remove_executor(hwid))

    def images(self) -> list[Image]:
        return self._run(self._async.images())

    def registry(self) -> RegistryInfo:
        return self._run(self._async.registry())

    def set_image_public(self, name: str, public: bool) -> Repository:
        return self._run(self._async.set_image_public(name, public))

    def openapi(self) -> dict[str, Any]:
        return self._run(self._async.openapi())

    # the account: money and the tasks over time
    def estimate(self, image: str, hwid: str | None = None, params: str = "",
                 **job: Unpack[JobOptions]) -> Estimate:
        return self._run(self._async.estimate(image, hwid, params, **job))

    def account(self) -> Account:
        return self._run(self._async.account())

    def set_spend_limit(self, per_hour: float | Decimal | None) -> Account:
        return self._run(self._async.set_spend_limit(per_hour))

    def usage(self, from_: TimeBound | None = None, to: TimeBound | None = None) -> Usage:
        return self._run(self._async.usage(from_, to))

    def earnings(self, from_: TimeBound | None = None, to: TimeBound | None = None) -> Earnings:
        return self._run(self._async.earnings(from_, to))

    def history(self, from_: TimeBound | None = None, to: TimeBound | None = None,
                state: StateFilter | None = None, image: str | None = None, limit: int | None = None,
                cursor: str | None = None) -> TaskPage:
        return self._run(self._async.history(from_, to, state, image, limit, cursor))

    def iter_history(self, from_: TimeBound | None = None, to: TimeBound | None = None,
                     state: StateFilter | None = None, image: str | None = None,
                     limit: int | None = None) -> Iterator[Task]:
        return self._iterate(self._async.iter_history(from_, to, state, image, limit))

    def history_csv(self, from_: TimeBound | None = None, to: TimeBound | None = None,
                    state: StateFilter | None = None, image: str | None = None) -> str:
        return self._run(self._async.history_csv(from_, to, state, image))

    def tasks_page(self, state: StateFilter | None = None, image: str | None = None, limit: int | None = None,
                   cursor: str | None = None) -> TaskPage:
        return self._run(self._async.tasks_page(state, image, limit, cursor))

    # output and input
    def logs(self, taskid: str, stream: str = DEFAULT_STREAM, tail: int | None = None) -> list[str]:
        return self._run(self._async.logs(taskid, stream, tail))

    def follow_logs(self, taskid: str, stream: str = DEFAULT_STREAM, tail: int | None = None) -> Iterator[str]:
        return self._iterate(self._async.follow_logs(taskid, stream, tail))

    def results(self, taskid: str) -> bytes:
        return self._run(self._async.results(taskid))

    def download_results(self, taskid: str, directory: str | os.PathLike[str]) -> list[Path]:
        return self._run(self._async.download_results(taskid, directory))

    def upload_file(self, source: str | os.PathLike[str] | bytes, name: str | None = None) -> FileInfo:
        return self._run(self._async.upload_file(source, name))

    # waiting
    def watch_task(self, taskid: str, interval: float = 0.5) -> Iterator[Task]:
        return self._iterate(self._async.watch_task(taskid, interval))

    def wait_task(self, taskid: str, until: Collection[TaskState] = SETTLED,
                  timeout: float | None = None, interval: float = 0.5) -> Task:
        return self._run(self._async.wait_task(taskid, until, timeout, interval))
