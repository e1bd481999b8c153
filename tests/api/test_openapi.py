"""The OpenAPI document: a valid spec, served without a key, and true to what the server answers."""

import base64
import copy
import dataclasses

import jsonschema
import pytest
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from openapi_spec_validator import validate

from megamind.api.app import create_app
from megamind.api.jobschemas import hardware_query_schema
from megamind.api.keys import store_key
from megamind.api.openapi import SPEC_PATH, build_spec
from megamind.api.schemas import add_task_request_schema
from megamind.errors import ImageNotAllowed
from megamind.imageref import parse_image
from megamind.protocol import RESULTS_PATH, TOKEN_HEADER
from megamind.registryauth.distconfig import TOKEN_PATH

METHODS = {"get", "post", "put", "delete", "patch"}


def test_the_spec_is_a_valid_openapi_3_document():
    spec = build_spec()
    validate(spec)
    assert spec["openapi"].startswith("3.")
    assert spec["components"]["securitySchemes"]["api-key"] == {"type": "apiKey", "in": "header", "name": "api-key"}
    assert spec["security"] == [{"api-key": []}]


def test_every_error_answer_of_every_call_is_the_error_schema():
    spec = build_spec()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            statuses = {int(s) for s in operation["responses"]}
            successes = {s for s in statuses if s < 400}
            assert successes in ({200}, {201}), (method, path)
            errors = statuses - successes
            if path.startswith("/api/v1/"):
                assert {401, 429, 500, 503} <= errors, (method, path)
            for status in errors:
                ref = operation["responses"][str(status)]["$ref"]
                response = spec["components"]["responses"][ref.rsplit("/", 1)[1]]
                assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}


CONTRACT_ANSWERS = {
    ("get", "/api/v1/gethwlist"): {"type": "array", "items": {"$ref": "#/components/schemas/HardwareItem"}},
    ("post", "/api/v1/addtask"): {"$ref": "#/components/schemas/TaskId"},
    ("delete", "/api/v1/deltask/{taskid}"): {"$ref": "#/components/schemas/Status"},
    ("get", "/api/v1/gettasklist"): {"type": "array", "items": {"$ref": "#/components/schemas/TaskItem"}},
    ("post", "/api/v1/restarttask/{taskid}"): {"$ref": "#/components/schemas/Status"},
    ("get", "/api/v1/gettasklogs/{taskid}"): {"$ref": "#/components/schemas/TaskLogs"},
}
# addtask's fields beyond the contract's three: each optional, so a client of the contract sees no change.
ADDTASK_EXTENSIONS = {"inputs", "requirements", "command", "env", "workdir", "ports", "limits", "priority", "labels",
                      "queue_timeout"}


def test_the_contract_calls_keep_their_exact_shapes():
    spec = build_spec()
    schemas = spec["components"]["schemas"]
    for (method, path), answer in CONTRACT_ANSWERS.items():
        assert spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"] == answer
    assert set(schemas["HardwareItem"]["properties"]) == {
        "hwid", "gpus", "cpus", "ram", "network", "calculated_perfomance_rating", "cost"}
    assert set(schemas["TaskItem"]["properties"]) == {"taskid", "ip", "image", "params", "state", "error_msg"}
    assert set(schemas["TaskLogs"]["properties"]) == {"taskid", "logs_b64"}
    assert set(schemas["TaskId"]["properties"]) == {"taskid"}
    assert set(schemas["Status"]["properties"]) == {"code", "message"}
    for name in ("HardwareItem", "TaskItem", "TaskLogs", "TaskId", "Status"):
        assert set(schemas[name]["required"]) == set(schemas[name]["properties"]), name
        assert schemas[name]["additionalProperties"] is False, name  # nothing more is ever answered

    request = schemas["AddTaskRequest"]
    assert set(request["properties"]) == {"image", "params", "hwid"} | ADDTASK_EXTENSIONS
    # hwid is optional since the platform can place a task itself; a client sending it sees no change.
    assert request["required"] == ["image"]
    assert request["properties"]["image"]["type"] == "string"
    assert request["properties"]["params"]["type"] == "string"
    assert "string" in request["properties"]["hwid"]["type"]


async def test_the_spec_is_served_without_an_api_key(client):
    async with client.get(SPEC_PATH) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert await resp.json() == build_spec()


