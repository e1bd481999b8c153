"""The async facade joins identical calls in flight (a fake runtime: this is pure logic)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from megamind.executor.facade import AsyncDocker
from megamind.executor.runtime import PullError


class SlowRuntime:
    def __init__(self, fail: bool = False) -> None:
        self.pulls: list[str] = []
        self.release = threading.Event()
        self.fail = fail

    def pull(self, reference: str, token: str = "") -> str:
        self.pulls.append(reference)
        self.release.wait(5)
        if self.fail:
            raise PullError("manifest unknown")
        return "sha256:" + reference[-1] * 64

    def close(self) -> None:
        pass


@pytest.fixture
def runtime():
    return SlowRuntime()


async def test_pulls_of_one_reference_in_flight_are_one_pull(runtime):
    docker = AsyncDocker(runtime, threads=4)
    try:
        waiting = [asyncio.ensure_future(docker.pull("reg/a:1")) for _ in range(10)]
        other = asyncio.ensure_future(docker.pull("reg/b:2"))
        await asyncio.sleep(0.1)
        runtime.release.set()
        results = await asyncio.gather(*waiting, other)
        assert sorted(runtime.pulls) == ["reg/a:1", "reg/b:2"]
        assert set(results[:10]) == {"sha256:" + "1" * 64} and results[10] == "sha256:" + "2" * 64
        # Once settled, the next pull asks the engine again.
        await docker.pull("reg/a:1")
        assert runtime.pulls.count("reg/a:1") == 2
    finally:
        docker.close()


async def test_a_failure_reaches_every_joiner_and_a_quitter_cancels_nobody():
    runtime = SlowRuntime(fail=True)
    docker = AsyncDocker(runtime, threads=2)
    try:
        quitter = asyncio.ensure_future(asyncio.wait_for(docker.pull("reg/a:1"), 0.05))
        stayer = asyncio.ensure_future(docker.pull("reg/a:1"))
        with pytest.raises(asyncio.TimeoutError):
            await quitter
        runtime.release.set()
        with pytest.raises(PullError, match="manifest unknown"):
            await stayer
        assert runtime.pulls == ["reg/a:1"]
    finally:
        docker.close()
