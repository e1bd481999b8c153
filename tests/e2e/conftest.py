"""End-to-end fixtures: a real registry, real `megamind` processes, the real engine.

Every container a test makes carries the label ``megamind.test=<run id>`` and is
removed by that label when the session ends.

The registry runs with token auth, as everywhere: the session's server is its token
server, and every server of the tests shares its signing key.  megatest is pushed by
the account "publisher" and published, so every account may run it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from megamind.testing import Registry, Server, build_busybox_image, free_port

from .api import Api
from .processes import Executor

TEST_LABEL = "megamind.test"


def pytest_collection_modifyitems(items):
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def run_id() -> str:
    return uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def engine(run_id):
    try:
        client = docker.from_env(version="auto")
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker engine: {exc}. Run the tests with scripts/test, which starts dockerd.")
    yield client
    for container in client.containers.list(all=True, sparse=True, filters={"label": f"{TEST_LABEL}={run_id}"}):
        remove_quietly(container)
    client.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory):
    """The registry; its token server is the session's server, on the port chosen here."""
    root = tmp_path_factory.mktemp("registry")
    reg = Registry(root / "storage", f"http://127.0.0.1:{free_port()}", root / "auth")
    reg.root.mkdir()
    reg.start()
    yield reg
    reg.stop()


# The session's test image, and the server's default image (what dialects' jobs run without one).
TEST_IMAGE = "megamind.network/megatest:latest"


@pytest.fixture(scope="session")
def token_server(registry, tmp_path_factory):
    """The session's server, the registry's token server; `server` once megatest is there."""
    home = tmp_path_factory.mktemp("server")
    srv = Server(home / "megamind.db", registry.address, ("--default-image", TEST_IMAGE), port=registry.api_port,
                 registry_auth_dir=registry.auth_dir)
    srv.start()
    yield srv
    if srv.proc and srv.proc.poll() is None:
        srv.stop()


@pytest.fixture(scope="session")
def publisher(token_server) -> tuple[str, str]:
    """The account that pushed megatest: its name and api-key."""
    return "publisher", token_server.create_account("publisher")


@pytest.fixture(scope="session")
def test_image(engine, registry, token_server, publisher, tmp_path_factory) -> str:
    """megatest:latest, built FROM scratch with a static busybox, pushed by "publisher" and published."""
    build_busybox_image(f"{registry.address}/megatest:latest", tmp_path_factory.mktemp("image"), publisher)
    token_server.set_image_public("megatest", publisher[1])
    return TEST_IMAGE


@pytest.fixture(scope="session")
def server(token_server, test_image):
    return token_server


@pytest.fixture(scope="session")
def alice_key(server) -> str:
    return server.create_account("alice")


@pytest.fixture(scope="session")
def bob_key(server) -> str:
    return server.create_account("bob")


@pytest.fixture(scope="session")
def fuzzer_key(server) -> str:
    """Generated traffic spends its own key's rate budget, not the other tests'."""
    return server.create_account("fuzzer")


@pytest.fixture(scope="session")
def reader_key(server) -> str:
    """Tests that read whole outputs many times in a row, faster than the default limit allows."""
    key = server.create_account("reader")
    server.set_rate_limit("reader", "1000/second")
    return key


@pytest.fixture
def reader(server, reader_key) -> Api:
    return Api(server.url, reader_key)


@pytest.fixture
def alice(server, alice_key) -> Api:
    return Api(server.url, alice_key)


@pytest.fixture
def bob(server, bob_key) -> Api:
    return Api(server.url, bob_key)


@pytest.fixture
def start_executor(server, alice_key, run_id, tmp_path, engine):
    """Start agents owned by alice; each is stopped after the test, its containers removed."""
    yield from _executors(server.url, alice_key, run_id, tmp_path, engine)


@dataclass
class Platform:
    """An API server of the test's own, so placement sees only the test's executors."""

    server: Server
    api: Api
    key: str


@pytest.fixture
def platform(registry, test_image, tmp_path) -> Platform:
    srv = Server(tmp_path / "own" / "megamind.db", registry.address, registry_auth_dir=registry.auth_dir)
    srv.start()
    key = srv.create_account("carol")
    srv.set_rate_limit("carol", "1000/second")
    srv.claim_image("megatest", ("carol", key))  # this server's own record of who owns it
    yield Platform(srv, Api(srv.url, key), key)
    if srv.proc and srv.proc.poll() is None:
        srv.stop()


@pytest.fixture
def start_own_executor(platform, run_id, tmp_path, engine):
    """Start agents of the test's own platform (extra arguments after the defaults win)."""
    yield from _executors(platform.server.url, platform.key, run_id, tmp_path / "own-agents", engine)


def _executors(api_url: str, key: str, run_id: str, folder: Path, engine):
    started: list[Executor] = []

    default_api_url = api_url

    def start(state_dir: Path | None = None, api_url: str | None = None, extra_args: tuple[str, ...] = (),
              env: dict[str, str] | None = None) -> Executor:
        ex = Executor(api_url or default_api_url, key, state_dir or folder / f"agent{len(started)}",
                      {TEST_LABEL: run_id}, extra_args, env=env)
        connections_before = ex.connections()
        ex.start()
        started.append(ex)
        wait_connected(ex, connections_before)
        return ex

    yield start
    for ex in started:
        if ex.proc and ex.proc.poll() is None:
            ex.stop()
        hwid = ex.hwid
        if hwid:
            # sparse: a container the agent removes meanwhile must not fail the listing
            for container in engine.containers.list(
                all=True, sparse=True, filters={"label": f"network.megamind.hwid={hwid}"}
            ):
                remove_quietly(container)


@pytest.fixture
def executor(start_executor) -> Executor:
    return start_executor()


def wait_connected(ex: Executor, connections_before: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ex.proc.poll() is not None:
            raise AssertionError(f"agent exited with {ex.proc.returncode}:\n{ex.log_text()}")
        if ex.connections() > connections_before and ex.online():
            return
        time.sleep(0.05)
    raise AssertionError(f"agent never came online:\n{ex.log_text()}")


def containers_of(engine, taskid: str):
    return engine.containers.list(all=True, filters={"label": f"network.megamind.task={taskid}"})


def wait_no_containers(engine, taskid: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while containers_of(engine, taskid):
        if time.monotonic() > deadline:
            raise AssertionError(f"the container of {taskid} is still there after {timeout}s")
        time.sleep(0.1)


def remove_quietly(container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if exc.status_code != 409:  # 409: a removal is already under way
            raise