async def test_every_customer_route_is_in_the_spec_and_nothing_else(client):
    routes = set()
    for route in client.app.router.routes():
        path = route.resource.canonical if route.resource else ""
        if (path.startswith("/api/v1/") or path in (SPEC_PATH, TOKEN_PATH)) and route.method.lower() in METHODS:
            routes.add((route.method.lower(), path))
    documented = {(m, p) for p, ops in build_spec()["paths"].items() for m in ops if m in METHODS}
    assert routes == documented


def test_the_spec_registers_every_schema_it_references():
    spec = build_spec()

    def refs(node):
        if isinstance(node, dict):
            yield from ([node["$ref"]] if "$ref" in node else [])
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)
    for ref in set(refs(spec)):
        kind, name = ref.split("/")[-2:]
        assert name in spec["components"][kind], ref
    assert "PortObject" in spec["components"]["schemas"]


def test_the_addtask_request_schema_says_what_the_server_checks():
    properties = build_spec()["components"]["schemas"]["AddTaskRequest"]["properties"]
    image = jsonschema.Draft202012Validator({"type": "string", **properties["image"]})
    assert image.is_valid("megamind.network/trainer:1.2") and not image.is_valid("")
    assert not image.is_valid("megamind.network/x:é")  # the engine would refuse it at pull
    env = jsonschema.Draft202012Validator(properties["env"])
    assert env.is_valid({"EPOCHS": "3"}) and not env.is_valid({"megamind_x": "1"})
    assert properties["env"]["maxProperties"] == 256 and "maxLength" not in properties["env"]
    assert properties["ports"]["items"]["oneOf"][1] == {"$ref": "#/components/schemas/PortObject"}
    assert (properties["priority"]["minimum"], properties["priority"]["maximum"]) == (0, 100)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(("command", "workdir", "env")), text=st.text(" \t\r'\"\\/.a_M\x00", max_size=12))
def test_the_spec_patterns_say_exactly_what_the_server_checks(field, text):
    properties = build_spec()["components"]["schemas"]["AddTaskRequest"]["properties"]
    value, schema = {
        "command": (text, properties["command"]["oneOf"][0]),  # the string form, split as a shell would
        "workdir": (text, properties["workdir"]),
        "env": ({text: "v"}, {"type": "object", "propertyNames": properties["env"]["propertyNames"]}),
    }[field]
    try:
        add_task_request_schema.load({"image": "megamind.network/x", field: value})
        server_takes = True
    except ValidationError:
        server_takes = False
    assert jsonschema.Draft202012Validator(schema).is_valid(value) == server_takes


_GENERATED = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
_PUBLISHED = schemathesis.openapi.from_dict(build_spec())


@_GENERATED
@given(case=_PUBLISHED["/api/v1/addtask"]["POST"].as_strategy())
def test_an_addtask_body_the_spec_allows_is_one_the_server_takes(case):
    body = case.body
    ports = body.get("ports") or []
    containers = [p if isinstance(p, (int, float)) else p["container"] for p in ports]
    hosts = [p["host"] for p in ports if isinstance(p, dict) and p.get("host")]
    # The one rule JSON Schema cannot state: no port twice, whatever its form.
    assume(len(set(containers)) == len(containers) and len(set(hosts)) == len(hosts))
    try:
        loaded = add_task_request_schema.load(body)
        parse_image(loaded["image"])
    except (ValidationError, ImageNotAllowed) as exc:
        raise AssertionError(f"the spec allows {body!r}, the server refuses it: {exc}") from None
    assert loaded.get("hwid") is None or not loaded.get("requirements")  # else refused: give one of them


@_GENERATED
@given(case=_PUBLISHED["/api/v1/hardware"]["GET"].as_strategy())
def test_a_hardware_query_the_spec_allows_is_one_the_server_takes(case):
    query = {name: str(value) for name, value in (case.query or {}).items()}
    try:
        hardware_query_schema.load(query)
    except ValidationError as exc:
        raise AssertionError(f"the spec allows {query!r}, the server refuses it: {exc}") from None


# --- live answers against the spec's schemas ------------------------------------------


