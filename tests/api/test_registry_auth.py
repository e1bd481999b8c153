"""The token server, repository visibility, where to push, and the pull token of each start
command, through the real application (the registry is not needed: tokens are checked
with the server's key, as the registry checks them)."""

from __future__ import annotations

import asyncio
import base64

import jwt
import pytest
from aiohttp import web

from megamind.api.keys import signing_key_key, store_key
from megamind.registryauth.tokens import (
    ALGORITHM,
    ISSUER,
    MAX_SCOPES,
    SERVICE,
    TASK_PULL_TTL_S,
    TOKEN_TTL_S,
)

TOKEN_PATH = "/api/registry/token"


def basic(name: str, key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{key}".encode()).decode()}


def decoded(client, token: str) -> dict:
    """The claims, checked as the registry checks them: our key, issuer, audience, times."""
    key = client.app[signing_key_key]
    assert jwt.get_unverified_header(token)["kid"] == key.key_id
    return jwt.decode(token, key.public_key, algorithms=[ALGORITHM], audience=SERVICE, issuer=ISSUER)


async def ask(client, scopes: list[str], who=None, service: str | None = SERVICE) -> tuple[int, dict]:
    params = [("scope", s) for s in scopes] + ([("service", service)] if service is not None else [])
    headers = basic(who.name, who.key) if who is not None else {}
    async with client.get(TOKEN_PATH, params=params, headers=headers) as resp:
        return resp.status, await resp.json()


async def granted(client, scopes: list[str], who=None) -> dict[str, list[str]]:
    status, body = await ask(client, scopes, who)
    assert status == 200, body
    return {entry["name"]: entry["actions"] for entry in decoded(client, body["token"])["access"]}


@pytest.fixture
async def bob(new_account):
    return await new_account("bob")


# --- the token server --------------------------------------------------------------------


async def test_the_answer_is_the_token_specifications(client, alice):
    status, body = await ask(client, [], alice)
    assert status == 200 and set(body) == {"token", "access_token", "expires_in", "issued_at"}
    assert body["token"] == body["access_token"] and body["expires_in"] == TOKEN_TTL_S
    assert body["issued_at"].endswith("Z")
    claims = decoded(client, body["token"])
    assert claims["sub"] == "alice" and claims["access"] == [] and claims["exp"] - claims["iat"] == TOKEN_TTL_S


async def test_the_first_push_claims_a_repository_and_only_its_owner_writes_it(client, alice, bob, store):
    assert await granted(client, ["repository:alice-img:pull,push"], alice) == {"alice-img": ["pull", "push"]}
    repository = await store.repositories.get("alice-img")
    assert (repository.owner, repository.public) == ("alice", False)
    everything = ["repository:alice-img:pull,push,delete"]
    assert await granted(client, everything, alice) == {"alice-img": ["pull", "push", "delete"]}
    assert await granted(client, everything, bob) == {"alice-img": []}
    assert await granted(client, everything) == {"alice-img": []}  # anonymous
    assert (await store.repositories.get("alice-img")).owner == "alice"


async def test_a_public_repository_is_pulled_by_anyone_and_written_by_its_owner_only(client, alice, bob, store):
    await granted(client, ["repository:shared:push"], alice)
    await store.repositories.set_public((await store.accounts.get_by_name("alice")).id, "shared", True)
    everything = ["repository:shared:pull,push,delete"]
    assert await granted(client, everything, bob) == {"shared": ["pull"]}
    assert await granted(client, everything) == {"shared": ["pull"]}
    assert await granted(client, everything, alice) == {"shared": ["pull", "push", "delete"]}


async def test_pulling_a_repository_nobody_owns_claims_nothing_and_grants_nothing(client, alice, store):
    assert await granted(client, ["repository:nobodys:pull"], alice) == {"nobodys": []}
    assert await store.repositories.get("nobodys") is None
    assert await granted(client, ["repository:nobodys:push"]) == {"nobodys": []}  # anonymous claims nothing
    assert await store.repositories.get("nobodys") is None


async def test_two_first_pushes_at_once_make_one_owner(client, alice, bob, store):
    answers = await asyncio.gather(*(granted(client, ["repository:race:pull,push"], who)
                                     for who in (alice, bob) * 5))
    owner = (await store.repositories.get("race")).owner
    # Exactly the owner's five requests were granted the push; the other account's none.
    assert sorted(a["race"] for a in answers) == [[]] * 5 + [["pull", "push"]] * 5
    assert owner in ("alice", "bob")


async def test_several_scopes_in_one_request(client, alice):
    await granted(client, ["repository:one:push"], alice)
    assert await granted(client, ["repository:one:pull repository:two:push", "junk", "registry:catalog:*"],
                         alice) == {"one": ["pull"], "two": ["push"]}


@pytest.mark.parametrize("header", [
    "Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode(), "Bearer abc", "Basic",
])
async def test_malformed_credentials_are_401(client, header, helpers):
    async with client.get(TOKEN_PATH, headers={"Authorization": header}) as resp:
        helpers.assert_error(resp.status, await resp.json(), 401, 4)


async def test_a_key_of_another_account_or_an_unknown_key_is_401(client, alice, bob, helpers):
    for name, key in (("bob", alice.key), ("alice", "mk_unknown"), ("nobody", alice.key)):
        async with client.get(TOKEN_PATH, headers=basic(name, key)) as resp:
            helpers.assert_error(resp.status, await resp.json(), 401, 4)


async def test_a_revoked_key_is_401(client, alice, store, helpers):
    [info] = await store.accounts.list_keys("alice")
    await store.accounts.revoke_key("alice", info.id)
    status, body = await ask(client, [], alice)
    helpers.assert_error(status, body, 401, 4)


async def test_another_service_or_too_many_scopes_are_400(client, alice, helpers):
    status, body = await ask(client, [], alice, service="elsewhere")
    assert "megamind-registry" in helpers.assert_error(status, body, 400, 2)
    status, body = await ask(client, [f"repository:r{i}:pull" for i in range(MAX_SCOPES + 1)], alice)
    helpers.assert_error(status, body, 400, 2)
    status, _ = await ask(client, [], alice, service=None)  # the engine always sends it; optional here
    assert status == 200


# --- where to push, and visibility --------------------------------------------------------


async def test_registry_names_the_address_and_the_login(alice, helpers):
    assert await alice.call("GET", "/api/v1/registry") == (200, {
        "registry": helpers.REGISTRY, "account": "alice", "image_prefix": "megamind.network"})


async def test_only_the_owner_publishes_and_unpublishes(client, alice, bob, helpers):
    await granted(client, ["repository:team/app:push"], alice)
    status, body = await alice.call("PATCH", "/api/v1/images", json={"name": "team/app", "public": True})
    assert (status, body) == (200, {"name": "team/app", "image": "megamind.network/team/app", "owner": "alice",
                                    "public": True})
    assert await granted(client, ["repository:team/app:pull"], bob) == {"team/app": ["pull"]}
    for name in ("team/app", "nobody-pushed-this"):
        status, body = await bob.call("PATCH", "/api/v1/images", json={"name": name, "public": False})
        helpers.assert_error(status, body, 403, 5)
    status, body = await alice.call("PATCH", "/api/v1/images", json={"name": "team/app", "public": False})
    assert (status, body["public"]) == (200, False)
    assert await granted(client, ["repository:team/app:pull"], bob) == {"team/app": []}


@pytest.mark.parametrize("body", [
    {"name": "Upper", "public": True}, {"name": "a:tag", "public": True}, {"name": "", "public": True},
    {"name": "a", "public": "yes"}, {"name": "a", "public": 1}, {"name": "a"}, {"public": True}, {"name": "a", "public": True, "x": 1},
    {"name": "a" * 300, "public": True},
])
async def test_a_bad_visibility_request_is_422(alice, body, helpers):
    status, answer = await alice.call("PATCH", "/api/v1/images", json=body)
    helpers.assert_error(status, answer, 422, 3)


# --- the executors' pull tokens ------------------------------------------------------------


async def test_a_start_carries_a_pull_token_for_its_one_repository(client, alice, agent, store):
    await granted(client, ["repository:helloworld:push"], alice)  # alice owns the test image
    taskid, command = await alice.start_task(agent)
    claims = decoded(client, command["pull_token"])
    assert claims["sub"] == "alice"
    assert claims["access"] == [{"type": "repository", "name": "helloworld", "actions": ["pull"]}]
    assert claims["exp"] - claims["iat"] == TASK_PULL_TTL_S
    # Minted as it is sent, never stored with the command.
    rows = await store.db.fetchall("SELECT payload FROM commands WHERE taskid = ?", (taskid,))
    assert rows and all("pull_token" not in row["payload"] for row in rows)
    # A restart carries one too.
    status, _ = await alice.restarttask(taskid)
    assert status == 200
    restart = await agent.command()
    assert restart["op"] == "restart" and decoded(client, restart["pull_token"])["access"] == claims["access"]


async def test_a_task_of_an_account_that_may_not_pull_gets_a_token_that_grants_nothing(
        client, alice, bob, agent, store):
    await granted(client, ["repository:helloworld:push"], alice)
    status, body = await bob.addtask(agent.hwid)
    assert status == 200
    command = await agent.command()
    assert decoded(client, command["pull_token"])["access"] == [
        {"type": "repository", "name": "helloworld", "actions": []}]
    await agent.ack(command["id"])

    alice_id = (await store.accounts.get_by_name("alice")).id
    await store.repositories.set_public(alice_id, "helloworld", True)
    status, _ = await bob.restarttask(body["taskid"])
    restart = await agent.command()
    assert decoded(client, restart["pull_token"])["access"][0]["actions"] == ["pull"]


async def test_a_burst_of_one_accounts_starts_shares_one_token(client, alice, owner, new_agent):
    await granted(client, ["repository:helloworld:push"], alice)
    agents = [await new_agent(owner) for _ in range(3)]
    tokens = set()
    for agent in agents:
        status, _ = await alice.addtask(agent.hwid)
        assert status == 200
        tokens.add((await agent.command())["pull_token"])
    assert len(tokens) == 1  # so the agent joins the pulls of one image


# --- the images listing reads the registry with tokens of its own --------------------------


@pytest.fixture
async def listing(aiohttp_server, aiohttp_client, config, tmp_path):
    """An API whose registry is a stand-in that records each request's Authorization."""
    import dataclasses

    from megamind.api.app import create_app

    seen: list[tuple[str, str]] = []
    catalog = {"alice-img": ["1"], "public-img": ["latest"], "unclaimed": ["old"]}

    async def catalog_view(request):
        seen.append((request.path, request.headers.get("Authorization", "")))
        return web.json_response({"repositories": sorted(catalog)})

    async def tags_view(request):
        seen.append((request.path, request.headers.get("Authorization", "")))
        name = request.match_info["name"]
        return web.json_response({"name": name, "tags": catalog[name]})

    app = web.Application()
    app.router.add_get("/v2/_catalog", catalog_view)
    app.router.add_get("/v2/{name:.+}/tags/list", tags_view)
    registry = await aiohttp_server(app)
    api = await aiohttp_client(create_app(dataclasses.replace(
        config, registry=f"127.0.0.1:{registry.port}", db_path=tmp_path / "listing.sqlite")))
    store = api.app[store_key]
    keys = {}
    for name in ("alice", "carol", "bob"):
        account, keys[name] = await store.accounts.create(name)
        if name != "bob":
            await store.repositories.claim(f"{name}-img" if name == "alice" else "public-img", account.id)
    await store.repositories.set_public((await store.accounts.get_by_name("carol")).id, "public-img", True)

    async def images(name: str):
        async with api.get("/api/v1/images", headers={"api-key": keys[name]}) as resp:
            assert resp.status == 200
            return await resp.json()
    return api, images, seen


async def test_the_listing_shows_what_the_caller_may_run_with_owner_and_visibility(listing):
    api, images, seen = listing
    assert await images("alice") == [
        {"image": "megamind.network/alice-img:1", "name": "alice-img", "tag": "1", "owner": "alice", "public": False},
        {"image": "megamind.network/public-img:latest", "name": "public-img", "tag": "latest", "owner": "carol",
         "public": True},
        {"image": "megamind.network/unclaimed:old", "name": "unclaimed", "tag": "old", "owner": None,
         "public": False},
    ]
    assert [i["name"] for i in await images("bob")] == ["public-img", "unclaimed"]  # not alice's private one
    for path, auth in seen:
        claims = decoded(api, auth.removeprefix("Bearer "))
        if path == "/v2/_catalog":
            assert claims["access"] == [{"type": "registry", "name": "catalog", "actions": ["*"]}]
        else:
            name = path.removeprefix("/v2/").removesuffix("/tags/list")
            assert claims["access"] == [{"type": "repository", "name": name, "actions": ["pull"]}]
