"""Bad input against the real server process: always a JSON error, nothing lost."""

from __future__ import annotations

import pytest

from .api import Api


def _is_error(answer, status: int, code: int) -> None:
    assert answer.status == status, answer
    assert answer.headers["Content-Type"].startswith("application/json")
    body = answer.json
    assert set(body) == {"code", "message"} and body["code"] == code and body["message"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/api/v1/nothing", {}, 404, 6),
        ("PUT", "/api/v1/gettasklist", {}, 405, 11),
        ("POST", "/api/v1/addtask", {"raw": b"{not json"}, 400, 2),
        ("POST", "/api/v1/addtask", {"raw": b"\xff\xfe{}"}, 400, 2),
        ("POST", "/api/v1/addtask", {"raw": b"[1, 2]"}, 422, 3),
        ("POST", "/api/v1/addtask", {"body": {"params": "no image"}}, 422, 3),
        ("POST", "/api/v1/addtask", {"body": {"image": 5, "hwid": "h"}}, 422, 3),
        ("POST", "/api/v1/addtask", {"body": {"image": "docker.io/library/busybox", "hwid": "h"}}, 422, 16),
        ("POST", "/api/v1/addtask", {"body": {"image": "megamind.network/x", "hwid": "nope"}}, 404, 8),
        ("POST", "/api/v1/addtask", {"raw": b"[" * 100_000}, 400, 2),
        ("POST", "/api/v1/addtask", {"raw": b"{" + b" " * (2 * 1024 * 1024) + b"}"}, 413, 12),
        ("POST", "/api/v1/addtask", {"raw": b"{}", "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, 415, 13),
        ("GET", "/api/v1/gettasklogs/unknown", {}, 404, 7),
        ("POST", "/api/v1/restarttask/unknown", {}, 404, 7),
        ("DELETE", "/api/v1/deltask/unknown", {}, 404, 7),
    ],
)
def test_bad_requests_get_clear_json_errors(alice, method, path, kwargs, status, code):
    _is_error(alice.call(method, path, **kwargs), status, code)


def test_missing_and_wrong_keys_are_401(server):
    _is_error(Api(server.url, None).call("GET", "/api/v1/gettasklist"), 401, 4)
    _is_error(Api(server.url, "mk_wrong").call("GET", "/api/v1/gethwlist"), 401, 4)


def test_bad_input_loses_nothing(alice, executor):
    taskid = alice.run(executor.hwid, "sleep 30")
    alice.wait_state(taskid, 3)
    before = [t["taskid"] for t in alice.tasks()]
    assert taskid in before
    assert alice.call("POST", "/api/v1/addtask", raw=b"{broken").status == 400
    extra = {"image": "megamind.network/megatest", "hwid": executor.hwid, "extra": 1}
    assert alice.call("POST", "/api/v1/addtask", extra).status == 422
    assert [t["taskid"] for t in alice.tasks()] == before
    alice.wait_state(taskid, 3)