def json_schema(node, spec):
    """An OpenAPI 3.0 schema as plain JSON Schema: references inlined, `nullable` as a null type."""
    if isinstance(node, list):
        return [json_schema(n, spec) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = spec
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return json_schema(target, spec)
    out = {k: json_schema(v, spec) for k, v in node.items() if k != "nullable"}
    if node.get("nullable"):
        out["type"] = [node["type"], "null"]
    return out


class Answers:
    """Checks each answer against the spec: the status is declared, the body fits its schema."""

    def __init__(self):
        self.spec = build_spec()
        self.seen: set[tuple[str, str, int]] = set()

    def check(self, method: str, template: str, status: int, body, content_type: str = "application/json") -> None:
        operation = self.spec["paths"][template][method.lower()]
        assert str(status) in operation["responses"], f"{method} {template} answered an undocumented {status}"
        response = json_schema(copy.deepcopy(operation["responses"][str(status)]), self.spec)
        assert content_type in response["content"], f"{method} {template} {status} answered {content_type}"
        if content_type == "application/json":
            jsonschema.validate(body, response["content"][content_type]["schema"], cls=jsonschema.Draft7Validator)
        self.seen.add((method.lower(), template, status))


@pytest.fixture
def config(config):
    return dataclasses.replace(config, max_file_bytes=1000)  # small enough to pass in a test


@pytest.fixture
def answers():
    return Answers()


def fake_registry() -> web.Application:
    app = web.Application()

    async def catalog(request):
        return web.json_response({"repositories": ["helloworld"]})

    async def tags(request):
        return web.json_response({"name": "helloworld", "tags": ["latest", "1.0"]})
    app.router.add_get("/v2/_catalog", catalog)
    app.router.add_get("/v2/helloworld/tags/list", tags)
    return app


async def test_live_answers_of_every_call_match_the_spec(client, alice, owner, new_agent, answers, helpers):
    async def call(who, method, template, path=None, **kwargs):
        status, body = await who.call(method, path or template, **kwargs)
        answers.check(method, template, status, body)
        return status, body

    agent = await new_agent(owner)
    await call(alice, "GET", "/api/v1/gethwlist")
    status, body = await call(alice, "POST", "/api/v1/addtask",
                              json={"image": "megamind.network/helloworld", "params": "p", "hwid": agent.hwid})
    taskid = body["taskid"]
    path = {name: f"/api/v1/{name}/{taskid}" for name in ("task", "gettasklogs", "restarttask", "deltask")}
    await call(alice, "GET", "/api/v1/task/{taskid}", path["task"])  # setup, a start pending
    command = await agent.command()
    await agent.ack(command["id"])
    await agent.state(taskid, 3)
    await agent.logs(taskid, ["héllo", "wörld"])
    await alice.wait_state(taskid, 3)
    await call(alice, "GET", "/api/v1/task/{taskid}", path["task"])  # running, nothing pending
    await call(alice, "GET", "/api/v1/gettasklist")

    async def logged():
        status, body = await call(alice, "GET", "/api/v1/gettasklogs/{taskid}", path["gettasklogs"])
        return base64.b64decode(body["logs_b64"]).decode() == "héllo\nwörld\n"
    await helpers.eventually(logged)
    await call(owner, "GET", "/api/v1/executors")  # busy with another account's task
    await call(alice, "GET", "/api/v1/executors")  # none
    await call(alice, "POST", "/api/v1/restarttask/{taskid}", path["restarttask"])
    await call(alice, "GET", "/api/v1/images")  # registry.test does not resolve: 503

    # errors
    await call(alice, "POST", "/api/v1/addtask", json={"image": "megamind.network/x", "hwid": agent.hwid})  # 409
    await call(alice, "POST", "/api/v1/addtask", json={"image": "megamind.network/x", "hwid": "nosuch"})  # 404
    await call(alice, "POST", "/api/v1/addtask", json={"image": "docker.io/x", "hwid": agent.hwid})  # 422
    await call(alice, "POST", "/api/v1/addtask", json={"hwid": agent.hwid})  # 422
    await call(alice, "POST", "/api/v1/addtask", data=b"{nope", headers={"Content-Type": "application/json"})
    await call(alice, "POST", "/api/v1/addtask", data=b"<x/>", headers={"Content-Type": "application/xml"})
    await call(alice, "POST", "/api/v1/addtask", data=b"x" * (300 * 1024),
               headers={"Content-Type": "application/json"})  # 413
    for template in ("/api/v1/task/{taskid}", "/api/v1/gettasklogs/{taskid}", "/api/v1/restarttask/{taskid}",
                     "/api/v1/deltask/{taskid}"):
        method = {"restarttask": "POST", "deltask": "DELETE"}.get(template.split("/")[3], "GET")
        await call(alice, method, template, template.replace("{taskid}", "nosuchtask"))  # 404
    nobody = type(alice)(alice.client, "nobody", "mk_unknown")
    await call(nobody, "GET", "/api/v1/gettasklist")  # 401
    await agent.disconnect()
    await call(alice, "POST", "/api/v1/restarttask/{taskid}", path["restarttask"])  # 409 offline
    await call(alice, "DELETE", "/api/v1/deltask/{taskid}", path["deltask"])
    await call(alice, "GET", "/api/v1/gettasklist")  # empty
    await call(owner, "GET", "/api/v1/executors")  # offline

    async with client.get(SPEC_PATH) as resp:
        answers.check("GET", SPEC_PATH, resp.status, await resp.json())

    expected = {
        ("get", "/api/v1/gethwlist", 200), ("post", "/api/v1/addtask", 200), ("get", "/api/v1/gettasklist", 200),
        ("get", "/api/v1/gettasklogs/{taskid}", 200), ("post", "/api/v1/restarttask/{taskid}", 200),
        ("delete", "/api/v1/deltask/{taskid}", 200), ("get", "/api/v1/task/{taskid}", 200),
        ("get", "/api/v1/executors", 200), ("get", "/api/v1/images", 503), ("get", SPEC_PATH, 200),
        *{("post", "/api/v1/addtask", s) for s in (400, 404, 409, 413, 415, 422)},
        ("get", "/api/v1/task/{taskid}", 404), ("get", "/api/v1/gettasklogs/{taskid}", 404),
        ("post", "/api/v1/restarttask/{taskid}", 404), ("post", "/api/v1/restarttask/{taskid}", 409),
        ("delete", "/api/v1/deltask/{taskid}", 404), ("get", "/api/v1/gettasklist", 401),
    }
    assert expected <= answers.seen, expected - answers.seen


async def test_the_images_answer_matches_the_spec(aiohttp_server, aiohttp_client, config, tmp_path, answers):
    registry = await aiohttp_server(fake_registry())
    cfg = dataclasses.replace(config, registry=f"127.0.0.1:{registry.port}", db_path=tmp_path / "other.sqlite")
    api = await aiohttp_client(create_app(cfg))
    _, key = await api.app[store_key].accounts.create("carol")
    async with api.get("/api/v1/images", headers={"api-key": key}) as resp:
        body = await resp.json()
        answers.check("GET", "/api/v1/images", resp.status, body)
    assert resp.status == 200 and len(body) == 2


def test_the_check_itself_catches_a_wrong_answer(answers):
    with pytest.raises(jsonschema.ValidationError):
        answers.check("GET", "/api/v1/gettasklist", 200, [{"taskid": "t", "state": 3}])
    with pytest.raises(jsonschema.ValidationError):  # an extra field changes the contract's shape
        answers.check("GET", "/api/v1/gethwlist", 200, [{
            "hwid": "h", "gpus": [], "cpus": [], "ram": 1, "network": "1mbit",
            "calculated_perfomance_rating": 1.0, "cost": 1.0, "extra": 1}])
    with pytest.raises(AssertionError, match="undocumented"):
        answers.check("GET", "/api/v1/gethwlist", 404, {"code": 6, "message": "x"})


async def test_live_answers_of_the_output_calls_match_the_spec(client, config, alice, agent, answers):

    async def call(method, template, path, **kwargs):
        headers = {"api-key": alice.key, **kwargs.pop("headers", {})}
        async with client.request(method, path, headers=headers, **kwargs) as resp:
            body = await resp.json() if resp.content_type == "application/json" else await resp.read()
            answers.check(method, template, resp.status, body, resp.content_type)
            return resp.status, body

    taskid, _ = await alice.start_task(agent)
    logs, results, files = "/api/v1/task/{taskid}/logs", "/api/v1/task/{taskid}/results", "/api/v1/files"
    await agent.logs(taskid, ["a line"])
    await call("GET", logs, logs.format(taskid=taskid), params={"tail": "5", "stream": "stderr"})
    await call("GET", logs, logs.format(taskid=taskid), params={"tail": "x"})  # 422
    await call("GET", logs, logs.format(taskid="nosuchtask"))  # 404
    await call("GET", results, results.format(taskid=taskid))  # 404: none yet
    async with client.put(RESULTS_PATH.format(taskid=taskid), data=b"tar.gz", headers={TOKEN_HEADER: agent.token}):
        pass
    await call("GET", results, results.format(taskid=taskid))
    status, file = await call("POST", files, files, data=b"data", params={"name": "a.txt"},
                              headers={"Content-Type": "application/octet-stream"})
    await call("POST", files, files, data=b"data", params={"name": "a/b"},
               headers={"Content-Type": "application/octet-stream"})  # 422
    await call("POST", files, files, data=b"{}", headers={"Content-Type": "application/json"})  # 415
    await call("POST", files, files, data=b"x", headers={"Content-Type": "multipart/form-data"})  # 400
    await call("POST", files, files, data=b"x" * (config.max_file_bytes + 1), params={"name": "big"},
               headers={"Content-Type": "application/octet-stream"})  # 413
    status, body = await call("POST", "/api/v1/addtask", "/api/v1/addtask",
                              json={"image": "megamind.network/x", "hwid": agent.hwid, "inputs": [file["file_id"]]})
    assert status == 409  # the executor is busy with the first task; the inputs were fine
    await agent.state(taskid, 4)
    await alice.wait_state(taskid, 4)
    await call("GET", logs, logs.format(taskid=taskid), params={"follow": "1"})  # ends at once: finished
    await call("GET", "/api/v1/task/{taskid}", f"/api/v1/task/{taskid}")
    expected = {
        ("get", logs, 200), ("get", logs, 422), ("get", logs, 404), ("get", results, 200), ("get", results, 404),
        *{("post", files, s) for s in (201, 400, 413, 415, 422)},
    }
    assert expected <= answers.seen, expected - answers.seen


async def test_live_answers_of_the_job_calls_match_the_spec(alice, owner, new_agent, answers):
    async def call(method, template, path=None, **kwargs):
        status, body = await alice.call(method, path or template, **kwargs)
        answers.check(method, template, status, body)
        return status, body

    hardware = {"gpus": ["nVidia 1060 6G"], "gpu_memory_mb": [6000], "cpus": ["cpu"], "cpu_count": 4,
                "cpu_limit": None, "ram": 16000, "network": "1gbit", "calculated_perfomance_rating": 2.0}
    agent = await new_agent(owner, hardware=hardware)
    addtask, detail, cancel = "/api/v1/addtask", "/api/v1/task/{taskid}", "/api/v1/task/{taskid}/cancel"
    _, placed = await call("POST", addtask, json={
        "image": "megamind.network/x", "requirements": {"gpus": 1}, "command": "run it", "env": {"A": "1"},
        "workdir": "/w", "ports": [80, {"container": 22, "host": 0}], "limits": {"memory": 100, "cpus": 1.5},
        "priority": 60, "queue_timeout": 100})
    start = await agent.command()
    await agent.ack(start["id"])
    await agent.send({"type": "state", "taskid": placed["taskid"], "state": 3, "error_msg": "",
                      "ports": [{"container": 80, "host": 32768}, {"container": 22, "host": 32769}]})
    await alice.wait_state(placed["taskid"], 3)
    _, queued = await call("POST", addtask, json={"image": "megamind.network/x"})
    await call("GET", detail, detail.format(taskid=placed["taskid"]))  # running, ports published
    await call("GET", detail, detail.format(taskid=queued["taskid"]))  # queued
    await call("GET", "/api/v1/queue")
    await call("POST", "/api/v1/restarttask/{taskid}", f"/api/v1/restarttask/{queued['taskid']}")  # 409
    await call("POST", addtask, json={"image": "megamind.network/x", "requirements": {"gpus": 8}})  # 422
    await call("GET", "/api/v1/hardware", params={"gpus": "1", "sort": "rating"})
    await call("GET", "/api/v1/hardware", params={"gpus": "many"})  # 422
    await call("POST", cancel, cancel.format(taskid=placed["taskid"]))
    await call("POST", cancel, cancel.format(taskid="nosuchtask"))  # 404
    await call("GET", detail, detail.format(taskid=placed["taskid"]))  # cancelled
    expected = {
        ("post", addtask, 200), ("post", addtask, 422), ("get", detail, 200), ("get", "/api/v1/queue", 200),
        ("post", "/api/v1/restarttask/{taskid}", 409), ("get", "/api/v1/hardware", 200),
        ("get", "/api/v1/hardware", 422), ("post", cancel, 200), ("post", cancel, 404),
    }
    assert expected <= answers.seen, expected - answers.seen
