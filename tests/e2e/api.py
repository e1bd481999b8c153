"""A deliberately plain client: urllib and JSON, as a client of the original document would be."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from typing import Any


class Answer:
    def __init__(self, status: int, body: bytes, headers) -> None:
        self.status = status
        self.raw = body
        self.headers = headers

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    def __repr__(self) -> str:
        return f"<{self.status} {self.raw[:300]!r}>"


class Api:
    def __init__(self, base: str, key: str | None) -> None:
        self.base = base.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        all_headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.key is not None:
            all_headers["api-key"] = self.key
        all_headers.update(headers or {})
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                return Answer(resp.status, resp.read(), resp.headers)
        except urllib.error.HTTPError as err:
            return Answer(err.code, err.read(), err.headers)

    # the six calls
    def hwlist(self) -> list[dict]:
        answer = self.call("GET", "/api/v1/gethwlist")
        assert answer.status == 200, answer
        return answer.json

    def addtask(self, hwid: str, params: str = "", image: str = "megamind.network/megatest:latest",
                **extra: Any) -> Answer:
        return self.call("POST", "/api/v1/addtask", {"image": image, "params": params, "hwid": hwid, **extra})

    def run(self, hwid: str, params: str, image: str = "megamind.network/megatest:latest", **extra: Any) -> str:
        answer = self.addtask(hwid, params, image, **extra)
        assert answer.status == 200, answer
        return answer.json["taskid"]

    def tasks(self) -> list[dict]:
        answer = self.call("GET", "/api/v1/gettasklist")
        assert answer.status == 200, answer
        return answer.json

    def task(self, taskid: str) -> dict | None:
        return next((t for t in self.tasks() if t["taskid"] == taskid), None)

    def deltask(self, taskid: str) -> Answer:
        return self.call("DELETE", f"/api/v1/deltask/{taskid}")

    def restart(self, taskid: str) -> Answer:
        return self.call("POST", f"/api/v1/restarttask/{taskid}")

    def logs_answer(self, taskid: str) -> Answer:
        return self.call("GET", f"/api/v1/gettasklogs/{taskid}")

    def logs(self, taskid: str) -> list[str]:
        answer = self.logs_answer(taskid)
        assert answer.status == 200, answer
        text = base64.b64decode(answer.json["logs_b64"]).decode()
        assert text == "" or text.endswith("\n")
        return text.splitlines()

    # whole output, results and inputs
    def output(self, taskid: str, stream: str = "stdout", tail: int | None = None) -> list[str]:
        query = f"?stream={stream}" + (f"&tail={tail}" if tail is not None else "")
        answer = self.call("GET", f"/api/v1/task/{taskid}/logs{query}")
        assert answer.status == 200, answer
        return answer.raw.decode().splitlines()

    def follow(self, taskid: str, stream: str = "stdout", timeout: float = 120.0):
        """Each line of a follow=1 answer as it arrives, until the server ends it."""
        request = urllib.request.Request(
            f"{self.base}/api/v1/task/{taskid}/logs?stream={stream}&follow=1", headers={"api-key": self.key}
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            assert resp.status == 200
            for raw in resp:
                yield raw.decode().rstrip("\n")

    def upload(self, name: str, data: bytes) -> dict:
        answer = self.call("POST", f"/api/v1/files?name={name}", raw=data,
                           headers={"Content-Type": "application/octet-stream"})
        assert answer.status in (200, 201), answer
        return answer.json

    def results(self, taskid: str) -> Answer:
        return self.call("GET", f"/api/v1/task/{taskid}/results")

    def detail(self, taskid: str) -> dict:
        answer = self.call("GET", f"/api/v1/task/{taskid}")
        assert answer.status == 200, answer
        return answer.json

    # waiting
    def wait_state(self, taskid: str, *states: int, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        task = None
        while time.monotonic() < deadline:
            task = self.task(taskid)
            if task is not None and task["state"] in states:
                return task
            time.sleep(0.1)
        raise AssertionError(f"task {taskid} not in {states} within {timeout}s: {task}")

    def wait_detail(self, taskid: str, predicate, timeout: float = 20.0) -> dict:
        return poll(lambda: self.detail(taskid), predicate, timeout, f"task {taskid}")

    def wait_logs(self, taskid: str, predicate, timeout: float = 10.0) -> list[str]:
        return poll(lambda: self.logs(taskid), predicate, timeout, f"logs of {taskid}")

    def wait_free(self, hwid: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(item["hwid"] == hwid for item in self.hwlist()):
                return
            time.sleep(0.1)
        raise AssertionError(f"executor {hwid} not listed as free within {timeout}s")


def poll(read, predicate, timeout: float, what: str):
    """What ``read`` returns once ``predicate`` holds of it, read every 0.1 s until ``timeout``."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = read()
        if predicate(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} never matched within {timeout}s: {value}")
