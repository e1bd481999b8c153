"""Input files: uploaded raw or as a form, named in addtask, fetched by the executor of the task."""

import dataclasses
import hashlib
import os

import aiohttp
import pytest

from megamind.api.schemas import MAX_INPUTS
from megamind.protocol import FILES_PATH, TOKEN_HEADER

FILES = "/api/v1/files"


@pytest.fixture
def config(config):
    return dataclasses.replace(config, max_file_bytes=600_000)  # above the 256 KiB of JSON bodies


async def upload(api, body, name=None, content_type="application/octet-stream", **kwargs):
    params = {"name": name} if name is not None else {}
    headers = {"api-key": api.key}
    if content_type is not None and not isinstance(body, aiohttp.FormData):
        headers["Content-Type"] = content_type
    return await api.call("POST", FILES, data=body, params=params, headers=headers, **kwargs)


def form(data: bytes, filename: str | None = "data.bin", field: str = "file", **extra) -> aiohttp.FormData:
    body = aiohttp.FormData()
    body.add_field(field, data, filename=filename, content_type="application/octet-stream")
    for key, value in extra.items():
        body.add_field(key, value)
    return body


RAW_FORM_TYPE = "multipart/form-data; boundary=b0undary"


def raw_form(data: bytes, filename: str) -> bytes:
    """A form as a browser sends it: the filename unquoted (aiohttp's client would percent-encode it)."""
    return (b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="' + filename.encode()
            + b'"\r\nContent-Type: application/octet-stream\r\n\r\n' + data + b"\r\n--b0undary--\r\n")


async def fetch(agent, file_id, taskid):
    url = FILES_PATH.format(file_id=file_id)
    async with agent.client.get(url, params={"taskid": taskid}, headers={TOKEN_HEADER: agent.token}) as resp:
        return resp.status, await resp.read()


async def test_a_raw_upload_and_a_form_upload(alice, store):
    data = os.urandom(500_000)  # more than a JSON body may hold
    status, body = await upload(alice, data, name="weights.bin")
    assert status == 201 and set(body) == {"file_id", "name", "size"}
    assert (body["name"], body["size"]) == ("weights.bin", len(data))
    account = await store.accounts.get_by_name("alice")
    [record] = await store.files.of_account(account.id, [body["file_id"]])
    assert record.sha256 == hashlib.sha256(data).hexdigest()

    status, body = await upload(alice, form(b"a,b\n1,2\n", filename="table.csv"))
    assert status == 201 and (body["name"], body["size"]) == ("table.csv", 8)
    status, body = await upload(alice, form(b"x", filename="ignored.txt"), name="chosen.txt")
    assert status == 201 and body["name"] == "chosen.txt"  # ?name= wins
    status, body = await upload(alice, b"")  # no name anywhere: the file id is its name
    assert status == 201 and body["name"] == body["file_id"] and body["size"] == 0
    status, body = await upload(alice, b"raw", content_type=None)  # no type: the body is the file
    assert status == 201 and body["size"] == 3


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../../etc/passwd", "x" * 256, "é" * 128])
async def test_names_must_be_plain_file_names(alice, helpers, name):
    status, body = await upload(alice, b"x", name=name)
    helpers.assert_error(status, body, 422, 3)
    status, body = await upload(alice, raw_form(b"x", filename=name or "a/b"), content_type=RAW_FORM_TYPE)
    helpers.assert_error(status, body, 422, 3)


async def test_uploads_past_the_bound_are_refused(alice, helpers, config):
    too_big = b"x" * (config.max_file_bytes + 1)
    status, body = await upload(alice, too_big, name="big")  # on its Content-Length
    helpers.assert_error(status, body, 413, 12)

    async def stream():  # no Content-Length: once it passes the bound
        for i in range(0, len(too_big), 50_000):
            yield too_big[i:i + 50_000]
    status, body = await upload(alice, stream(), name="big")
    helpers.assert_error(status, body, 413, 12)
    status, body = await upload(alice, form(too_big))
    helpers.assert_error(status, body, 413, 12)
    # Exactly the bound is fine, and JSON calls keep their own 256 KiB bound.
    assert (await upload(alice, too_big[:-1], name="big"))[0] == 201


