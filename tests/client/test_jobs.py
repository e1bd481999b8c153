"""The job model in the clients: what add_task, cancel, hardware and queue send (only the
fields given), against a recording stand-in for the API (tests/client/fakeapi.py)."""

import pytest

from megamind.client import (
    AsyncClient,
    Client,
    HardwareDetail,
    PortRequest,
    QueuedTask,
    Requirements,
    TaskLimits,
    TaskQueued,
    Unsatisfiable,
)
from megamind.client.spec import addtask_body, hardware_query, port_request

from .fakeapi import TASK, fake_api

__all__ = ["fake_api"]  # fixture

IMAGE = "megamind.network/helloworld:latest"
HARDWARE = {"hwid": "h1", "gpus": ["GTX 1060", "GTX 1060"], "cpus": ["Xeon"], "ram": 32000, "network": "1gbit",
            "calculated_perfomance_rating": 4.5, "cost": 0.5, "cpu_count": 16, "gpu_memory_mb": [6144, 6144],
            "status": "free", "slots": 1}
QUEUED = {"taskid": "t2", "image": IMAGE, "priority": 80, "queue_position": 1,
          "pending_reason": "2 executors fit; both busy", "created_at": 1700000000.0, "queue_deadline": 1700086400.0}


# --- the body, built --------------------------------------------------------------------


def test_the_original_three_fields_are_all_that_is_sent_without_job_fields():
    assert addtask_body(IMAGE, "p", "h") == {"image": IMAGE, "params": "p", "hwid": "h"}
    assert addtask_body(IMAGE, "", None) == {"image": IMAGE, "params": ""}  # placed anywhere


def test_every_job_field_as_the_contract_spells_it():
    body = addtask_body(
        IMAGE, "", None, requirements=Requirements(gpus=1, gpu_model="1060", min_vram_mb=6000, max_cost=1.5),
        command=("python", "train.py"), env={"EPOCHS": "3"}, workdir="/work",
        ports=[8888, (22, 2222), PortRequest(80), PortRequest(443, 8443), (9000, 0)],
        limits=TaskLimits(cpus=2.0, memory=4096, cputime=3600, runtime=7200), priority=80, queue_timeout=3600,
        file_ids=["f1"],
    )
    assert body == {
        "image": IMAGE, "params": "",
        "requirements": {"gpus": 1, "gpu_model": "1060", "min_vram_mb": 6000, "max_cost": 1.5},
        "command": ["python", "train.py"], "env": {"EPOCHS": "3"}, "workdir": "/work",
        "ports": [8888, {"container": 22, "host": 2222}, 80, {"container": 443, "host": 8443}, 9000],
        "limits": {"cpus": 2.0, "memory": 4096, "cputime": 3600, "runtime": 7200},
        "priority": 80, "queue_timeout": 3600, "inputs": ["f1"],
    }


def test_mappings_stand_for_the_typed_objects_and_a_string_command_goes_as_is():
    body = addtask_body(IMAGE, "", None, requirements={"ram": 16000}, limits={"memory": 512},
                        command="python -c 'print(1)'")
    assert body["requirements"] == {"ram": 16000}
    assert body["limits"] == {"memory": 512}
    assert body["command"] == "python -c 'print(1)'"  # the API splits it
    assert addtask_body(IMAGE, "", None, requirements=Requirements())["requirements"] == {}
    with pytest.raises(TypeError):
        addtask_body(IMAGE, "", None, requirements={"colour": "red"})


@pytest.mark.parametrize("fields, message", [
    ({"hwid": "h", "requirements": Requirements(gpus=1)}, "not both"),
    ({"env": {"1BAD": "x"}}, "'1BAD' is not a variable name"),
    ({"env": {"MEGAMIND_PARAMS": "x"}}, "are the platform's"),
    ({"env": {"megamind_x": "x"}}, "are the platform's"),
    ({"env": {"A": 1}}, "the value of A is not a string"),
    ({"ports": [0]}, "not a port"),
    ({"ports": [70000]}, "not a port"),
    ({"ports": [(80, 70000)]}, "the host port 70000"),
    ({"ports": ["80"]}, "is not a port"),
    ({"ports": [True]}, "is not a port"),
    ({"priority": 101}, "0 to 100"),
    ({"priority": -1}, "0 to 100"),
    ({"queue_timeout": 0}, "from 1 to"),
    ({"command": ["python", 3]}, "every word is a string"),
])
def test_values_the_api_would_refuse_for_certain_fail_before_sending(fields, message):
    hwid = fields.pop("hwid", None)
    with pytest.raises(ValueError, match=message):
        addtask_body(IMAGE, "", hwid, **fields)


def test_port_requests():
    assert port_request(8888) == PortRequest(8888)
    assert port_request((22, 2222)) == PortRequest(22, 2222)
    assert port_request([22, 0]) == PortRequest(22)
    assert port_request(PortRequest(1, 2)) == PortRequest(1, 2)


def test_the_hardware_query_holds_only_what_is_set():
    assert hardware_query(Requirements()) == {}
    assert hardware_query(Requirements(gpus=1, max_cost=1.5, gpu_model="1060"), status="any", sort="rating",
                          limit=10, offset=20) == {
        "gpus": "1", "gpu_model": "1060", "max_cost": "1.5", "status": "any", "sort": "rating", "limit": "10",
        "offset": "20"}


