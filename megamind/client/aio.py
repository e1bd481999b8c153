"""The asyncio client, on aiohttp.

    async with AsyncClient("http://127.0.0.1:8080", key) as api:
        free = await api.hw_list()
        taskid = await api.add_task("megamind.network/helloworld:latest", free[0].hwid)
        task = await api.wait_task(taskid)
        async for line in api.follow_logs(taskid):
            print(line)
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Callable, TypeVar
from urllib.parse import quote

import aiohttp

from megamind.client import archive
from megamind.client.accountcalls import AccountCalls
from megamind.client.config import load_settings
from megamind.client.errors import MegamindClientError, RateLimited, TransportError
from megamind.client.follow import FOLLOW_IDLE_S, follow, split_lines, tail_of
from megamind.client.models import Executor, FileInfo, HardwareItem, Image, Task, TaskLogs, file_ids
from megamind.client.registrycalls import RegistryCalls
from megamind.client.listings import HardwarePage, QueuedTask
from megamind.client.spec import PortSpec, Requirements, TaskLimits, addtask_body, hardware_query
from megamind.client.transport import Transport, decode_answer, read_answer
from megamind.states import TaskState

T = TypeVar("T")

DEFAULT_TIMEOUT_S = 30.0
# What --wait waits for: the task got going, or it will not.
SETTLED = frozenset({TaskState.RUNNING, TaskState.STOPPED, TaskState.ERROR})
DEFAULT_STREAM = "stdout"  # the logs call's streams: stdout, stderr
_CHUNK_BYTES = 256 * 1024


class WaitTimeout(MegamindClientError):
    """The task did not reach the awaited state in time; it goes on regardless."""

    def __init__(self, task: Task, timeout: float) -> None:
        super().__init__(f"task {task.taskid} is still {task.state_name} after {timeout:g} s")
        self.task = task
        self.timeout = timeout


class AsyncClient(AccountCalls, RegistryCalls):
    """The customer API's calls, plus the extensions, as coroutines; the account's calls
    (estimate, account, usage, history, ...) are in megamind.client.accountcalls, the
    registry's (where to push, publish) in megamind.client.registrycalls.

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
        self._http = Transport(api_url, api_key, timeout, session)

    @property
    def api_url(self) -> str:
        return self._http.api_url

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.close()

    def __repr__(self) -> str:
        return f"AsyncClient({self.api_url!r})"

    # --- the six calls of the contract --------------------------------------------------

    async def hw_list(self) -> list[HardwareItem]:
        """gethwlist: the executors that are online and free."""
        data = await self._http.call("GET", "/api/v1/gethwlist")
        return decode_answer(data, lambda d: [HardwareItem.from_json(i) for i in d])

    async def add_task(
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
        """addtask: start ``image`` as a task; returns the new task's id.

        ``hwid`` runs it exactly there. Without it the platform places it on the cheapest
        free executor that meets ``requirements`` (any executor without them), or queues
        it until one is free: Unsatisfiable when none could ever do.
        ``command`` replaces the image's CMD (a string is split as a shell would);
        ``env``, ``workdir``; ``ports``: container ports to publish, each ``8888``,
        ``(8888, host_port)`` or a PortRequest; ``limits``: TaskLimits; ``priority``
        (higher is placed first) and ``queue_timeout`` (seconds it may wait).
        ``inputs``: uploaded files (their ids, or what ``upload_file`` returned), each put
        at /megamind/input/<name> before the task starts.

        Only what is given is sent: with none of them, exactly the contract's body.
        A value the API would refuse for certain (an env name, a port, the priority's
        range) raises ValueError here.
        """
        body = addtask_body(
            image, params, hwid, requirements=requirements, command=command, env=env, workdir=workdir,
            ports=ports, limits=limits, priority=priority, queue_timeout=queue_timeout,
            file_ids=file_ids(inputs),
        )
        return decode_answer(await self._http.call("POST", "/api/v1/addtask", body), lambda d: str(d["taskid"]))

    async def delete_task(self, taskid: str) -> None:
        """deltask: stop the task and destroy its container."""
        await self._http.call("DELETE", f"/api/v1/deltask/{_segment(taskid)}")

    async def task_list(self) -> list[Task]:
        """gettasklist: the account's tasks, finished ones included."""
        data = await self._http.call("GET", "/api/v1/gettasklist")
        return decode_answer(data, lambda d: [Task.from_json(i) for i in d])

    async def restart_task(self, taskid: str) -> None:
        """restarttask: restart the task's container (a finished task starts again)."""
        await self._http.call("POST", f"/api/v1/restarttask/{_segment(taskid)}")

    async def task_logs(self, taskid: str) -> TaskLogs:
        """gettasklogs: the last 20 lines of the task's stdout, decoded."""
        data = await self._http.call("GET", f"/api/v1/gettasklogs/{_segment(taskid)}")
        return decode_answer(data, TaskLogs.from_json)

    # --- extensions ---------------------------------------------------------------------

    async def task(self, taskid: str) -> Task:
        """One task in full: what it asked for, where it runs or its place in the queue, its
        ports, progress, results, cost and times."""
        return decode_answer(await self._http.call("GET", f"/api/v1/task/{_segment(taskid)}"), Task.from_json)

    async def cancel(self, taskid: str) -> None:
        """End a queued, setting-up or running task and keep it (state stopped, ``cancelled``):
        its container goes, its logs and results stay. An ended task is left as it is."""
        await self._http.call("POST", f"/api/v1/task/{_segment(taskid)}/cancel")

    async def hardware(
        self,
        requirements: Requirements | Mapping[str, Any] | None = None,
        *,
        status: str | None = None,
        sort: str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **filters: Any,
    ) -> HardwarePage:
        """Executors with every figure, those that meet the requirements (given as a
        Requirements, or as its fields: ``gpus=1, gpu_model="1060"``, ...).

        ``status``: free, busy, offline or any; ``sort``: cost, rating, ram, gpus or
        cpus; ``limit`` and ``offset`` page through ``total``. None: the API's default.
        """
        wanted = Requirements.of(requirements or {})
        if filters:
            wanted = dataclasses.replace(wanted, **filters)  # an unknown name: TypeError
        query = hardware_query(wanted, status=status, sort=sort, limit=limit, offset=offset)
        return decode_answer(await self._http.call("GET", "/api/v1/hardware", params=query), HardwarePage.from_json)

    async def queue(self) -> list[QueuedTask]:
        """The account's tasks waiting for an executor, next first."""
        data = await self._http.call("GET", "/api/v1/queue")
        return decode_answer(data, lambda d: [QueuedTask.from_json(i) for i in d["tasks"]])

    async def executors(self) -> list[Executor]:
        """The caller's own executors (as an owner), online or not, free or busy."""
        data = await self._http.call("GET", "/api/v1/executors")
        return decode_answer(data, lambda d: [Executor.from_json(i) for i in d])

    async def remove_executor(self, hwid: str) -> None:
        """Remove one of the caller's executors (as an owner): its token stops working, its
        agent is disconnected and stops, and a task running there ends in error.
        Another account's executor, or one removed already, raises ExecutorNotFound."""
        await self._http.call("DELETE", f"/api/v1/executors/{_segment(hwid)}")

    async def images(self) -> list[Image]:
        """The registry's name:tags the account may run (its own, the public ones), as
        ``megamind.network/...`` references, with owner and visibility."""
        data = await self._http.call("GET", "/api/v1/images")
        return decode_answer(data, lambda d: [Image.from_json(i) for i in d])

    async def openapi(self) -> dict[str, Any]:
        """The API's OpenAPI document."""
        return await self._http.call("GET", "/api/openapi.json")

    # --- output and input ---------------------------------------------------------------

    async def logs(self, taskid: str, stream: str = DEFAULT_STREAM, tail: int | None = None) -> list[str]:
        """The lines the task wrote to ``stream`` (stdout or stderr) that the platform keeps,
        oldest first; the last ``tail`` of them when given."""
        params = {"stream": stream}
        if tail is not None:
            params["tail"] = str(tail)
        async with self._http.open("GET", _logs_path(taskid), accept="text/plain", params=params) as resp:
            return split_lines(await read_answer(resp))

    async def follow_logs(self, taskid: str, stream: str = DEFAULT_STREAM,
                          tail: int | None = None) -> AsyncIterator[str]:
        """Every line the platform keeps of ``stream`` (or its last ``tail``), then each new
        line as the task writes it; ends once the task has ended and its last line came.

        A dropped connection is opened again, and the lines go on exactly where they
        stopped: none lost, none twice.
        """
        if tail is not None and tail < 0:
            raise ValueError("tail must be 0 or more")
        position = None
        if tail is not None:
            # Where the follow starts must be a count of lines from the log's start, so
            # that a reconnection can pass over exactly what came before: count them.
            first, position = tail_of(await self.logs(taskid, stream), tail)
            for line in first:
                yield line
        params = {"stream": stream, "follow": "1"}

        def open_log():
            return self._http.open("GET", _logs_path(taskid), accept="text/plain", params=params,
                                   idle_timeout=FOLLOW_IDLE_S)

        async def ended() -> bool:
            return (await _patiently(self.task, taskid)).finished
        async for line in follow(open_log, ended, position):
            yield line

    async def results(self, taskid: str) -> bytes:
        """The task's results: a tar.gz of what it wrote under /megamind/output/.

        Raises ResultsNotFound until the task has ended with results.
        """
        async with self._http.open("GET", _results_path(taskid), accept="application/gzip") as resp:
            return await read_answer(resp)

    async def download_results(self, taskid: str, directory: str | os.PathLike[str]) -> list[Path]:
        """Unpack the task's results into ``directory`` (made when missing); the files' paths.

        Raises UnsafeArchive, unpacking nothing, when a member would land outside it.
        """
        directory = Path(directory)
        async with self._http.open("GET", _results_path(taskid), accept="application/gzip") as resp:
            # Made once there are results; the spool on the folder's own file system,
            # gone once closed whatever happens.
            await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=directory) as spool:
                try:
                    async for chunk in resp.content.iter_chunked(_CHUNK_BYTES):
                        spool.write(chunk)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    raise TransportError(f"the results of task {taskid} stopped coming: {exc}") from None
                spool.seek(0)
                return await asyncio.to_thread(archive.unpack, spool, directory)

    async def upload_file(self, source: str | os.PathLike[str] | bytes, name: str | None = None) -> FileInfo:
        """Upload a file (a path, or the bytes themselves) for tasks' inputs.

        ``name`` is where tasks will find it, /megamind/input/<name>: the file's own name
        by default; bytes need one.
        """
        if isinstance(source, (bytes, bytearray, memoryview)):
            if not name:
                raise ValueError("uploading bytes needs a name")
            return await self._upload(io.BytesIO(source), name)  # read as it is sent, as a file is
        path = Path(source)
        with path.open("rb") as body:
            return await self._upload(body, name or path.name)

    async def _upload(self, body: Any, name: str) -> FileInfo:
        async with self._http.open("POST", "/api/v1/files", accept="application/json", params={"name": name},
                                   data=body, headers={"Content-Type": "application/octet-stream"}) as resp:
            raw = await read_answer(resp)
        try:
            data = json.loads(raw)
        except ValueError:
            raise TransportError(f"the API answered an upload with something that is not JSON: {raw[:200]!r}") from None
        return decode_answer(data, FileInfo.from_json)

    # --- waiting ------------------------------------------------------------------------

    async def watch_task(self, taskid: str, interval: float = 0.5) -> AsyncIterator[Task]:
        """Yield the task now, and again each time its state, error, executor, progress or
        place in the queue changes."""
        last: tuple | None = None
        while True:
            task = await _patiently(self.task, taskid)
            seen = (task.state, task.error_msg, task.executor_online, task.pending_command, task.phase,
                    task.progress, task.hwid, task.queue_position, task.pending_reason)
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
        task = await _patiently(self.task, taskid)
        while task.state not in until:
            if deadline is not None and time.monotonic() >= deadline:
                raise WaitTimeout(task, timeout)
            await asyncio.sleep(interval)
            task = await _patiently(self.task, taskid)
        return task


async def _patiently(call: Callable[[str], Awaitable[T]], taskid: str) -> T:
    """One look of a polling loop: past the rate limit, wait as told and look again."""
    while True:
        try:
            return await call(taskid)
        except RateLimited as exc:
            await asyncio.sleep(exc.retry_after or 1.0)


def _segment(value: str) -> str:
    """A task id as one path segment, whatever characters it holds."""
    return quote(str(value), safe="")


def _logs_path(taskid: str) -> str:
    return f"/api/v1/task/{_segment(taskid)}/logs"


def _results_path(taskid: str) -> str:
    return f"/api/v1/task/{_segment(taskid)}/results"