async def test_bodies_that_are_not_a_file(alice, helpers):
    status, body = await upload(alice, b"{}", content_type="application/json")
    helpers.assert_error(status, body, 415, 13)
    status, body = await upload(alice, form(b"x", field="upload"))  # the part must be "file"
    helpers.assert_error(status, body, 422, 3)
    status, body = await upload(alice, form(b"x", comment="extra"))  # and the only one
    helpers.assert_error(status, body, 422, 3)
    status, body = await upload(alice, b"not a form", content_type="multipart/form-data; boundary=xyz")
    assert status in (400, 422), body
    helpers.assert_error(status, body, status, 2 if status == 400 else 3)
    status, body = await upload(alice, b"--xyz\r\nbroken", content_type="multipart/form-data")  # no boundary
    helpers.assert_error(status, body, 400, 2)
    status, body = await upload(alice, "--xyz\r\n\U0009a42aé--xyz--\r\n".encode(),  # a part head that is no header
                                content_type="multipart/form-data; boundary=xyz")
    helpers.assert_error(status, body, 400, 2)


# --- inputs of tasks ------------------------------------------------------------------------


async def test_inputs_reach_the_agent_in_the_start_and_the_restart(alice, agent, helpers):
    data = os.urandom(5000)
    _, first = await upload(alice, data, name="a.bin")
    _, second = await upload(alice, b"hello", name="b.txt")
    inputs = [first["file_id"], second["file_id"]]
    status, body = await alice.addtask(agent.hwid, inputs=inputs)
    assert status == 200
    taskid = body["taskid"]
    command = await agent.command()
    expected = [{"file_id": f["file_id"], "name": f["name"], "size": f["size"]} for f in (first, second)]
    assert command["inputs"] == expected
    await agent.ack(command["id"])
    assert await fetch(agent, first["file_id"], taskid) == (200, data)
    assert await fetch(agent, second["file_id"], taskid) == (200, b"hello")

    await agent.state(taskid, 4)
    await alice.wait_state(taskid, 4)
    assert (await alice.restarttask(taskid))[0] == 200
    restart = await agent.command()
    assert restart["op"] == "restart" and restart["inputs"] == expected


async def test_only_the_executor_of_a_live_task_listing_the_file_gets_it(alice, owner, agent, new_agent):
    _, listed = await upload(alice, b"in", name="in.txt")
    _, unlisted = await upload(alice, b"other", name="other.txt")
    status, body = await alice.addtask(agent.hwid, inputs=[listed["file_id"]])
    taskid = body["taskid"]
    other = await new_agent(owner)
    assert (await fetch(other, listed["file_id"], taskid))[0] == 404
    assert (await fetch(agent, unlisted["file_id"], taskid))[0] == 404
    assert (await fetch(agent, listed["file_id"], "nosuchtask"))[0] == 404
    assert (await fetch(agent, "nosuchfile", taskid))[0] == 404
    async with agent.client.get(FILES_PATH.format(file_id=listed["file_id"]), params={"taskid": taskid},
                                headers={"api-key": alice.key}) as resp:
        assert resp.status == 401
    await alice.deltask(taskid)
    assert (await fetch(agent, listed["file_id"], taskid))[0] == 404


async def test_addtask_refuses_inputs_it_cannot_give(alice, new_account, agent, helpers):
    bob = await new_account("bob")
    _, mine = await upload(alice, b"1", name="same.txt")
    _, also = await upload(alice, b"2", name="same.txt")
    _, theirs = await upload(bob, b"3", name="theirs.txt")
    for inputs, word in (
        (["nosuch"], "nosuch"),
        ([theirs["file_id"]], theirs["file_id"]),
        ([mine["file_id"], also["file_id"]], "same.txt"),
        ([mine["file_id"]] * 2, "same.txt"),
        ([mine["file_id"]] * (MAX_INPUTS + 1), "inputs"),
        ("not a list", "inputs"),
    ):
        status, body = await alice.addtask(agent.hwid, inputs=inputs)
        assert word in helpers.assert_error(status, body, 422, 3)
    assert (await alice.gettasklist())[1] == []
    await agent.no_command(0.1)