# --- the calls, as sent -----------------------------------------------------------------


async def test_async_add_task_sends_exactly_the_given_fields(fake_api):
    fake_api.answer("POST", "/api/v1/addtask", {"taskid": "t1"})
    async with AsyncClient(fake_api.url, "mk_k") as api:
        assert await api.add_task(IMAGE, "h1", "p") == "t1"
        await api.add_task(IMAGE, params="p")
        await api.add_task(IMAGE, requirements=Requirements(gpus=1), command=["python", "x.py"], env={"A": "1"},
                           workdir="/w", ports=[8888], limits=TaskLimits(runtime=60), priority=90,
                           queue_timeout=60, inputs=["f1"])
    bodies = [r.body for r in fake_api.sent("POST", "/api/v1/addtask")]
    assert bodies == [
        {"image": IMAGE, "params": "p", "hwid": "h1"},
        {"image": IMAGE, "params": "p"},
        {"image": IMAGE, "params": "", "requirements": {"gpus": 1}, "command": ["python", "x.py"],
         "env": {"A": "1"}, "workdir": "/w", "ports": [8888], "limits": {"runtime": 60}, "priority": 90,
         "queue_timeout": 60, "inputs": ["f1"]},
    ]


async def test_async_cancel_hardware_and_queue(fake_api):
    fake_api.answer("POST", "/api/v1/task/t 1/cancel", {"code": 0, "message": "ok"})
    fake_api.answer("GET", "/api/v1/hardware", {"executors": [HARDWARE], "total": 3})
    fake_api.answer("GET", "/api/v1/queue", {"tasks": [QUEUED]})
    async with AsyncClient(fake_api.url, "mk_k") as api:
        assert await api.cancel("t 1") is None
        page = await api.hardware(gpus=1, gpu_model="1060", status="free", limit=1)
        await api.hardware(Requirements(ram=16000), cpus=4)
        await api.hardware()
        queued = await api.queue()
    [cancel] = fake_api.sent("POST", "/api/v1/task/t 1/cancel")
    assert cancel.body is None
    assert [r.query for r in fake_api.sent("GET", "/api/v1/hardware")] == [
        {"gpus": "1", "gpu_model": "1060", "status": "free", "limit": "1"}, {"cpus": "4", "ram": "16000"}, {}]
    assert page.total == 3 and len(page) == 1
    assert list(page) == [HardwareDetail.from_json(HARDWARE)]
    assert queued == [QueuedTask.from_json(QUEUED)]


async def test_hardware_refuses_a_filter_it_does_not_know(fake_api):
    async with AsyncClient(fake_api.url, "mk_k") as api:
        with pytest.raises(TypeError):
            await api.hardware(colour="red")
    assert fake_api.requests == []


async def test_job_errors_are_typed(fake_api):
    fake_api.answer("POST", "/api/v1/addtask",
                    (422, {"code": 20, "message": "no executor has 8 GPUs"}))
    fake_api.answer("POST", "/api/v1/restarttask/t1", (409, {"code": 21, "message": "t1 is queued"}))
    async with AsyncClient(fake_api.url, "mk_k") as api:
        with pytest.raises(Unsatisfiable) as caught:
            await api.add_task(IMAGE, requirements={"gpus": 8})
        assert (caught.value.code, caught.value.status, caught.value.name) == (20, 422, "unsatisfiable")
        with pytest.raises(TaskQueued):
            await api.restart_task("t1")


def test_the_blocking_client_has_the_same_calls(fake_api):
    fake_api.answer("POST", "/api/v1/addtask", {"taskid": "t1"})
    fake_api.answer("POST", "/api/v1/task/t1/cancel", {"code": 0, "message": "ok"})
    fake_api.answer("GET", "/api/v1/hardware", {"executors": [HARDWARE], "total": 1})
    fake_api.answer("GET", "/api/v1/queue", {"tasks": [QUEUED]})
    fake_api.answer("GET", "/api/v1/task/t1", {**TASK, "phase": "queued", "queue_position": 2, "priority": 80,
                                               "pending_reason": "1 executor fits; it is busy", "hwid": None})
    with Client(fake_api.url, "mk_k") as api:
        assert api.add_task(IMAGE, "h1") == "t1"
        assert api.add_task(IMAGE, requirements=Requirements(cpus=2), ports=[(22, 2222)], priority=0) == "t1"
        api.cancel("t1")
        assert api.hardware(min_vram_mb=6000, sort="cost").total == 1
        assert [t.taskid for t in api.queue()] == ["t2"]
        task = api.task("t1")
    assert task.queued and (task.queue_position, task.hwid, task.priority) == (2, None, 80)
    assert [r.body for r in fake_api.sent("POST", "/api/v1/addtask")] == [
        {"image": IMAGE, "params": "", "hwid": "h1"},
        {"image": IMAGE, "params": "", "requirements": {"cpus": 2}, "ports": [{"container": 22, "host": 2222}],
         "priority": 0}]
    assert fake_api.sent("GET", "/api/v1/hardware")[0].query == {"min_vram_mb": "6000", "sort": "cost"}
    assert len(fake_api.sent("POST", "/api/v1/task/t1/cancel")) == 1
