"""The registry under token auth, end to end: the real registry, the real engine, real
`megamind` processes.

alice pushes alice-img and owns it; bob can neither push to it nor pull it while it is
private, and his task with it ends with an error that says so, until alice publishes it.
An executor pulls with a token for its task's one repository, which opens nothing else;
an expired token opens nothing at all.
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import urllib.error
import urllib.request
import uuid

import docker
import pytest

from megamind.client.push import PushError
from megamind.registryauth.tokens import DELETE, PULL, PUSH, TASK_PULL_TTL_S
from megamind.testing import Server, push_as

from .api import Api
from .conftest import containers_of

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def build(engine, tmp_path, tag: str, label: str) -> str:
    """An image FROM megatest that differs by a label: its id."""
    folder = tmp_path / uuid.uuid4().hex
    folder.mkdir()
    base = tag.split("/", 1)[0] + "/megatest:latest"
    (folder / "Dockerfile").write_text(f"FROM {base}\nLABEL megamind.test.image={label}\n")
    image, _ = engine.images.build(path=str(folder), tag=tag, rm=True)
    return image.id


def registry_call(registry, method: str, path: str, token: str | None) -> tuple[int, dict, str]:
    """One request to the registry itself: (status, headers, body)."""
    headers = {"Accept": MANIFEST}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"http://{registry.address}{path}", method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode(errors="replace")
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read().decode(errors="replace")


def engine_pull(engine, reference: str, auth: dict | None) -> str | None:
    """Pull through the engine with these credentials: None, or the engine's error."""
    repository, tag = reference.rsplit(":", 1)
    try:
        for line in engine.api.pull(repository, tag=tag, stream=True, decode=True, auth_config=auth):
            if isinstance(line, dict) and line.get("error"):
                return line["error"]
    except docker.errors.APIError as exc:
        return exc.explanation or str(exc)
    return None


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def alice_img(engine, registry, alice_key, tmp_path_factory) -> str:
    """alice-img:1, pushed by alice: the registry reference."""
    tag = f"{registry.address}/alice-img:1"
    build(engine, tmp_path_factory.mktemp("alice-img"), tag, "alice")
    push_as(tag, ("alice", alice_key))
    return tag


def manifest_digest(registry, name: str, tag: str) -> str:
    status, headers, body = registry_call(registry, "HEAD", f"/v2/{name}/manifests/{tag}",
                                          registry.token(name))
    assert status == 200, body
    return headers["Docker-Content-Digest"]


def test_the_owner_pushes_and_no_one_else_may_push_or_pull_while_it_is_private(
        alice_img, engine, registry, server, alice_key, bob_key, tmp_path):
    pushed = manifest_digest(registry, "alice-img", "1")

    # bob's push of another image under alice's name is refused, and alice's tag stays hers.
    build(engine, tmp_path, alice_img, "bob")
    with pytest.raises(PushError, match="refused"):
        push_as(alice_img, ("bob", bob_key))
    assert manifest_digest(registry, "alice-img", "1") == pushed

    # bob's token grants nothing of it, nor does an anonymous one; alice's everything she asked.
    scope = ["repository:alice-img:pull,push,delete"]
    assert claims(server.registry_token(scope, ("bob", bob_key))["token"])["access"] == [
        {"type": "repository", "name": "alice-img", "actions": []}]
    assert claims(server.registry_token(scope)["token"])["access"][0]["actions"] == []
    alice_token = server.registry_token(scope, ("alice", alice_key))
    assert claims(alice_token["token"])["access"][0]["actions"] == [PULL, PUSH, DELETE]

    # Through the engine: bob's pull is refused, alice's works.
    assert engine_pull(engine, alice_img, {"username": "bob", "password": bob_key}) is not None
    assert engine_pull(engine, alice_img, None) is not None
    assert engine_pull(engine, alice_img, {"username": "alice", "password": alice_key}) is None


