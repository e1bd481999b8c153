"""Every way a call can fail answers JSON {code, message} with a fitting status."""

import asyncio
import base64
import json

import pytest

from megamind.api.jobschemas import MAX_COMMAND_STRING_CHARS, MAX_COMMAND_WORDS
from megamind.api.keys import store_key

CALLS = [
    ("GET", "/api/v1/gethwlist"),
    ("POST", "/api/v1/addtask"),
    ("DELETE", "/api/v1/deltask/sometask"),
    ("GET", "/api/v1/gettasklist"),
    ("POST", "/api/v1/restarttask/sometask"),
    ("GET", "/api/v1/gettasklogs/sometask"),
]


async def raw(client, method, path, **kwargs):
    async with client.request(method, path, **kwargs) as resp:
        assert resp.content_type == "application/json", (resp.status, await resp.text())
        return resp.status, json.loads(await resp.read())


# --- credentials ---------------------------------------------------------------------


@pytest.mark.parametrize("method, path", CALLS)
async def test_missing_api_key(client, helpers, method, path):
    status, body = await raw(client, method, path, json={})
    assert "api-key" in helpers.assert_error(status, body, 401, 4)


@pytest.mark.parametrize("method, path", CALLS)
async def test_unknown_api_key(client, alice, helpers, method, path):
    for key in ("mk_" + "x" * 43, "nonsense", alice.key + "x", alice.key[:-1], alice.key.upper()):
        status, body = await raw(client, method, path, json={}, headers={"api-key": key})
        helpers.assert_error(status, body, 401, 4)


