"""The image cache: which images a prune removes (pure), and a prune on the real engine.

The engine's images here are tiny imports of this run's own names; the prune only ever
looks at images its record names, so other images on the engine are never candidates.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import tarfile
import uuid

import docker
import pytest

from megamind.executor.facade import AsyncDocker
from megamind.executor.imagecache import ImageCache, UseRecord, observe, plan
from megamind.executor.runtime import EngineContainer, EngineImage
from megamind.executor.spec import LABEL_HWID, LABEL_MANAGED

from .conftest import TEST_LABEL

MB = 1000**2


def image(name: str, size_mb: int, *tags: str) -> EngineImage:
    return EngineImage(f"sha256:{name}", tags or (f"reg:5000/{name}:1",), size_mb * MB)


def container(img: EngineImage, hwid: str = "hw-mine") -> EngineContainer:
    return EngineContainer(img.id, img.tags[0] if img.tags else img.id, {LABEL_HWID: hwid, LABEL_MANAGED: "1"})


def recorded(*uses: tuple[EngineImage, float]) -> UseRecord:
    record = UseRecord()
    for img, when in uses:
        record.touch(img.tags[0], when)
    return record


# --- which images go (pure) -------------------------------------------------------------


def test_least_recently_used_go_first_until_the_rest_fit():
    a, b, c = image("a", 100), image("b", 100), image("c", 100)
    record = recorded((a, 300.0), (b, 100.0), (c, 200.0))
    observe(record, [a, b, c], [], {"hw-mine"}, now=10_000)
    assert plan(record, [a, b, c], [], budget_bytes=200 * MB, now=10_000) == [b]
    assert plan(record, [a, b, c], [], budget_bytes=100 * MB, now=10_000) == [b, c]
    assert plan(record, [a, b, c], [], budget_bytes=300 * MB, now=10_000) == []


def test_an_image_any_container_uses_is_never_a_candidate():
    a, b = image("a", 100), image("b", 100)
    record = recorded((a, 100.0), (b, 200.0))
    # a's container is someone else's, stopped or not: it still needs its image.
    used = [EngineContainer(a.id, a.tags[0], {})]
    observe(record, [a, b], used, {"hw-mine"}, now=10_000)
    assert plan(record, [a, b], used, budget_bytes=0, now=10_000) == [b]


def test_the_agents_own_containers_make_their_images_used_now():
    a, b = image("a", 100), image("b", 100)
    record = recorded((a, 100.0), (b, 200.0))
    observe(record, [a, b], [container(a)], {"hw-mine"}, now=10_000)
    assert record.images[a.id] == 10_000
    # Once that container is gone, a is the newer of the two.
    observe(record, [a, b], [], {"hw-mine"}, now=10_001)
    assert plan(record, [a, b], [], budget_bytes=100 * MB, now=20_000) == [b]


def test_images_the_agent_never_used_or_the_owner_also_named_are_left():
    ours = image("ours", 100)
    owners = image("owners", 100)  # never named by a task
    shared = image("shared", 100, "reg:5000/shared:1", "my-own-build:latest")  # the owner tagged it too
    record = recorded((ours, 100.0), (shared, 100.0))
    observe(record, [ours, owners, shared], [], {"hw-mine"}, now=10_000)
    assert set(record.images) == {ours.id, shared.id}
    assert plan(record, [ours, owners, shared], [], budget_bytes=0, now=10_000) == [ours]


def test_an_image_used_a_moment_ago_is_kept_a_start_may_be_between_its_pull_and_create():
    a = image("a", 100)
    record = recorded((a, 1_000.0))
    observe(record, [a], [], {"hw-mine"}, now=1_100)
    assert plan(record, [a], [], budget_bytes=0, now=1_100, min_idle_s=900) == []
    assert plan(record, [a], [], budget_bytes=0, now=1_900, min_idle_s=900) == [a]


def test_a_moved_tag_leaves_its_old_image_recorded_and_dangling_images_can_go():
    old = image("old", 100)
    record = recorded((old, 100.0))
    observe(record, [old], [], {"hw-mine"}, now=200)
    dangling = EngineImage(old.id, (), old.size)  # the tag now names a newer image
    new = image("new", 100, old.tags[0])
    record.touch(old.tags[0], 300.0)
    observe(record, [dangling, new], [], {"hw-mine"}, now=10_000)
    assert record.images == {old.id: 100.0, new.id: 300.0}
    assert plan(record, [dangling, new], [], budget_bytes=100 * MB, now=10_000) == [dangling]


def test_what_is_gone_is_forgotten_but_a_fresh_reference_waits_for_its_pull():
    a = image("a", 100)
    record = recorded((a, 100.0))
    record.touch("reg:5000/being-pulled:1", 9_990.0)
    record.touch("reg:5000/long-gone:1", 10.0)
    observe(record, [a], [], {"hw-mine"}, now=10_000)
    observe(record, [], [], {"hw-mine"}, now=10_000)
    assert record.images == {}
    assert set(record.references) == {"reg:5000/being-pulled:1"}


def test_the_record_survives_a_restart_and_an_unreadable_one_starts_afresh(tmp_path):
    record = UseRecord({"reg:5000/a:1": 1.5}, {"sha256:a": 2.5})
    record.save(tmp_path / "images.json")
    assert UseRecord.load(tmp_path / "images.json") == record
    (tmp_path / "images.json").write_text("[1, 2")
    assert UseRecord.load(tmp_path / "images.json") == UseRecord()
    (tmp_path / "images.json").write_text(json.dumps([1, 2]))
    assert UseRecord.load(tmp_path / "images.json") == UseRecord()
    assert UseRecord.load(tmp_path / "absent.json") == UseRecord()


# --- a prune on the real engine ---------------------------------------------------------


@pytest.fixture
def images(engine, run_label):
    """make(name, kb) -> a tag of a new image of ~kb KB of its own; all removed after the test."""
    made: list[str] = []

    def make(name: str, kb: int) -> str:
        repository = f"127.0.0.1:9/megamind-test-{run_label}-{name}-{uuid.uuid4().hex[:6]}"
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            data = uuid.uuid4().bytes * (kb * 64)  # its own content: an image of its own
            info = tarfile.TarInfo("payload")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        engine.api.import_image_from_data(archive.getvalue(), repository=repository, tag="1",
                                          changes=[f"LABEL {TEST_LABEL}={run_label}"])
        made.append(f"{repository}:1")
        return made[-1]

    yield make
    for tag in made:
        with contextlib.suppress(docker.errors.APIError):
            engine.api.remove_image(tag, force=True)


def exists(engine, reference: str) -> bool:
    try:
        engine.api.inspect_image(reference)
        return True
    except docker.errors.ImageNotFound:
        return False


async def test_a_prune_removes_unused_images_lru_first_and_keeps_those_in_use(engine, runtime, images, tmp_path,
                                                                              run_label):
    in_use, old, newer, owners = images("in-use", 100), images("old", 200), images("newer", 300), images("owners", 50)
    engine.api.tag(owners, f"megamind-test-{run_label}-owners-own-name", "latest")  # the owner named it too
    hwid = f"hw-{run_label}"
    # A task container of this agent's, stopped but kept: its image stays, the oldest though it is.
    kept = engine.api.create_container(in_use, command=["/payload"], labels={LABEL_HWID: hwid, LABEL_MANAGED: "1",
                                                                             TEST_LABEL: run_label},
                                       host_config=engine.api.create_host_config(network_mode="none"))
    now = 100_000.0
    cache = ImageCache(AsyncDocker(runtime, 2), tmp_path, budget_gb=0, interval_s=3600, min_idle_s=0,
                       clock=lambda: now)
    cache.hwids.add(hwid)
    for when, tag in ((10.0, owners), (20.0, in_use), (30.0, old), (40.0, newer)):
        cache.record.touch(tag, when)
    sizes = {tag: engine.api.inspect_image(tag)["Size"] for tag in (in_use, old, newer, owners)}
    # Room for all but the oldest unused one.
    cache.budget_bytes = sum(sizes.values()) - sizes[old]

    [removed] = await cache.prune()
    assert not exists(engine, old) and removed.startswith("sha256:")
    assert all(exists(engine, tag) for tag in (in_use, newer, owners))

    cache.budget_bytes = 0  # nothing unused may stay: but what a container uses, or the owner named, does
    assert len(await cache.prune()) == 1
    assert not exists(engine, newer)
    assert exists(engine, in_use) and exists(engine, owners)
    # The engine itself refuses to remove an image a container uses.
    assert runtime.remove_image(in_use) is False and exists(engine, in_use)
    # What it removed and saw is on disk for the next agent.
    saved = UseRecord.load(tmp_path / "images.json")
    assert engine.api.inspect_image(in_use)["Id"] in saved.images
    assert not {old, newer} & saved.references.keys()
    engine.api.remove_container(kept["Id"], force=True)
    with contextlib.suppress(docker.errors.APIError):
        engine.api.remove_image(f"megamind-test-{run_label}-owners-own-name:latest")


async def test_the_loop_prunes_at_start_and_when_woken(engine, runtime, images, tmp_path):
    first, second = images("first", 10), images("second", 10)
    cache = ImageCache(AsyncDocker(runtime, 2), tmp_path, budget_gb=0, interval_s=3600, min_idle_s=0)
    cache.record.touch(first, 1.0)
    loop = asyncio.create_task(cache.run())
    try:
        async with asyncio.timeout(20):
            while exists(engine, first):
                await asyncio.sleep(0.05)
            assert exists(engine, second)  # never named by a task of the agent's
            cache.touch(second)
            cache.wake()  # a task's container was removed
            while exists(engine, second):
                await asyncio.sleep(0.05)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
    assert (tmp_path / "images.json").exists()
