"""Registry images run as tasks: the example image of registry/ built and pushed with its own script, and a tag pushed again."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .conftest import containers_of

BUILD_IMAGE = Path(__file__).resolve().parents[2] / "registry" / "build-image.sh"


def test_helloworld_builds_pushes_and_runs(alice, alice_key, server, executor, registry):
    env = {**os.environ, "MEGAMIND_API_URL": server.url, "MEGAMIND_API_KEY": alice_key,
           "MEGAMIND_CLI": f"{sys.executable} -m megamind.cli"}
    pushed = subprocess.run(
        [str(BUILD_IMAGE), "helloworld", "e2e", registry.address],
        check=True, capture_output=True, text=True, timeout=120, env=env,
    )
    assert pushed.stdout.strip() == f"{registry.address}/helloworld:e2e"

    taskid = alice.run(executor.hwid, '{"who": "e2e"}', image="megamind.network/helloworld:e2e")
    alice.wait_state(taskid, 3)
    task = alice.wait_state(taskid, 4, timeout=30)
    assert task["error_msg"] == ""
    lines = alice.logs(taskid)
    assert lines[0] == "Hello from Megamind!"
    assert any('{"who": "e2e"}' in line for line in lines)


def test_a_tag_pushed_again_runs_the_new_image_not_the_engines_old_copy(alice, alice_key, start_executor, registry,
                                                                       engine, test_image, tmp_path):
    # The agent creates the container from the engine's copy while it pulls; when the
    # pull moves the tag, that container must be made again from the new image.
    reference = f"{registry.address}/moving:1"
    old = engine.images.get(f"{registry.address}/megatest:latest")
    (tmp_path / "Dockerfile").write_text(f"FROM {registry.address}/megatest:latest\nLABEL megamind.test.version=2\n")
    new, _ = engine.images.build(path=str(tmp_path), tag=reference, rm=True)
    assert new.id != old.id
    engine.images.push(f"{registry.address}/moving", tag="1", auth_config={"username": "alice", "password": alice_key})
    old.tag(f"{registry.address}/moving", tag="1")  # the engine's copy is stale now
    executor = start_executor()

    since = time.time()
    first = alice.run(executor.hwid, "sleep 600", image="megamind.network/moving:1")
    alice.wait_state(first, 3)
    (container,) = containers_of(engine, first)
    assert container.attrs["Image"] == new.id
    assert engine.images.get(reference).id == new.id
    assert engine_pulls(engine, since) == [reference]


def test_an_image_the_registry_still_names_starts_without_an_engine_pull(alice, executor, registry, engine,
                                                                          test_image):
    # The agent asked the registry for the tag's digest and found the engine's copy came
    # from that manifest (it was pushed from this engine): a pull would have changed nothing.
    since = time.time()
    taskid = alice.run(executor.hwid, "echo fresh")
    assert alice.wait_state(taskid, 4)["error_msg"] == ""
    assert engine_pulls(engine, since) == []


def engine_pulls(engine, since: float) -> list[str]:
    """The references the engine pulled since then, from its own event log."""
    events = engine.events(since=since, until=time.time() + 0.5, decode=True,
                           filters={"type": "image", "event": "pull"})
    return [event["Actor"]["ID"] for event in events]
