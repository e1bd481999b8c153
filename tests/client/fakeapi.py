"""A recording stand-in for the customer API, in a thread with its own loop.

It answers each call from what the test put in ``answers`` and remembers every request,
so that tests can check exactly what the clients and the CLI send (the fields given and
no others) without the real server's placement and agents.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web

TASK = {"taskid": "t1", "ip": "", "image": "megamind.network/helloworld:latest", "params": "", "state": 2,
        "error_msg": ""}
FREE = {"hwid": "h1", "gpus": ["GTX 1060"], "cpus": ["Xeon E5"], "ram": 32000, "network": "1gbit",
        "calculated_perfomance_rating": 4.5, "cost": 0.5}

# The money calls' answers, as the API writes them.
ESTIMATE = {"fits": 3, "free": [FREE, {**FREE, "hwid": "h2", "cost": 0.75}], "queue_position": 0, "price": 0.5,
            "estimated_time_seconds": 7200, "estimated_cost": 1.0}
ACCOUNT = {"name": "alice", "balance": 12.345678, "spent_today": 0.1, "spent_month": 3.25,
           "spend_limit_per_hour": 2.5, "spent_last_hour": 0.05}
USAGE = {"total": 3.25, "billed_seconds": 23400,
         "days": [{"day": "2026-12-01", "billed_seconds": 16200, "spent": 2.25},
                  {"day": "2026-12-02", "billed_seconds": 7200, "spent": 1.0}],
         "images": [{"image": "megamind.network/trainer:1", "tasks": 2, "billed_seconds": 23400, "spent": 3.25}]}
EARNINGS = {"total": 4.5, "executors": [{"hwid": "h1", "billed_seconds": 28800, "earned": 4.0},
                                        {"hwid": "h2", "billed_seconds": 3600, "earned": 0.5}]}
HISTORY_CSV = ("taskid,image,state,state_name,created_at,started_at,finished_at,hwid,price,billed_seconds,cost,"
               "exit_code,error_msg,deleted\r\n"  # RFC 4180's line ends, as the API writes them
               "t1,megamind.network/helloworld:latest,3,running,2026-12-01T09:30:00Z,2026-12-01T09:30:02Z,,h1,0.5,60.0,"
               "0.008333,,,false\r\n")


def task_page(*tasks: dict, total: int | None = None, next_cursor: str | None = None) -> dict:
    """A page of history or of the live tasks: these tasks, and a cursor when there are more."""
    return {"tasks": list(tasks), "total": len(tasks) if total is None else total,
            "has_more": next_cursor is not None, "next_cursor": next_cursor}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # the JSON body, or None
    accept: str  # the Accept header


class FakeApi:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        # (method, path) -> a JSON answer, a (status, JSON) pair, or a list of them given in turn;
        # a string is answered as text/csv.
        self.answers: dict[tuple[str, str], Any] = {}
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-api", daemon=True)
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, method: str, path: str, *answers: Any) -> None:
        """Answer ``method path`` with these, in turn; the last one again once they run out."""
        self.answers[(method, path)] = list(answers)

    def sent(self, method: str, path: str) -> list[Request]:
        return [r for r in self.requests if (r.method, r.path) == (method, path)]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.requests.append(Request(request.method, request.path, dict(request.query), body,
                                     request.headers.get("Accept", "")))
        queued = self.answers.get((request.method, request.path))
        if not queued:
            return web.json_response({"code": 6, "message": f"no route {request.path}"}, status=404)
        answer = queued.pop(0) if len(queued) > 1 else queued[0]
        status, data = answer if isinstance(answer, tuple) else (200, answer)
        if isinstance(data, str):
            return web.Response(text=data, status=status, content_type="text/csv")
        return web.json_response(data, status=status)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(5)

    def start(self) -> None:
        self._thread.start()
        self._run(self._start())

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        self._run(self._runner.cleanup())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()


@pytest.fixture
def fake_api():
    api = FakeApi()
    api.start()
    yield api
    api.stop()
