"""Property tests against the real server process: whatever comes in, no 5xx, always {code, message}.

Each call is fed generated paths, ids, headers and bodies (valid JSON of every shape,
and raw bytes). The server must answer every one with a 2xx or with a 4xx JSON error.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
