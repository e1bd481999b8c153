"""Decoding the API's answers into typed objects, and the typed errors."""

import base64

import pytest

from megamind.client import (
    ApiError,
    Conflict,
    ExecutorBusy,
    FileInfo,
    HardwareDetail,
    HardwareItem,
    HardwarePage,
    ImageNotAllowed,
    NotFound,
    PaymentRequired,
    PublishedPort,
    QueuedTask,
    Requirements,
    Results,
    ResultsNotFound,
    Task,
    TaskLimits,
    TaskLogs,
    TaskNotFound,
    TaskQueued,
    TaskState,
    TransportError,
    Unsatisfiable,
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
        if status == 402:
            assert issubclass(cls, PaymentRequired), cls


@pytest.mark.parametrize("given, expected", [
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
    ("http://127.0.0.1:8080/api/", "http://127.0.0.1:8080"),
    ("127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("https://megamind.example/prefix", "https://megamind.example/prefix"),
])
def test_api_urls_are_normalized(given, expected):
    assert normalize_api_url(given) == expected


# --- the job model ------------------------------------------------------------------------

DETAIL = {
    "taskid": "t", "ip": "203.0.113.7", "image": "i", "params": "", "state": 3, "error_msg": "",
    "hwid": "h", "executor_online": True, "pending_command": None, "phase": None, "progress": 12.5,
    "results": None, "created_at": 1.0, "updated_at": 5.0,
    "requirements": {"gpus": 1, "gpu_model": "1060", "min_vram_mb": None, "cpus": None, "ram": 16000,
                     "max_cost": 1.5, "min_rating": None},
    "command": ["python", "train.py"], "env": {"EPOCHS": "3"}, "workdir": "/work",
    "limits": {"cpus": 2, "memory": 4096, "cputime": None, "runtime": 7200}, "priority": 50,
    "queue_position": None, "pending_reason": None,
    "ports": [{"container": 8888, "host": 32768, "address": "203.0.113.7"}],
    "exit_code": None, "cancelled": False, "price": 0.5, "billed_seconds": 90, "cost": 0.0125,
    "placed_at": 2.0, "started_at": 3.0, "finished_at": None,
}


def test_the_task_detail_with_every_job_field():
    task = Task.from_json(DETAIL)
    assert task.requirements == Requirements(gpus=1, gpu_model="1060", ram=16000, max_cost=1.5)
    assert task.command == ("python", "train.py") and task.env == {"EPOCHS": "3"} and task.workdir == "/work"
    assert task.limits == TaskLimits(cpus=2.0, memory=4096, runtime=7200)
    assert task.ports == (PublishedPort(8888, 32768, "203.0.113.7"),)
    assert task.ports[0].endpoint == "203.0.113.7:32768"
    assert (task.priority, task.queue_position, task.pending_reason, task.queued) == (50, None, None, False)
    assert (task.price, task.billed_seconds, task.cost, task.cancelled) == (0.5, 90.0, 0.0125, False)
    assert (task.placed_at, task.started_at, task.finished_at) == (2.0, 3.0, None)
    data = task.to_json()
    assert data["requirements"] == {"gpus": 1, "gpu_model": "1060", "ram": 16000, "max_cost": 1.5}
    assert data["limits"] == {"cpus": 2.0, "memory": 4096, "runtime": 7200}
    assert data["ports"] == DETAIL["ports"] and data["command"] == ["python", "train.py"]
    assert Task.from_json(data) == task  # what --json prints reads back the same


def test_a_queued_task_has_no_executor_and_a_place():
    task = Task.from_json({**DETAIL, "state": 2, "hwid": None, "ip": "", "executor_online": False,
                           "phase": "queued", "queue_position": 3, "pending_reason": "2 executors fit; both busy",
                           "ports": [], "price": None, "placed_at": None, "started_at": None})
    assert task.queued and task.hwid is None and task.ports == ()
    assert (task.queue_position, task.pending_reason) == (3, "2 executors fit; both busy")
    assert "hwid" not in task.to_json() and task.to_json()["queue_position"] == 3


def test_the_list_item_knows_none_of_the_job_fields():
    task = Task.from_json({"taskid": "t", "ip": "", "image": "i", "params": "", "state": 2, "error_msg": ""})
    assert (task.requirements, task.command, task.env, task.ports, task.limits, task.priority) == (None,) * 6
    assert not task.queued


def test_a_command_given_back_as_a_string_is_split_as_the_api_splits_it():
    assert Task.from_json({**DETAIL, "command": "python -c 'print(1)'"}).command == ("python", "-c", "print(1)")
    assert Task.from_json({**DETAIL, "command": None}).command is None


def test_a_port_not_yet_published():
    port = PublishedPort.from_json({"container": 22, "host": None, "address": ""})
    assert port == PublishedPort(22, None, None) and port.endpoint is None


def test_hardware_with_every_figure():
    data = {"hwid": "h", "gpus": ["g"], "cpus": ["c"], "ram": 8000, "network": "1gbit",
            "calculated_perfomance_rating": 2, "cost": 1, "cpu_count": 8, "gpu_memory_mb": [6144],
            "status": "busy", "slots": 2}
    item = HardwareDetail.from_json(data)
    assert (item.cpu_count, item.gpu_memory_mb, item.status, item.slots, item.rating) == (8, [6144], "busy", 2, 2.0)
    assert isinstance(item, HardwareItem)
    assert item.to_json() == {**data, "calculated_perfomance_rating": 2.0, "cost": 1.0}
    page = HardwarePage.from_json({"executors": [data], "total": 7})
    assert (page.total, page.executors) == (7, [item])
    assert page.to_json()["total"] == 7


def test_a_queued_task_of_the_queue():
    item = QueuedTask.from_json({"taskid": "t", "image": "i", "priority": 50, "queue_position": 1,
                                 "pending_reason": "no executor fits is online", "created_at": 1,
                                 "queue_deadline": 2})
    assert item == QueuedTask("t", "i", 50, 1, "no executor fits is online", 1.0, 2.0)
    assert item.to_json()["queue_deadline"] == 2.0


def test_a_malformed_job_field_is_a_transport_error():
    from megamind.client.transport import decode_answer
    with pytest.raises(TransportError, match="unexpected shape"):
        decode_answer({**DETAIL, "limits": {"memory": "lots"}}, Task.from_json)
    with pytest.raises(TransportError, match="unexpected shape"):
        decode_answer({"executors": [{"hwid": "h"}], "total": 1}, HardwarePage.from_json)


def test_job_errors_have_their_classes():
    exc = error_for(20, "no executor has 8 GPUs", 422)
    assert isinstance(exc, Unsatisfiable) and isinstance(exc, ValidationFailed) and exc.name == "unsatisfiable"
    exc = error_for(21, "the task is queued", 409)
    assert isinstance(exc, TaskQueued) and isinstance(exc, Conflict) and exc.name == "task_queued"
