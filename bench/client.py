"""A customer of the API, as a benchmark needs one: keep-alive HTTP, quick polling."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from megamind.client.follow import split_lines

POLL_S = 0.005  # how often a waiting customer asks gettasklist


class ApiError(Exception):
    pass


class Customer:
    def __init__(self, base: str, key: str, image: str = "megamind.network/benchbox:latest") -> None:
        self.base = base.rstrip("/") + "/api/v1"
        self.key = key
        self.image = image
        self.http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "Customer":
        self.http = aiohttp.ClientSession(
            headers={"api-key": self.key},
            connector=aiohttp.TCPConnector(limit=100),
            timeout=aiohttp.ClientTimeout(total=60),
        )
        return self

    async def __aexit__(self, *exc) -> None:
        await self.http.close()

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, self.base + path, json=body) as resp:
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise ApiError(f"{method} {path}: {resp.status} {data}")
            return data

    async def addtask(self, hwid: str, params: str) -> str:
        answer = await self.call("POST", "/addtask", {"image": self.image, "params": params, "hwid": hwid})
        return answer["taskid"]

    async def tasks(self) -> dict[str, dict]:
        return {t["taskid"]: t for t in await self.call("GET", "/gettasklist")}

    async def hwlist(self) -> list[dict]:
        return await self.call("GET", "/gethwlist")

    async def deltask(self, taskid: str) -> None:
        await self.call("DELETE", f"/deltask/{taskid}")

    async def logs_raw(self, taskid: str) -> bytes:
        async with self.http.get(f"{self.base}/gettasklogs/{taskid}") as resp:
            body = await resp.read()
            if resp.status != 200:
                raise ApiError(f"gettasklogs {taskid}: {resp.status} {body[:200]!r}")
            return body

    async def log_lines(self, taskid: str, stream: str = "stdout") -> list[str]:
        """The task's whole log of one stream, through ``GET /task/{taskid}/logs``."""
        async with self.http.get(f"{self.base}/task/{taskid}/logs", params={"stream": stream},
                                 timeout=aiohttp.ClientTimeout(total=300)) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise ApiError(f"logs of {taskid}: {resp.status} {body[:200]!r}")
        return split_lines(body)

    async def wait_running(self, taskids: list[str], started: float, timeout: float = 120.0) -> dict[str, float]:
        """Poll until every task is seen running; when each was first seen, from ``started``."""
        seen: dict[str, float] = {}
        deadline = started + timeout
        while len(seen) < len(taskids):
            tasks = await self.tasks()
            now = time.perf_counter()
            for taskid in taskids:
                task = tasks.get(taskid)
                if task is None:
                    raise ApiError(f"task {taskid} vanished")
                if task["state"] == 5:
                    raise ApiError(f"task {taskid} failed: {task['error_msg']}")
                if task["state"] == 3 and taskid not in seen:
                    seen[taskid] = now - started
            if now > deadline:
                raise ApiError(f"{len(taskids) - len(seen)} task(s) not running after {timeout}s")
            if len(seen) < len(taskids):
                await asyncio.sleep(POLL_S)
        return seen

    async def wait_free(self, hwids: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        want = set(hwids)
        while not want <= {item["hwid"] for item in await self.hwlist()}:
            if time.monotonic() > deadline:
                raise ApiError(f"executors not free after {timeout}s")
            await asyncio.sleep(0.05)
