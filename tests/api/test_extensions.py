"""Calls beyond the contract: one task in detail, an owner's executors, the registry's images."""

import dataclasses
import time

import pytest
from aiohttp import web

from megamind.api.app import create_app
from megamind.api.keys import store_key

DETAIL_KEYS = {"taskid", "ip", "image", "params", "state", "error_msg", "state_name", "hwid",
               "executor_online", "pending_command", "phase", "created_at", "updated_at", "progress", "results",
               "requirements", "command", "env", "workdir", "limits", "priority", "queue_position", "pending_reason",
               "ports", "exit_code", "cancelled", "labels", "price", "billed_seconds", "cost", "placed_at", "started_at",
               "finished_at"}
EXECUTOR_KEYS = {"hwid", "status", "online", "busy", "taskid", "gpus", "cpus", "ram", "network",
                 "calculated_perfomance_rating", "cost", "ip", "last_seen"}


# --- GET /api/v1/task/{taskid} ---------------------------------------------------------


async def test_task_detail_follows_the_task_from_setup_to_running(alice, agent, helpers):
    before = time.time()
    status, body = await alice.addtask(agent.hwid, params="p")
    taskid = body["taskid"]
    status, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert status == 200
    assert set(detail) == DETAIL_KEYS
    assert detail["state"] == 2 and detail["state_name"] == "setup"
    assert detail["pending_command"] == "start"  # sent, not yet carried out
    assert detail["executor_online"] is True and detail["hwid"] == agent.hwid
    assert before <= detail["created_at"] <= time.time()

    assert detail["phase"] is None  # the agent has said nothing yet
    assert (detail["progress"], detail["results"]) == (None, None)
    command = await agent.command()
    for phase in ("pulling", "creating", "starting"):
        await agent.send({"type": "phase", "taskid": taskid, "phase": phase})

        async def reported(expected=phase):
            _, now = await alice.call("GET", f"/api/v1/task/{taskid}")
            return now["phase"] == expected

        await helpers.eventually(reported)
    await agent.state(taskid, 3)
    await alice.wait_state(taskid, 3)
    await agent.ack(command["id"])
    status, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert (detail["state"], detail["state_name"], detail["pending_command"]) == (3, "running", None)
    assert detail["phase"] is None
    assert detail["updated_at"] >= detail["created_at"]
    # The contract's fields are exactly what gettasklist says of the task.
    listed = await alice.task(taskid)
    assert {k: detail[k] for k in listed} == listed