def test_bobs_task_fails_clearly_until_alice_publishes_it(alice_img, alice_key, bob_key, server, executor, engine):
    bob = Api(server.url, bob_key)
    image = "megamind.network/alice-img:1"
    # The executor's engine holds alice-img already (it was built there): that copy must not run for bob.
    assert engine.images.get(alice_img)

    refused = bob.run(executor.hwid, "echo hi", image=image)
    task = bob.wait_state(refused, 5, timeout=60)
    assert "alice-img" in task["error_msg"] and "private" in task["error_msg"], task
    assert task["error_msg"].startswith("pull failed: ")
    assert containers_of(engine, refused) == []

    try:
        server.set_image_public("alice-img", alice_key)
        assert bob.restart(refused).status == 200
        assert bob.wait_state(refused, 4, timeout=60)["error_msg"] == ""
        assert bob.logs(refused) == ["hi"]
    finally:
        server.set_image_public("alice-img", alice_key, public=False)
    bob.deltask(refused)
    Api(server.url, alice_key).wait_free(executor.hwid)

    # Private again: a new task of bob's is refused again.
    again = bob.run(executor.hwid, "echo again", image=image)
    assert "private" in bob.wait_state(again, 5, timeout=60)["error_msg"]
    bob.deltask(again)


def test_images_show_owner_and_visibility_and_only_the_owner_publishes(alice_img, alice_key, bob_key, server):
    alice, bob = Api(server.url, alice_key), Api(server.url, bob_key)
    mine = [i for i in alice.call("GET", "/api/v1/images").json if i["name"] == "alice-img"]
    assert mine == [{"image": "megamind.network/alice-img:1", "name": "alice-img", "tag": "1",
                     "owner": "alice", "public": False}]
    # A private repository of another account is not even listed.
    assert all(i["name"] != "alice-img" for i in bob.call("GET", "/api/v1/images").json)
    answer = bob.call("PATCH", "/api/v1/images", {"name": "alice-img", "public": True})
    assert (answer.status, answer.json["code"]) == (403, 5)


def test_an_executor_pulls_with_its_tasks_token_which_opens_no_other_repository(
        registry, alice_img, test_image, tmp_path, start_own_executor_behind):
    proxy, platform, executor = start_own_executor_behind
    taskid = platform.api.run(executor.hwid, "echo pulled")
    assert platform.api.wait_state(taskid, 4, timeout=60)["error_msg"] == ""

    tokens = {auth.removeprefix("Bearer ") for method, path, auth in proxy.seen
              if path.startswith("/v2/megatest/") and auth.startswith("Bearer ")}
    assert tokens, proxy.seen
    for token in tokens:
        granted = claims(token)
        assert granted["sub"] == "carol"
        assert granted["access"] == [{"type": "repository", "name": "megatest", "actions": [PULL]}]
        assert granted["exp"] - granted["iat"] == TASK_PULL_TTL_S
        # It opens megatest, and nothing else: not another repository, not a push, not the catalog.
        assert registry_call(registry, "HEAD", "/v2/megatest/manifests/latest", token)[0] == 200
        assert registry_call(registry, "HEAD", "/v2/alice-img/manifests/1", token)[0] == 401
        assert registry_call(registry, "POST", "/v2/megatest/blobs/uploads/", token)[0] == 401
        assert registry_call(registry, "GET", "/v2/_catalog", token)[0] == 401


def test_an_expired_token_is_refused(registry, test_image):
    fresh = registry.token("megatest")
    assert registry_call(registry, "HEAD", "/v2/megatest/manifests/latest", fresh)[0] == 200
    # Past exp by more than the registry's 60 s of leeway.
    expired = registry.token("megatest", ttl_s=300, now=time.time() - 3600)
    status, headers, _ = registry_call(registry, "HEAD", "/v2/megatest/manifests/latest", expired)
    assert status == 401
    assert 'error="invalid_token"' in headers["Www-Authenticate"]


