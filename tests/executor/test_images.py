"""The agent's registry check before a pull: a fake engine (this is logic, not the
engine's behaviour) and a small registry stand-in on 127.0.0.1 answering manifest HEADs."""

from __future__ import annotations

import asyncio
import re

import aiohttp
import pytest
from aiohttp import web

from megamind.executor.images import MANIFEST_TYPES, ImageFetcher, is_current, manifest_url
from megamind.executor.runtime import LocalImage, PullError
from megamind.testing import free_port

DIGEST = "sha256:" + "d" * 64
OTHER = "sha256:" + "e" * 64


@pytest.mark.parametrize("reference, url", [
    ("127.0.0.1:5000/helloworld:latest", "http://127.0.0.1:5000/v2/helloworld/manifests/latest"),
    ("127.0.0.1:5000/team/app:v1", "http://127.0.0.1:5000/v2/team/app/manifests/v1"),
    ("localhost:5000/app", "http://localhost:5000/v2/app/manifests/latest"),
    ("[::1]:5000/app:1", "http://[::1]:5000/v2/app/manifests/1"),
    ("registry.example.com/app:1", "https://registry.example.com/v2/app/manifests/1"),
    ("10.0.0.5:5000/app:1", "https://10.0.0.5:5000/v2/app/manifests/1"),  # only loopback is plain HTTP
    ("127.0.0.1:5000/app@" + DIGEST, None),  # a digest: nothing to ask
    ("library/busybox:1", None),  # Docker Hub: not ours to check
    ("busybox", None),
])
def test_manifest_url(reference, url):
    assert manifest_url(reference) == url


def test_is_current_needs_the_registry_digest_among_the_images_own():
    digests = frozenset({"127.0.0.1:5000/app@" + DIGEST})
    assert is_current("127.0.0.1:5000/app:1", DIGEST, digests)
    assert not is_current("127.0.0.1:5000/app:1", OTHER, digests)
    assert not is_current("127.0.0.1:5000/app:1", None, digests)
    assert not is_current("127.0.0.1:5000/other:1", DIGEST, digests)  # same manifest, another name


class FakeEngine:
    def __init__(self, local: LocalImage | None, pulled: str = "sha256:pulled", fail: bool = False) -> None:
        self.local = local
        self.pulled = pulled
        self.fail = fail
        self.pulls: list[str] = []
        self.pull_tokens: list[str] = []
        self.lookups: list[str] = []

    async def local_image(self, reference: str) -> LocalImage | None:
        self.lookups.append(reference)
        await asyncio.sleep(0.01)
        return self.local

    async def pull(self, reference: str, token: str = "") -> str:
        self.pulls.append(reference)
        self.pull_tokens.append(token)
        await asyncio.sleep(0.01)
        if self.fail:
            raise PullError("manifest unknown")
        return self.pulled


@pytest.fixture
async def registry(aiohttp_server):
    """Answers HEAD /v2/<name>/manifests/<tag> with the digest in ``served`` (404 when absent)."""
    served: dict[str, str] = {}
    seen: list[tuple[str, str]] = []
    refused: dict[str, str] = {}  # path -> the RFC 6750 error of its 401 challenge
    tokens: list[str] = []  # each request's Authorization

    async def manifest(request: web.Request) -> web.Response:
        seen.append((request.match_info["path"], request.headers.get("Accept", "")))
        tokens.append(request.headers.get("Authorization", ""))
        if request.match_info["path"] in refused:
            challenge = f'Bearer realm="x",service="megamind-registry",error="{refused[request.match_info["path"]]}"'
            return web.Response(status=401, headers={"WWW-Authenticate": challenge})
        digest = served.get(request.match_info["path"])
        if digest is None:
            return web.Response(status=404)
        return web.Response(headers={"Docker-Content-Digest": digest})

    app = web.Application()
    app.router.add_route("HEAD", "/v2/{path:.+}", manifest)
    server = await aiohttp_server(app, host="127.0.0.1")
    server.served, server.seen, server.refused, server.tokens = served, seen, refused, tokens
    return server


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


def local(reference_repo: str, digest: str) -> LocalImage:
    return LocalImage(id="sha256:local", repo_digests=frozenset({f"{reference_repo}@{digest}"}))


async def test_an_image_the_registry_still_names_is_used_without_a_pull(registry, http):
    repo = f"127.0.0.1:{registry.port}/app"
    registry.served["app/manifests/1"] = DIGEST
    engine = FakeEngine(local(repo, DIGEST))
    assert await ImageFetcher(engine, http).fetch(f"{repo}:1") == "sha256:local"
    assert engine.pulls == []
    assert registry.seen == [("app/manifests/1", MANIFEST_TYPES)]


