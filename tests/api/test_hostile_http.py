"""Malformed and hostile HTTP on a real socket: a JSON error, a closed connection, no harm."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json

import pytest
from marshmallow import Schema

from megamind.api import bodies, protocol_errors
from megamind.api.app import create_app
from megamind.api.keys import store_key
from megamind.errors import MegamindError
from megamind.protocol import REGISTER_PATH


@pytest.fixture
async def server(aiohttp_server, config):
    return await aiohttp_server(create_app(config), host="127.0.0.1")


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, dict, bytes]:
    """One HTTP answer: the server may keep the socket open after it, so read by length."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", 0))), timeout=10)
    return status, headers, body


async def exchange(server, raw: bytes) -> tuple[int, dict, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await read_answer(reader)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def assert_json_error(status, headers, body, expected_status, code):
    assert status == expected_status, body
    assert headers["content-type"].startswith("application/json")
    parsed = json.loads(body)
    assert set(parsed) == {"code", "message"} and parsed["code"] == code and parsed["message"]
    return parsed["message"]


async def test_a_huge_header_is_refused_with_json(server, alice):
    request = (
        b"GET /api/v1/gettasklist HTTP/1.1\r\nHost: x\r\napi-key: " + alice.key.encode()
        + b"\r\nX-Filler: " + b"a" * 100_000 + b"\r\n\r\n"
    )
    message = assert_json_error(*await exchange(server, request), 400, 2)
    assert "malformed HTTP request" in message


async def test_a_garbage_request_line_is_refused_with_json(server):
    assert_json_error(*await exchange(server, b"\x16\x03\x01 not http at all\r\n\r\n"), 400, 2)


async def test_a_body_announced_larger_than_allowed_is_refused_before_it_is_read(server, alice):
    request = (
        b"POST /api/v1/addtask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"api-key: " + alice.key.encode() + b"\r\nContent-Length: 100000000\r\n\r\n{"
    )
    # 100 MB announced, 1 byte sent: the answer comes without waiting for the rest.
    assert_json_error(*await exchange(server, request), 413, 12)


async def test_a_trickled_body_times_out_with_json(server, alice, monkeypatch):
    monkeypatch.setattr(bodies, "BODY_READ_TIMEOUT_S", 0.5)
    head = (
        b"POST /api/v1/addtask HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\napi-key: " + alice.key.encode() + b"\r\nContent-Length: 500\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(head + b'{"image": ')  # and no more bytes, ever
        await writer.drain()
        status, headers, body = await read_answer(reader)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert_json_error(status, headers, body, 408, 18)


async def test_a_trickled_head_times_out_with_json_and_a_closed_connection(server, alice, monkeypatch):
    monkeypatch.setattr(protocol_errors, "HEADER_READ_TIMEOUT_S", 0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

    async def trickle() -> None:
        # A byte every 0.1 s: never idle, never a whole head (the slowloris pattern).
        with contextlib.suppress(ConnectionError):
            for byte in b"GET /api/v1/gettasklist HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)

    started = asyncio.get_running_loop().time()
    sender = asyncio.create_task(trickle())
    try:
        status, headers, body = await read_answer(reader)
        assert await asyncio.wait_for(reader.read(), timeout=5) == b""  # and the server hung up
    finally:
        sender.cancel()
        writer.close()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    assert_json_error(status, headers, body, 408, 18)
    assert asyncio.get_running_loop().time() - started < 3


async def test_a_head_that_arrives_in_time_is_served_over_keep_alive(server, alice, monkeypatch):
    monkeypatch.setattr(protocol_errors, "HEADER_READ_TIMEOUT_S", 0.5)
    request = b"GET /api/v1/gettasklist HTTP/1.1\r\nHost: x\r\napi-key: " + alice.key.encode() + b"\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for _ in range(3):  # the deadline of one head never reaches the next request
            writer.write(request[:10])
            await asyncio.sleep(0.3)
            writer.write(request[10:])
            status, _, body = await read_answer(reader)
            assert status == 200 and json.loads(body) == []
            await asyncio.sleep(0.7)  # idle between requests is keep-alive, not a slow head
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_the_server_keeps_serving_after_all_that(server, alice):
    await exchange(server, b"\x00\x01\x02\r\n\r\n")
    status, headers, body = await exchange(
        server,
        b"GET /api/v1/gettasklist HTTP/1.1\r\nHost: x\r\nConnection: close\r\napi-key: "
        + alice.key.encode() + b"\r\n\r\n",
    )
    assert status == 200 and json.loads(body) == []


# --- nesting and escapes: every depth, every call that reads a JSON body -------------

BODY_CALLS = [
    ("POST", "/api/v1/addtask"),
    ("POST", "/api/v1/estimate"),
    ("PATCH", "/api/v1/account"),
    ("POST", REGISTER_PATH),
]
# None, a plain escape, lone halves of a pair (not characters), a whole pair.
ESCAPES = ["", "\\u0041", "\\ud800", "\\udfff", "\\ud83d\\ude00"]
LONE = {"\\ud800", "\\udfff"}
SHAPES = ["array", "object", "top-array"]


def nested(depth: int, shape: str, escape: str) -> bytes:
    """A body ``depth`` containers deep (the outermost is 1), its innermost string holding ``escape``."""
    leaf = f'"x{escape}"'
    if shape == "top-array":
        return ("[" * depth + leaf + "]" * depth).encode()
    inner = depth - 1
    opening, closing = ("[", "]") if shape == "array" else (f'{{"k{escape}":', "}")
    return ('{"params":' + opening * inner + leaf + closing * inner + "}").encode()


def expected(depth: int, escape: str) -> tuple[int, int] | None:
    """The answer the body must get, where it is fixed: past the depth bound or with a lone half, 400."""
    if depth > bodies.MAX_JSON_DEPTH or escape in LONE:
        return 400, 2
    return None  # a body of the wrong shape: 422 (code 3), or the call's own refusal


def test_every_depth_with_every_escape_is_read_without_a_server_error():
    """The body's reading itself, at every depth from 1 to past Python's recursion limit: a 400
    or a 422, never another exception (the lone-surrogate walk once recursed after json.loads
    had taken a body 340 to 950 levels deep, and answered 500)."""
    for depth in range(1, 2101):
        for shape in SHAPES:
            for escape in ("", "\\u0041", "\\ud800"):  # none, one that is a character, a lone half
                try:
                    bodies.parse_body(nested(depth, shape, escape), Schema())
                except MegamindError as exc:
                    assert exc.status in (400, 422), (depth, shape, escape, exc)
                    if want := expected(depth, escape):
                        assert (exc.status, exc.code) == want, (depth, shape, escape, exc)
                else:
                    assert expected(depth, escape) is None and shape != "top-array", (depth, shape, escape)


# Each side of the bound, the range where the walk once recursed, each side of Python's
# recursion limit, and far past it.
DEPTHS = sorted({1, 2, bodies.MAX_JSON_DEPTH - 1, bodies.MAX_JSON_DEPTH, bodies.MAX_JSON_DEPTH + 1,
                 100, 339, 340, 341, 500, 700, 949, 950, 951, 990, 999, 1000, 1001, 1500, 2000, 3000, 10_000})


@pytest.fixture
def unlimited(config):
    """Every answer is the body's, never a 429: no limit on calls, none on registrations."""
    return dataclasses.replace(config, rate_limit="none", register_rate_limit="none")


@pytest.mark.parametrize(("method", "path"), BODY_CALLS, ids=[f"{m} {p}" for m, p in BODY_CALLS])
async def test_every_call_with_a_body_answers_deep_bodies_with_a_json_4xx(aiohttp_client, unlimited, helpers,
                                                                         method, path):
    client = await aiohttp_client(create_app(unlimited))
    _, key = await client.app[store_key].accounts.create("alice")
    for depth in DEPTHS:
        for shape in SHAPES:
            for escape in ESCAPES:
                headers = {"api-key": key, "Content-Type": "application/json"}
                async with client.request(method, path, data=nested(depth, shape, escape), headers=headers) as resp:
                    assert resp.content_type == "application/json", (depth, shape, escape, await resp.text())
                    status, body = resp.status, await resp.json()
                assert status in (400, 422), (depth, shape, escape, status, body)
                want = expected(depth, escape)
                helpers.assert_error(status, body, *(want or (status, body.get("code"))))