async def test_task_detail_of_a_restart_and_of_an_error(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.state(taskid, 5, "exited with code 3")
    await alice.wait_state(taskid, 5)
    status, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert (detail["state_name"], detail["error_msg"]) == ("error", "exited with code 3")

    assert (await alice.restarttask(taskid))[0] == 200
    status, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert (detail["state_name"], detail["error_msg"], detail["pending_command"]) == ("setup", "", "restart")


async def test_task_detail_shows_unknown_while_the_executor_is_away(alice, agent):
    taskid, _ = await alice.start_task(agent)
    await agent.disconnect()
    status, detail = await alice.call("GET", f"/api/v1/task/{taskid}")
    assert status == 200
    assert (detail["state"], detail["state_name"], detail["executor_online"]) == (1, "unknown", False)


async def test_task_detail_of_unknown_foreign_or_deleted_tasks_is_not_found(alice, new_account, agent, helpers):
    bob = await new_account("bob")
    taskid, _ = await alice.start_task(agent)
    status, body = await bob.call("GET", f"/api/v1/task/{taskid}")
    helpers.assert_error(status, body, 404, 7)
    status, body = await alice.call("GET", "/api/v1/task/nosuchtask")
    helpers.assert_error(status, body, 404, 7)
    assert (await alice.deltask(taskid))[0] == 200
    status, body = await alice.call("GET", f"/api/v1/task/{taskid}")
    helpers.assert_error(status, body, 404, 7)


@pytest.mark.parametrize("path", ["/api/v1/task/x", "/api/v1/executors", "/api/v1/images"])
async def test_extensions_need_an_api_key(client, path, helpers):
    async with client.get(path) as resp:
        helpers.assert_error(resp.status, await resp.json(), 401, 4)
    async with client.get(path, headers={"api-key": "mk_wrong"}) as resp:
        helpers.assert_error(resp.status, await resp.json(), 401, 4)


@pytest.mark.parametrize("path", ["/api/v1/executors", "/api/v1/images", "/api/v1/task/x"])
async def test_extensions_answer_wrong_methods_with_405(alice, path, helpers):
    status, body = await alice.call("POST", path)
    helpers.assert_error(status, body, 405, 11)


# --- GET /api/v1/executors -------------------------------------------------------------


async def test_an_owner_sees_its_executors_free_busy_and_offline(alice, owner, new_agent, helpers):
    first = await new_agent(owner, cost=0.5)
    second = await new_agent(owner, hardware={**helpers.HARDWARE, "gpus": []}, cost=1.25)
    status, items = await owner.call("GET", "/api/v1/executors")
    assert status == 200
    assert [i["hwid"] for i in items] == [first.hwid, second.hwid]  # in the order registered
    assert all(set(i) == EXECUTOR_KEYS for i in items)
    one, two = items
    assert (one["status"], one["online"], one["busy"], one["taskid"]) == ("free", True, False, None)
    assert {k: one[k] for k in ("gpus", "cpus", "ram", "network", "calculated_perfomance_rating")} == helpers.HARDWARE
    assert (one["cost"], two["cost"], two["gpus"]) == (0.5, 1.25, [])
    assert one["ip"] == "127.0.0.1" and one["last_seen"] <= time.time()

    # A customer's task makes it busy; whose task it is stays the customer's business.
    await alice.start_task(first)
    # The owner's own task is named.
    own, _ = await owner.start_task(second)
    await second.disconnect()
    status, (one, two) = await owner.call("GET", "/api/v1/executors")
    assert (one["status"], one["busy"], one["taskid"]) == ("busy", True, None)
    assert (two["status"], two["online"], two["busy"], two["taskid"]) == ("offline", False, True, own)


async def test_an_executor_whose_deleted_task_is_still_being_removed_is_busy_with_no_task(owner, agent):
    taskid, _ = await owner.start_task(agent)
    await owner.deltask(taskid)
    remove = await agent.command()
    status, [item] = await owner.call("GET", "/api/v1/executors")
    assert (item["status"], item["busy"], item["taskid"]) == ("busy", True, None)
    await agent.ack(remove["id"])
    status, [item] = await owner.call("GET", "/api/v1/executors")
    assert (item["status"], item["busy"], item["taskid"]) == ("free", False, None)


async def test_executors_lists_only_the_callers_own(alice, owner, agent):
    status, items = await alice.call("GET", "/api/v1/executors")
    assert (status, items) == (200, [])
    status, items = await owner.call("GET", "/api/v1/executors")
    assert [i["hwid"] for i in items] == [agent.hwid]


async def test_a_registered_executor_that_never_connected_is_offline(owner, new_agent):
    agent = await new_agent(owner, connect=False)
    status, [item] = await owner.call("GET", "/api/v1/executors")
    assert (item["hwid"], item["status"], item["online"], item["last_seen"]) == (agent.hwid, "offline", False, None)


# --- GET /api/v1/images ----------------------------------------------------------------

CATALOG = {
    "helloworld": ["latest", "1.0"],
    "ml/trainer": [f"v{i}" for i in range(5)],  # more tags than one page
    "python-example": ["latest"],
    "emptied": None,  # every tag deleted: the registry answers tags null
    "gone": "404",  # listed, but its tags answer 404
}


def fake_registry_app(catalog: dict, page: int = 2) -> web.Application:
    """A Distribution registry's listing API: pages of n, the next one in a Link header."""

    def paged(request: web.Request, items: list[str], path: str, key: str, extra: dict) -> web.Response:
        n = int(request.query.get("n", page))
        n = min(n, page)
        last = request.query.get("last")
        rest = [i for i in sorted(items) if last is None or i > last]
        chunk = rest[:n]
        headers = {}
        if len(rest) > n:
            headers["Link"] = f'<{path}?last={chunk[-1]}&n={n}>; rel="next"'
        return web.json_response({**extra, key: chunk}, headers=headers)

    async def catalog_view(request):
        return paged(request, list(catalog), "/v2/_catalog", "repositories", {})

    async def tags_view(request):
        name = request.match_info["name"]
        tags = catalog.get(name, "404")
        if tags == "404":
            return web.json_response({"errors": [{"code": "NAME_UNKNOWN"}]}, status=404)
        if tags is None:
            return web.json_response({"name": name, "tags": None})
        return paged(request, tags, f"/v2/{name}/tags/list", "tags", {"name": name})

    app = web.Application()
    app.router.add_get("/v2/_catalog", catalog_view)
    app.router.add_get("/v2/{name:.+}/tags/list", tags_view)
    return app


@pytest.fixture
def api_with_registry(aiohttp_server, aiohttp_client, config, tmp_path):
    """An API whose --registry is the given fake registry app (or a closed port); returns a caller."""

    async def make(registry_app: web.Application | None):
        if registry_app is None:
            address = "127.0.0.1:9"  # discard: nothing listens there
        else:
            server = await aiohttp_server(registry_app)
            address = f"127.0.0.1:{server.port}"
        cfg = dataclasses.replace(config, registry=address, db_path=tmp_path / "images.sqlite")
        api = await aiohttp_client(create_app(cfg))
        _, key = await api.app[store_key].accounts.create("carol")

        async def get_images():
            async with api.get("/api/v1/images", headers={"api-key": key}) as resp:
                return resp.status, await resp.json()
        return get_images

    return make


async def test_images_lists_every_tag_of_every_repository(api_with_registry):
    get_images = await api_with_registry(fake_registry_app(CATALOG))
    status, items = await get_images()
    assert status == 200
    assert [i["image"] for i in items] == [
        "megamind.network/helloworld:1.0",
        "megamind.network/helloworld:latest",
        *[f"megamind.network/ml/trainer:v{i}" for i in range(5)],
        "megamind.network/python-example:latest",
    ]
    assert items[2] == {"image": "megamind.network/ml/trainer:v0", "name": "ml/trainer", "tag": "v0",
                        "owner": None, "public": False}


async def test_an_empty_registry_has_no_images(api_with_registry):
    get_images = await api_with_registry(fake_registry_app({}))
    assert await get_images() == (200, [])


async def test_an_unreachable_registry_is_unavailable(api_with_registry, helpers):
    get_images = await api_with_registry(None)
    status, body = await get_images()
    message = helpers.assert_error(status, body, 503, 15)
    assert "127.0.0.1:9" in message


async def test_a_registry_that_fails_is_unavailable(api_with_registry, helpers):
    app = web.Application()

    async def broken(request):
        return web.Response(status=500, text="oops")
    app.router.add_get("/v2/_catalog", broken)
    get_images = await api_with_registry(app)
    status, body = await get_images()
    assert "HTTP 500" in helpers.assert_error(status, body, 503, 15)


async def test_links_to_another_host_are_not_followed(api_with_registry):
    app = web.Application()

    async def catalog(request):
        return web.json_response({"repositories": ["a"]},
                                 headers={"Link": '<http://elsewhere.invalid/v2/_catalog?last=a>; rel="next"'})

    async def tags(request):
        return web.json_response({"name": "a", "tags": ["t"]})
    app.router.add_get("/v2/_catalog", catalog)
    app.router.add_get("/v2/a/tags/list", tags)
    get_images = await api_with_registry(app)
    assert await get_images() == (200, [{"image": "megamind.network/a:t", "name": "a", "tag": "t",
                                         "owner": None, "public": False}])


async def test_a_registry_that_links_on_forever_is_cut_off(api_with_registry):
    app = web.Application()
    calls = []

    async def catalog(request):
        calls.append(request.path_qs)
        return web.json_response({"repositories": ["a"]}, headers={"Link": '</v2/_catalog?last=a&n=1>; rel="next"'})

    async def tags(request):
        return web.json_response({"name": "a", "tags": ["t"]})
    app.router.add_get("/v2/_catalog", catalog)
    app.router.add_get("/v2/a/tags/list", tags)
    get_images = await api_with_registry(app)
    assert await get_images() == (200, [{"image": "megamind.network/a:t", "name": "a", "tag": "t",
                                         "owner": None, "public": False}])
    assert 1 < len(calls) <= 100


async def test_a_phase_the_protocol_does_not_know_closes_the_link(alice, agent, hub, helpers):
    taskid, _ = await alice.start_task(agent)
    await agent.send({"type": "phase", "taskid": taskid, "phase": "dancing"})

    async def dropped():
        return not hub.is_online(agent.hwid)

    await helpers.eventually(dropped)