@pytest.mark.parametrize("served, engine_has", [
    (OTHER, True),  # the tag moved in the registry
    (None, True),  # the registry no longer has it: the engine's pull says why
    (DIGEST, False),  # the engine has nothing yet
])
async def test_anything_else_is_a_pull_through_the_engine(registry, http, served, engine_has):
    repo = f"127.0.0.1:{registry.port}/app"
    if served:
        registry.served["app/manifests/1"] = served
    engine = FakeEngine(local(repo, DIGEST) if engine_has else None)
    assert await ImageFetcher(engine, http).fetch(f"{repo}:1") == "sha256:pulled"
    assert engine.pulls == [f"{repo}:1"]


async def test_an_unreachable_registry_leaves_the_pull_and_its_error_to_the_engine(http):
    repo = f"127.0.0.1:{free_port()}/app"  # nobody listens here
    engine = FakeEngine(local(repo, DIGEST), fail=True)
    with pytest.raises(PullError, match="manifest unknown"):
        await ImageFetcher(engine, http).fetch(f"{repo}:1")
    assert engine.pulls == [f"{repo}:1"]


async def test_a_digest_reference_the_engine_has_is_not_asked_for(registry, http):
    repo = f"127.0.0.1:{registry.port}/app"
    engine = FakeEngine(local(repo, DIGEST))
    assert await ImageFetcher(engine, http).fetch(f"{repo}@{DIGEST}") == "sha256:local"
    assert engine.pulls == [] and registry.seen == []


async def test_fetches_of_one_reference_under_way_are_one(registry, http):
    repo = f"127.0.0.1:{registry.port}/app"
    registry.served["app/manifests/1"] = OTHER
    engine = FakeEngine(local(repo, DIGEST))
    fetcher = ImageFetcher(engine, http)
    results = await asyncio.gather(*(fetcher.fetch(f"{repo}:1") for _ in range(20)))
    assert set(results) == {"sha256:pulled"}
    assert len(engine.pulls) == 1 and len(engine.lookups) == 1 and len(registry.seen) == 1


# --- with the task's pull token (a registry under token auth) ----------------------------


async def test_the_registry_and_the_engine_are_asked_with_the_tasks_token(registry, http):
    repo = f"127.0.0.1:{registry.port}/app"
    registry.served["app/manifests/1"] = OTHER
    engine = FakeEngine(local(repo, DIGEST))
    assert await ImageFetcher(engine, http).fetch(f"{repo}:1", "tok") == "sha256:pulled"
    assert registry.tokens == ["Bearer tok"] and engine.pull_tokens == ["tok"]


@pytest.mark.parametrize("error, words", [
    ("insufficient_scope", "another account's private image (its owner can publish it)"),
    ("invalid_token", "refused this task's token"),
])
async def test_a_token_the_registry_refuses_ends_the_fetch_without_the_engines_copy(registry, http, error, words):
    repo = f"127.0.0.1:{registry.port}/app"
    registry.refused["app/manifests/1"] = error
    engine = FakeEngine(local(repo, DIGEST))  # the engine holds it (another account's task pulled it)
    with pytest.raises(PullError, match=re.escape(words)) as refused:
        await ImageFetcher(engine, http).fetch(f"{repo}:1", "tok", "megamind.network/app:1")
    assert "megamind.network/app:1" in str(refused.value)
    assert engine.pulls == []


async def test_without_a_token_a_refusal_is_left_to_the_engine(registry, http):
    repo = f"127.0.0.1:{registry.port}/app"
    registry.refused["app/manifests/1"] = "insufficient_scope"
    engine = FakeEngine(local(repo, DIGEST))
    assert await ImageFetcher(engine, http).fetch(f"{repo}:1") == "sha256:pulled"
    assert engine.pulls == [f"{repo}:1"]


async def test_with_a_token_even_a_digest_the_engine_has_is_asked_for(registry, http):
    repo = f"127.0.0.1:{registry.port}/app"
    registry.refused[f"app/manifests/{DIGEST}"] = "insufficient_scope"
    engine = FakeEngine(local(repo, DIGEST))
    with pytest.raises(PullError, match="private"):
        await ImageFetcher(engine, http).fetch(f"{repo}@{DIGEST}", "tok")
    del registry.refused[f"app/manifests/{DIGEST}"]
    registry.served[f"app/manifests/{DIGEST}"] = DIGEST
    assert await ImageFetcher(engine, http).fetch(f"{repo}@{DIGEST}", "tok") == "sha256:local"
    assert engine.pulls == []


async def test_fetches_with_different_tokens_are_not_joined(registry, http):
    repo = f"127.0.0.1:{registry.port}/app"
    registry.served["app/manifests/1"] = OTHER
    engine = FakeEngine(local(repo, DIGEST))
    fetcher = ImageFetcher(engine, http)
    await asyncio.gather(*(fetcher.fetch(f"{repo}:1", token) for token in ("a", "a", "b")))
    assert sorted(engine.pull_tokens) == ["a", "b"]
