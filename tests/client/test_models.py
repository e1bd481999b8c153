"""Decoding the API's answers into typed objects, and the typed errors."""

import base64

import pytest

from megamind.client import (
    ApiError,
    Conflict,
    ExecutorBusy,
    FileInfo,
    HardwareItem,
    ImageNotAllowed,
    NotFound,
    Results,
    ResultsNotFound,
    Task,
    TaskLogs,
    TaskNotFound,
    TaskState,
    TransportError,
    ValidationFailed,
)
from megamind.client.transport import normalize_api_url
from megamind.client.errors import ERROR_CLASSES, error_for
from megamind.errors import ERROR_TABLE, ErrorCode


def test_hardware_item_reads_the_contract_and_writes_it_back():
    data = {"hwid": "h", "gpus": ["g", "g"], "cpus": ["c"], "ram": 32000, "network": "100mbit",
            "calculated_perfomance_rating": 4.5, "cost": 1}
    item = HardwareItem.from_json(data)
    assert (item.rating, item.cost, item.gpus) == (4.5, 1.0, ["g", "g"])
    assert isinstance(item.cost, float)
    assert item.to_json() == {**data, "cost": 1.0}
    assert list(item.to_json()) == list(data)  # the contract's order


def test_task_state_is_an_enum_with_names():
    task = Task.from_json({"taskid": "t", "ip": "1.2.3.4", "image": "i", "params": "", "state": 5,
                           "error_msg": "exited with code 3"})
    assert task.state is TaskState.ERROR and task.state_name == "error"
    assert task.finished
    assert task.hwid is None  # gettasklist does not say
    assert task.to_json() == {"taskid": "t", "ip": "1.2.3.4", "image": "i", "params": "", "state": 5,
                              "state_name": "error", "error_msg": "exited with code 3"}
    running = Task.from_json({**task.to_json(), "state": 3, "hwid": "h", "executor_online": True,
                              "pending_command": None, "created_at": 1.0, "updated_at": 2.0})
    assert (running.state, running.finished, running.hwid) == (TaskState.RUNNING, False, "h")
    assert running.to_json()["executor_online"] is True


def test_progress_and_results_come_from_the_detail():
    base = {"taskid": "t", "ip": "", "image": "i", "params": "", "state": 3, "error_msg": ""}
    task = Task.from_json({**base, "progress": 42, "results": None})
    assert (task.progress, task.results) == (42.0, None)
    assert task.to_json()["progress"] == 42.0 and "results" not in task.to_json()
    done = Task.from_json({**base, "state": 4, "progress": None,
                           "results": {"size": 1234, "truncated": 2, "created_at": 1700000000.5}})
    assert done.progress is None and done.results == Results(1234, 2, 1700000000.5)
    assert done.to_json()["results"] == {"size": 1234, "truncated": 2, "created_at": 1700000000.5}
    assert "progress" not in done.to_json()
    assert Task.from_json(base).progress is None  # gettasklist does not say


def test_file_info():
    info = FileInfo.from_json({"file_id": "f_1", "name": "data.csv", "size": 10})
    assert info == FileInfo("f_1", "data.csv", 10)
    assert info.to_json() == {"file_id": "f_1", "name": "data.csv", "size": 10}


def test_an_unknown_state_is_a_transport_error():
    with pytest.raises(TransportError, match="unknown task state"):
        Task.from_json({"taskid": "t", "ip": "", "image": "i", "params": "", "state": 9, "error_msg": ""})


def test_logs_are_decoded_from_base64():
    text = "héllo\nwörld ✓\n"
    logs = TaskLogs.from_json({"taskid": "t", "logs_b64": base64.b64encode(text.encode()).decode()})
    assert logs.text == text
    assert logs.lines == ["héllo", "wörld ✓"]
    assert logs.to_json() == {"taskid": "t", "lines": ["héllo", "wörld ✓"]}
    empty = TaskLogs.from_json({"taskid": "t", "logs_b64": ""})
    assert (empty.text, empty.lines) == ("", [])


def test_logs_that_are_not_utf8_are_still_shown():
    logs = TaskLogs.from_json({"taskid": "t", "logs_b64": base64.b64encode(b"a\xffb\n").decode()})
    assert logs.lines == ["a\ufffdb"]
    assert logs.data == b"a\xffb\n"


def test_logs_that_are_not_base64_are_a_transport_error():
    with pytest.raises(TransportError, match="base64"):
        TaskLogs.from_json({"taskid": "t", "logs_b64": "not base64!"})


def test_every_error_code_has_its_own_class():
    assert set(ERROR_CLASSES) == {int(c) for c in ErrorCode}
    classes = [ERROR_CLASSES[int(c)] for c in ErrorCode]
    assert len(set(classes)) == len(classes)
    assert all(cls is not ApiError and issubclass(cls, ApiError) for cls in classes)


def test_errors_carry_code_message_status_and_fall_into_families():
    exc = error_for(7, "no task 'x' in this account", 404)
    assert isinstance(exc, TaskNotFound) and isinstance(exc, NotFound)
    assert (exc.code, exc.message, exc.status, exc.name) == (7, "no task 'x' in this account", 404, "task_not_found")
    assert str(exc) == "no task 'x' in this account (task_not_found, code 7, HTTP 404)"
    assert isinstance(error_for(9, "busy", 409), ExecutorBusy)
    assert isinstance(error_for(9, "busy", 409), Conflict)
    assert isinstance(error_for(16, "bad image", 422), ValidationFailed)
    assert isinstance(error_for(16, "bad image", 422), ImageNotAllowed)
    assert error_for(14, "slow down", 429, 2.0).retry_after == 2.0
    exc = error_for(19, "task t has no results yet", 404)
    assert isinstance(exc, ResultsNotFound) and isinstance(exc, NotFound) and exc.name == "results_not_found"


def test_an_unknown_code_is_a_plain_api_error():
    exc = error_for(999, "new in a later server", 418)
    assert type(exc) is ApiError
    assert exc.name == "code_999"


def test_the_error_classes_match_the_documented_statuses():
    for code, (status, _) in ERROR_TABLE.items():
        cls = ERROR_CLASSES[int(code)]
        if status == 404:
            assert issubclass(cls, NotFound), cls
        if status == 409:
            assert issubclass(cls, Conflict), cls


@pytest.mark.parametrize("given, expected", [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ("http://127.0.0.1:8080/api/", "http://127.0.0.1:8080"),
    ("127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("https://megamind.example/prefix", "https://megamind.example/prefix"),
])
def test_api_urls_are_normalized(given, expected):
    assert normalize_api_url(given) == expected
