import pytest

from megamind.errors import AccountNotFound
from megamind.secrets import API_KEY_PREFIX, hash_secret


def _file_bytes(store):
    path = store.db.path
    data = path.read_bytes()
    for suffix in ("-wal", "-shm"):
        extra = path.with_name(path.name + suffix)
        if extra.exists():
            data += extra.read_bytes()
    return data


async def test_create_returns_a_working_key(store):
    account, key = await store.accounts.create("alice")
    assert key.startswith(API_KEY_PREFIX)
    assert len(key) > 40
    assert (await store.accounts.by_api_key(key)).account == account
    assert await store.accounts.get_by_name("alice") == account
    assert await store.accounts.exists("alice")
    assert not await store.accounts.exists("bob")


async def test_keys_are_stored_hashed(store):
    _, key = await store.accounts.create("alice")
    second = await store.accounts.add_key("alice")
    data = _file_bytes(store)
    for k in (key, second):
        assert k.encode() not in data
        # The hash is there: the bytes read are the right ones.
        assert hash_secret(k).encode() in data
    rows = await store.db.fetchall("SELECT key_hash, prefix FROM api_keys")
    assert {r["key_hash"] for r in rows} == {hash_secret(key), hash_secret(second)}
    assert {r["prefix"] for r in rows} == {key[:8], second[:8]}


async def test_unknown_or_malformed_keys(store):
    await store.accounts.create("alice")
    assert await store.accounts.by_api_key(API_KEY_PREFIX + "nope") is None
    assert await store.accounts.by_api_key("") is None
    assert await store.accounts.by_api_key("mx_not-an-api-key") is None


async def test_executor_token_is_not_an_api_key(store):
    account, _ = await store.accounts.create("alice")
    _, token = await store.executors.register(account.id, {}, 0.0)
    assert await store.accounts.by_api_key(token) is None
    assert (await store.executors.by_token(token)).account_id == account.id


async def test_revoke(store):
    account, first = await store.accounts.create("alice")
    second = await store.accounts.add_key("alice")
    keys = await store.accounts.list_keys("alice")
    assert [k.prefix for k in keys] == [first[:8], second[:8]]
    assert all(k.revoked_at is None for k in keys)

    assert await store.accounts.revoke_key("alice", keys[0].id) is True
    assert await store.accounts.by_api_key(first) is None
    assert (await store.accounts.by_api_key(second)).account == account
    assert await store.accounts.revoke_key("alice", keys[0].id) is False  # already revoked
    keys = await store.accounts.list_keys("alice")
    assert keys[0].revoked_at is not None and keys[1].revoked_at is None


async def test_cannot_revoke_another_accounts_key(store):
    await store.accounts.create("alice")
    _, bob_key = await store.accounts.create("bob")
    bob_key_id = (await store.accounts.list_keys("bob"))[0].id
    assert await store.accounts.revoke_key("alice", bob_key_id) is False
    assert await store.accounts.by_api_key(bob_key) is not None


async def test_unknown_account(store):
    with pytest.raises(AccountNotFound):
        await store.accounts.get_by_name("nobody")
    with pytest.raises(AccountNotFound):
        await store.accounts.add_key("nobody")
    with pytest.raises(AccountNotFound):
        await store.accounts.revoke_key("nobody", 1)