def basic_auth(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


async def test_the_api_key_may_come_as_bearer_or_as_basic_with_the_account_name(client, alice, new_account, helpers):
    bob = await new_account("bob")
    basic = basic_auth(alice.name, alice.key)
    for authorization in (f"Bearer {alice.key}", f"bearer  {alice.key} ", basic):
        status, body = await raw(client, "GET", "/api/v1/gettasklist", headers={"Authorization": authorization})
        assert (status, body) == (200, []), authorization
    refused = (
        basic_auth(bob.name, alice.key),  # another account's name
        basic_auth(alice.name, ""),
        "Basic !!!not-base64",
        "Bearer ",
        f"Token {alice.key}",
        f"Bearer {alice.key}x",
    )
    for authorization in refused:
        status, body = await raw(client, "GET", "/api/v1/gettasklist", headers={"Authorization": authorization})
        helpers.assert_error(status, body, 401, 4)


async def test_revoked_api_key(client, alice, store, helpers):
    assert (await alice.gettasklist())[0] == 200
    key_id = (await store.accounts.list_keys(alice.name))[0].id
    await store.accounts.revoke_key(alice.name, key_id)
    await asyncio.sleep(0.6)  # past the key cache's TTL

    status, body = await raw(client, "GET", "/api/v1/gettasklist", headers={"api-key": alice.key})
    helpers.assert_error(status, body, 401, 4)


@pytest.mark.parametrize("method, path", CALLS)
async def test_executor_token_is_not_an_api_key(client, agent, helpers, method, path):
    status, body = await raw(client, method, path, json={}, headers={"api-key": agent.token})
    helpers.assert_error(status, body, 401, 4)


# --- routes and methods --------------------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v2/gethwlist", "/", "/api/v1/deltask/", "/api/v1/gettasklogs"])
async def test_unknown_route(client, alice, helpers, path):
    for headers in ({}, {"api-key": alice.key}):
        status, body = await raw(client, "GET", path, headers=headers)
        assert path in helpers.assert_error(status, body, 404, 6)


@pytest.mark.parametrize("method, path", [
    ("GET", "/api/v1/addtask"),
    ("POST", "/api/v1/gethwlist"),
    ("GET", "/api/v1/deltask/x"),
    ("DELETE", "/api/v1/gettasklist"),
    ("PUT", "/api/v1/restarttask/x"),
    ("POST", "/api/v1/gettasklogs/x"),
])
async def test_wrong_method(client, alice, helpers, method, path):
    async with client.request(method, path, headers={"api-key": alice.key}) as resp:
        assert resp.content_type == "application/json"
        body = await resp.json()
        allow = resp.headers.get("Allow", "")
    message = helpers.assert_error(resp.status, body, 405, 11)
    assert method in message
    assert allow


# --- bodies --------------------------------------------------------------------------


async def addtask_raw(client, key, data, content_type="application/json"):
    return await raw(client, "POST", "/api/v1/addtask", data=data,
                     headers={"api-key": key, "Content-Type": content_type})


@pytest.mark.parametrize("data", [b"{", b'{"image": }', b"not json", b'{"a": 1} trailing', b"\x00"])
async def test_invalid_json(client, alice, helpers, data):
    status, body = await addtask_raw(client, alice.key, data)
    assert "JSON" in helpers.assert_error(status, body, 400, 2)


async def test_invalid_utf8(client, alice, helpers):
    status, body = await addtask_raw(client, alice.key, b'{"image": "\xff\xfe", "hwid": "x"}')
    assert "UTF-8" in helpers.assert_error(status, body, 400, 2)


@pytest.mark.parametrize("data", [b"[]", b'[{"image": "x"}]', b'"text"', b"42", b"null", b""])
async def test_body_must_be_an_object(client, alice, helpers, data):
    status, body = await addtask_raw(client, alice.key, data)
    helpers.assert_error(status, body, 422, 3)


@pytest.mark.parametrize("payload, field", [
    ({"params": "", "hwid": "abc"}, "image"),
    ({"image": 5, "params": "", "hwid": "abc"}, "image"),
    ({"image": None, "params": "", "hwid": "abc"}, "image"),
    ({"image": "megamind.network/x", "params": ["a"], "hwid": "abc"}, "params"),
    ({"image": "megamind.network/x", "params": {"a": 1}, "hwid": "abc"}, "params"),
    ({"image": "megamind.network/x", "params": "", "hwid": 12}, "hwid"),
    ({"image": "megamind.network/x", "params": "", "hwid": ""}, "hwid"),
    ({"image": "megamind.network/x", "params": "", "hwid": "abc", "colour": 1}, "colour"),
    ({"image": "megamind.network/x", "params": "", "priority": 101}, "priority"),
])
async def test_field_errors_name_the_field(client, alice, helpers, payload, field):
    status, body = await addtask_raw(client, alice.key, json.dumps(payload).encode())
    message = helpers.assert_error(status, body, 422, 3)
    assert message.startswith(f"{field}:") or f"{field}:" in message, message


async def test_params_too_long(client, alice, agent, helpers):
    payload = {"image": "megamind.network/x", "params": "p" * (64 * 1024 + 1), "hwid": agent.hwid}
    status, body = await addtask_raw(client, alice.key, json.dumps(payload).encode())
    assert "params" in helpers.assert_error(status, body, 422, 3)


async def test_body_over_the_max_size(client, alice, config, helpers):
    payload = {"image": "megamind.network/x", "params": "p" * config.max_body_bytes, "hwid": "abc"}
    status, body = await addtask_raw(client, alice.key, json.dumps(payload).encode())
    assert str(config.max_body_bytes) in helpers.assert_error(status, body, 413, 12)


@pytest.mark.parametrize("content_type", [
    "multipart/form-data; boundary=xyz",
    "application/xml",
    "image/png",
])
async def test_unsupported_media_type(client, alice, helpers, content_type):
    data = b'--xyz\r\nContent-Disposition: form-data; name="image"\r\n\r\nmegamind.network/x\r\n--xyz--\r\n'
    status, body = await addtask_raw(client, alice.key, data, content_type)
    helpers.assert_error(status, body, 415, 13)


async def test_real_multipart_form(client, alice, helpers):
    import aiohttp
    form = aiohttp.FormData()
    form.add_field("image", "megamind.network/x")
    form.add_field("file", b"bytes", filename="a.bin", content_type="application/octet-stream")
    status, body = await raw(client, "POST", "/api/v1/addtask", data=form, headers={"api-key": alice.key})
    helpers.assert_error(status, body, 415, 13)


@pytest.mark.parametrize("content_type", ["text/plain", "application/octet-stream", "application/json; charset=utf-8"])
async def test_json_compatible_types_are_accepted(client, alice, agent, helpers, content_type):
    payload = {"image": helpers.IMAGE, "params": "", "hwid": agent.hwid}
    status, body = await addtask_raw(client, alice.key, json.dumps(payload).encode(), content_type)
    assert status == 200, body


async def test_deeply_nested_json(client, alice, helpers):
    status, body = await addtask_raw(client, alice.key, b"[" * 100_000)
    helpers.assert_error(status, body, 400, 2)
    status, body = await addtask_raw(client, alice.key, b'{"a":' * 20_000 + b"1" + b"}" * 20_000)
    helpers.assert_error(status, body, 400, 2)


async def test_an_integer_of_more_digits_than_python_reads_is_bad_input(client, alice, helpers):
    data = b'{"image": "megamind.network/x", "priority": ' + b"9" * 5000 + b"}"
    status, body = await addtask_raw(client, alice.key, data)
    assert "JSON" in helpers.assert_error(status, body, 400, 2)


async def test_a_command_string_longer_than_the_spec_says_is_refused(client, alice, agent, helpers):
    """The spec bounds a command string (JSON Schema cannot count its words); the server keeps
    that bound, and the same words as a list are taken."""
    words = ["echo"] + ["w"] * (MAX_COMMAND_WORDS - 1)
    payload = {"image": helpers.IMAGE, "hwid": agent.hwid, "command": " ".join(words)}
    assert len(payload["command"]) > MAX_COMMAND_STRING_CHARS
    status, body = await addtask_raw(client, alice.key, json.dumps(payload).encode())
    assert "command: a command string is at most" in helpers.assert_error(status, body, 422, 3)
    status, body = await addtask_raw(client, alice.key, json.dumps({**payload, "command": words}).encode())
    assert status == 200, body


# --- tasks of other accounts ---------------------------------------------------------


async def test_other_accounts_task_is_like_an_unknown_id(alice, new_account, agent, helpers):
    taskid, _ = await alice.start_task(agent)
    bob = await new_account("bob")
    unknown = "x" * len(taskid)
    for call in (bob.deltask, bob.restarttask, bob.gettasklogs):
        status, body = await call(taskid)
        message = helpers.assert_error(status, body, 404, 7)
        status_u, body_u = await call(unknown)
        message_u = helpers.assert_error(status_u, body_u, 404, 7)
        assert message.replace(taskid, "<id>") == message_u.replace(unknown, "<id>")
        assert "another account" not in message and alice.name not in message
    assert (await bob.gettasklist())[1] == []
    # Alice's task is untouched.
    task = await alice.task(taskid)
    assert task["state"] == 3
    await agent.no_command(0.1)


# --- unexpected failures -------------------------------------------------------------


async def test_unexpected_exception_is_a_json_500(client, alice, monkeypatch, helpers, caplog):
    store = client.app[store_key]

    async def broken(*args, **kwargs):
        raise RuntimeError("secret internals /etc/passwd")
    monkeypatch.setattr(store.tasks, "list_for_account", broken)
    async with client.get("/api/v1/gettasklist", headers={"api-key": alice.key}) as resp:
        assert resp.content_type == "application/json"
        text = await resp.text()
        status = resp.status
    body = json.loads(text)
    helpers.assert_error(status, body, 500, 1)
    assert "Traceback" not in text and "secret internals" not in text and "RuntimeError" not in text
    # ...but it is logged for the operator.
    assert any("secret internals" in (r.exc_text or "") or r.exc_info for r in caplog.records)


async def test_unexpected_exception_in_addtask(client, alice, agent, monkeypatch, helpers):
    store = client.app[store_key]

    async def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(store.scheduler, "submit", broken)
    status, body = await alice.addtask(agent.hwid)
    helpers.assert_error(status, body, 500, 1)
    monkeypatch.undo()
    status, body = await alice.addtask(agent.hwid)
    assert status == 200


async def test_a_lone_surrogate_is_bad_input_not_a_server_error(alice, agent, helpers):
    raw = '{"image": "megamind.network/x", "params": "\\ud800", "hwid": "%s"}' % agent.hwid
    async with alice.client.post("/api/v1/addtask", data=raw.encode(),
                                 headers={"api-key": alice.key, "Content-Type": "application/json"}) as resp:
        helpers.assert_error(resp.status, await resp.json(), 400, 2)
    status, tasks = await alice.gettasklist()
    assert status == 200 and tasks == []