def test_only_the_owner_deletes_a_tag(engine, registry, server, alice_key, bob_key, tmp_path):
    tag = f"{registry.address}/alice-gone:1"
    build(engine, tmp_path, tag, "gone")
    push_as(tag, ("alice", alice_key))
    digest = manifest_digest(registry, "alice-gone", "1")
    scope = ["repository:alice-gone:delete"]
    bobs = server.registry_token(scope, ("bob", bob_key))["token"]
    assert registry_call(registry, "DELETE", f"/v2/alice-gone/manifests/{digest}", bobs)[0] == 401
    alices = server.registry_token(scope, ("alice", alice_key))["token"]
    assert registry_call(registry, "DELETE", f"/v2/alice-gone/manifests/{digest}", alices)[0] == 202
    assert registry_call(registry, "HEAD", "/v2/alice-gone/manifests/1", registry.token("alice-gone"))[0] == 404


def test_docker_login_takes_the_account_name_and_an_api_key(engine, registry, alice_key):
    assert engine.api.login("alice", alice_key, registry=registry.address, reauth=True)
    with pytest.raises(docker.errors.APIError):
        engine.api.login("bob", alice_key, registry=registry.address, reauth=True)


# --- helpers --------------------------------------------------------------------------


class RecordingProxy:
    """A plain HTTP proxy to the registry that records each request's method, path and Authorization."""

    def __init__(self, target: str) -> None:
        self.seen: list[tuple[str, str, str]] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                auth = self.headers.get("Authorization", "")
                proxy.seen.append((self.command, self.path, auth))
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                request = urllib.request.Request(f"http://{target}{self.path}", data=body, method=self.command,
                                                 headers=headers)
                try:
                    answer = urllib.request.urlopen(request, timeout=30)
                except urllib.error.HTTPError as err:
                    answer = err
                data = answer.read()
                self.send_response(answer.status if hasattr(answer, "status") else answer.code)
                for key, value in answer.headers.items():
                    if key.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = forward

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def start_own_executor_behind(registry, test_image, tmp_path, run_id, engine):
    """carol's own server whose registry address is a recording proxy in front of the registry,
    and one executor of hers."""
    from .conftest import Platform, _executors

    proxy = RecordingProxy(registry.address)
    srv = Server(tmp_path / "own" / "megamind.db", proxy.address, registry_auth_dir=registry.auth_dir)
    srv.start()
    key = srv.create_account("carol")
    srv.claim_image("megatest", ("carol", key), public=False)
    platform = Platform(srv, Api(srv.url, key), key)
    starter = _executors(srv.url, key, run_id, tmp_path / "agents", engine)
    start = next(starter)
    try:
        yield proxy, platform, start()
    finally:
        next(starter, None)
        srv.stop()
        proxy.stop()


def test_megamind_push_and_publish_from_the_command_line(engine, registry, server, alice_key, bob_key, tmp_path):
    import os
    import subprocess

    from megamind.testing import MEGAMIND

    def megamind(*args: str, key: str = alice_key) -> subprocess.CompletedProcess:
        env = {**os.environ, "MEGAMIND_API_URL": server.url, "MEGAMIND_API_KEY": key,
               "MEGAMIND_CONFIG": str(tmp_path / "none.json")}
        return subprocess.run(MEGAMIND + list(args), capture_output=True, text=True, env=env, timeout=120)

    local = build(engine, tmp_path, f"{registry.address}/cli-local:dev", "cli")
    pushed = megamind("push", local, "cli-img:2")
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout == "megamind.network/cli-img:2\n"
    assert f"pushing {registry.address}/cli-img:2 as alice" in pushed.stderr
    listed = megamind("images").stdout.splitlines()
    assert ["megamind.network/cli-img:2", "alice", "private"] in [line.split() for line in listed]

    refused = megamind("push", local, "cli-img:3", key=bob_key)
    assert refused.returncode == 1 and "refused" in refused.stderr
    assert megamind("images", "publish", "cli-img", key=bob_key).returncode == 1

    published = megamind("images", "publish", "megamind.network/cli-img")
    assert (published.returncode, published.stdout) == (0, "megamind.network/cli-img is public: every account may run it\n")
    assert ["megamind.network/cli-img:2", "alice", "public"] in [
        line.split() for line in megamind("images", key=bob_key).stdout.splitlines()]
    assert megamind("images", "unpublish", "cli-img").returncode == 0
