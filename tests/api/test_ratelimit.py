"""Per api-key rate limits: 429 with Retry-After and the JSON error, per server and per key."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from megamind.api.app import create_app
from megamind.api.keys import store_key
from megamind.api.ratelimit import parse_rate_limit
from megamind.config import ServerConfig


@pytest.fixture
def config(config):
    return dataclasses.replace(config, rate_limit="5/second")


async def test_past_the_limit_answers_429_with_retry_after(client, alice, helpers):
    for _ in range(5):
        status, _ = await alice.gettasklist()
        assert status == 200
    async with client.get("/api/v1/gettasklist", headers={"api-key": alice.key}) as resp:
        body = await resp.json()
        message = helpers.assert_error(resp.status, body, 429, 14)
        assert "5 per 1 second" in message
        assert 1 <= int(resp.headers["Retry-After"]) <= 2


async def test_limits_are_counted_per_key(alice, new_account):
    bob = await new_account("bob")
    for _ in range(5):
        assert (await alice.gettasklist())[0] == 200
    assert (await alice.gettasklist())[0] == 429
    assert (await bob.gettasklist())[0] == 200  # another key has its own budget


async def test_a_key_can_carry_its_own_limit(alice, store, helpers):
    """A key's own limit applies once the API reads the key again (its cache holds a caller
    for key_cache_ttl_s): polled for until it shows, each time by what only it allows."""
    keys = await store.accounts.list_keys(alice.name)
    await store.accounts.set_rate_limit(alice.name, keys[0].id, "60/minute;1000/hour")

    async def twenty_at_once():  # above the server's 5/second
        return [(await alice.gettasklist())[0] for _ in range(20)] == [200] * 20
    await helpers.eventually(twenty_at_once)

    await store.accounts.set_rate_limit(alice.name, keys[0].id, "2/minute")

    async def two_a_minute():
        status, body = await alice.gettasklist()
        return status == 429 and "2 per 1 minute" in body["message"]
    await helpers.eventually(two_a_minute)
    statuses = [(await alice.gettasklist())[0] for _ in range(4)]
    assert statuses == [429] * 4


async def test_unlimited_and_malformed_limits():
    assert parse_rate_limit("none") == []
    assert len(parse_rate_limit("60/minute;1000/hour")) == 2
    with pytest.raises(ValueError):
        parse_rate_limit("sixty a minute")


async def test_the_default_leaves_room_for_polling_ten_times_a_second(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(ServerConfig(db_path=tmp_path / "d.sqlite", home=tmp_path)))
    _, key = await client.app[store_key].accounts.create("poller")
    statuses = []
    for _ in range(30):  # three seconds of polling at 10/s, plus a burst of other calls
        async with client.get("/api/v1/gettasklist", headers={"api-key": key}) as resp:
            statuses.append(resp.status)
        await asyncio.sleep(0.1)
    for _ in range(15):
        async with client.get("/api/v1/gethwlist", headers={"api-key": key}) as resp:
            statuses.append(resp.status)
    assert set(statuses) == {200}
