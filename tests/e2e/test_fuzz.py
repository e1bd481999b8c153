"""Property tests against the real server process: whatever comes in, no 5xx, always {code, message}.

Each call is fed generated paths, ids, headers and bodies (valid JSON of every shape,
and raw bytes). The server must answer every one with a 2xx or with a 4xx JSON error.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from megamind.api.bodies import MAX_JSON_DEPTH
from megamind.protocol import REGISTER_PATH

from .api import Api

CALLS = [
    ("GET", "/api/v1/gethwlist"),
    ("POST", "/api/v1/addtask"),
    ("DELETE", "/api/v1/deltask/{id}"),
    ("GET", "/api/v1/gettasklist"),
    ("POST", "/api/v1/restarttask/{id}"),
    ("GET", "/api/v1/gettasklogs/{id}"),
]
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
addtask_like = st.fixed_dictionaries(
    {},
    optional={
        "image": st.one_of(st.text(max_size=80), st.just("megamind.network/megatest"), json_values),
        "params": st.one_of(st.text(max_size=200), json_values),
        "hwid": st.one_of(st.text(max_size=40), json_values),
    },
)
ids = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#%"), min_size=1, max_size=80)


def assert_sane(answer) -> None:
    assert answer.status < 500, answer
    if answer.status >= 400:
        body = json.loads(answer.raw)
        assert set(body) == {"code", "message"}, body
        assert isinstance(body["code"], int) and body["code"] != 0 and body["message"]


@FUZZ
@given(call=st.sampled_from(CALLS), taskid=ids, body=st.one_of(addtask_like, json_values))
def test_any_json_body_on_any_call(server, fuzzer_key, call, taskid, body):
    method, path = call
    from urllib.parse import quote

    answer = Api(server.url, fuzzer_key).call(method, path.format(id=quote(taskid, safe="")), body)
    assert_sane(answer)
    if method == "POST" and path.endswith("addtask") and answer.status == 200:
        Api(server.url, fuzzer_key).deltask(answer.json["taskid"])


@FUZZ
@given(call=st.sampled_from(CALLS), raw=st.binary(max_size=300),
       content_type=st.sampled_from(["application/json", "text/plain", "application/xml", ""]))
def test_any_bytes_on_any_call(server, fuzzer_key, call, raw, content_type):
    method, path = call
    headers = {"Content-Type": content_type} if content_type else {}
    assert_sane(Api(server.url, fuzzer_key).call(method, path.format(id="x"), raw=raw, headers=headers))


@FUZZ
@given(key=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60))
def test_any_api_key(server, key):
    answer = Api(server.url, key or None).call("GET", "/api/v1/gettasklist")
    assert_sane(answer)
    assert answer.status == 401


# --- bodies nested to any depth, with any escape, on every call that reads a JSON body ---

BODY_CALLS = [("POST", "/api/v1/addtask"), ("POST", "/api/v1/estimate"), ("PATCH", "/api/v1/account")]
ESCAPES = ["", "\\u0041", "\\u00e9", "\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud83d\\ude00"]
LONE = {"\\ud800", "\\udbff", "\\udc00", "\\udfff"}


@pytest.fixture(scope="module")
def deep_key(server) -> str:
    """An account of its own with no rate limit: every answer is the body's, never a 429."""
    key = server.create_account("depth-fuzzer")
    server.set_rate_limit("depth-fuzzer", "none")
    return key


@st.composite
def nested_bodies(draw) -> tuple[bytes, int, bool]:
    """About a kilobyte or more: an object whose `params` holds arrays and objects nested to
    any depth up to far past Python's recursion limit, with escapes in keys and strings."""
    depth = draw(st.integers(1, 2500))
    escapes = [draw(st.sampled_from(ESCAPES)) for _ in range(3)]
    kinds = draw(st.lists(st.sampled_from("[{"), min_size=depth - 1, max_size=depth - 1))
    opening = "".join("[" if kind == "[" else f'{{"k{escapes[0]}":' for kind in kinds)
    closing = "".join("]" if kind == "[" else "}" for kind in reversed(kinds))
    padding = "x" * draw(st.integers(0, 1000))
    body = f'{{"{padding}{escapes[1]}":1,"params":{opening}"v{escapes[2]}"{closing}}}'
    lone = any(e in LONE for e in (escapes[1], escapes[2])) or (escapes[0] in LONE and "{" in kinds)
    return body.encode(), depth, lone


def assert_refused_as_it_should(answer, depth: int, lone: bool) -> None:
    assert_sane(answer)
    assert answer.status in (400, 422), answer
    if depth > MAX_JSON_DEPTH or lone:  # past the bound, or half a UTF-16 pair: not even read
        assert (answer.status, answer.json["code"]) == (400, 2), (depth, lone, answer)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(call=st.sampled_from(BODY_CALLS), nested=nested_bodies())
def test_any_depth_with_any_escape_is_a_json_4xx(server, deep_key, call, nested):
    body, depth, lone = nested
    assert_refused_as_it_should(Api(server.url, deep_key).call(*call, raw=body), depth, lone)


# Registrations are limited per key (30 a minute by default), refused ones counted too.
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(nested=nested_bodies())
def test_the_agents_registration_takes_any_depth_with_any_escape_as_a_json_4xx(server, deep_key, nested):
    body, depth, lone = nested
    assert_refused_as_it_should(Api(server.url, deep_key).call("POST", REGISTER_PATH, raw=body), depth, lone)
