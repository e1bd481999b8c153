import pytest

from megamind.store import Store


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(tmp_path / "db.sqlite")
    yield store
    await store.close()


@pytest.fixture
async def account(store):
    account, _ = await store.accounts.create("alice")
    return account


@pytest.fixture
async def hwid(store, account):
    hwid, _ = await store.executors.register(account.id, {"cpus": ["cpu"]}, 0.5)
    return hwid


