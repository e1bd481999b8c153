"""Placement by requirements and the queue (issue 9), on one API process with 1,000
simulated executors of mixed hardware (`bench/placefleet.py`).

- **Rate and latency.** 16 clients submit 20,000 tasks with random requirements that
  some executors meet (`bench/hardwaremix.py`), in rounds; each task runs 0.05-0.5 s on
  its simulated executor, which then reports it stopped, so executors free up.  Placed
  means the executor got the start command.  Rounds alternate with the baseline: as
  many tasks pinned with ``hwid`` to executors taken in turn, through the same agents.
- **addtask with a queue.** Every executor is held by a task, then 1,000 and later
  10,000 tasks wait; at each depth one client times addtask calls one after another.
  The p99 at 10,000 against 1,000 waiting shows whether a step grows with the queue.
  The task detail of a waiting task and the account's ``GET /queue`` are timed too.
- **Drain.** The holding tasks are cancelled: the 10,000 waiting are placed as executors
  free up, each freed executor reading the queue from its head.
- **Memory.** The API's RSS with 10,000 waiting, against its RSS before any task.

``--quick`` runs 100 executors, 2,000 tasks and depths of 200 and 2,000, in under a minute.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from bench.placeclients import (
    IMAGE,
    WAITED_S,
    Api,
    Submitted,
    cancel_all,
    placement_rate,
    submit_all,
    submit_pinned,
    task_bodies,
    timed_get,
    timed_one_by_one,
    wait_count,
    wait_seen,
    waited,
)
from bench.placefleet import PlacementPlatform
from bench.procs import CpuMeter, rss_mb
from bench.stats import Row, Summary, percentile, ratio

TARGET_RATE = 500.0  # placements a second (the issue's)
TARGET_ADDTASK_P99_MS = 20.0  # with 10,000 waiting (the issue's)
TARGET_DEPTH_RATIO = 1.5  # addtask p99 at 10,000 waiting / at 1,000: "near 1"
# Submit -> placed p50 against pinned: choosing the executor may cost, not double it.  (The p99
# is made by tasks that wait for a fitting executor to free up, which pinned ones never do.)
TARGET_LATENCY_RATIO = 2.0
TARGET_RSS_MB = 150.0  # as the scale benchmark's bound
CLIENTS = 16
SEED = 9


@dataclass(frozen=True)
class Size:
    executors: int
    tasks: int  # with requirements, over all rounds (the pinned baseline submits as many)
    rounds: int
    shallow: int  # tasks waiting when addtask is first timed
    deep: int  # ... and the second time
    timed: int  # addtask calls timed at each depth
    run_s: tuple[float, float]  # how long each task runs on its simulated executor


# Quick: shorter runs, so 100 executors still free up faster than 500 placements a second need.
FULL = Size(executors=1000, tasks=20_000, rounds=4, shallow=1_000, deep=10_000, timed=500, run_s=(0.05, 0.5))
QUICK = Size(executors=100, tasks=2_000, rounds=2, shallow=200, deep=2_000, timed=200, run_s=(0.01, 0.1))


# Waits are bounded for a run that stalls, at a rate far below any the API reaches.
SLOWEST_RATE = 10.0


def _bound_s(count: int) -> float:
    return 60 + count / SLOWEST_RATE


@dataclass
class Round:
    rate: float
    latency_ms: list[float]
    submitted: Submitted
    waited: list[str]  # tasks queued at submission, placed when a fitting executor freed up


async def _round(api: Api, platform: PlacementPlatform, submitting) -> Round:
    """Submit, wait until every task was placed and ended and no executor is busy."""
    submitted = await submitting
    if submitted.refused:
        raise RuntimeError(f"addtask refused: {dict(submitted.refused)}")
    log = platform.events
    await wait_seen(log, submitted.sent, "starts", _bound_s(len(submitted.sent)))
    rate = placement_rate(submitted.sent, log.starts)
    latency = [(log.starts[t] - sent) * 1000 for t, sent in submitted.sent.items()]
    await wait_seen(log, submitted.sent, "stops", _bound_s(0))
    await wait_count(api, "busy", 0, _bound_s(0))
    return Round(rate, latency, submitted, waited(submitted.answered, log.starts))


async def _rates(api: Api, platform: PlacementPlatform, size: Size, items: list[dict], rng: random.Random):
    per_round = size.tasks // size.rounds
    hwids = [item["hwid"] for item in items]
    ours: list[Round] = []
    pinned: list[Round] = []
    for n in range(size.rounds):
        sides = [
            (ours, lambda: submit_all(api, task_bodies(items, per_round, rng, size.run_s), CLIENTS)),
            (pinned, lambda: submit_pinned(api, hwids, [rng.uniform(*size.run_s) for _ in range(per_round)],
                                           CLIENTS)),
        ]
        if n % 2:
            sides.reverse()
        for sink, submitting in sides:
            sink.append(await _round(api, platform, submitting()))
    return ours, pinned


@dataclass
class Depths:
    shallow: Submitted  # addtask one by one with size.shallow waiting
    deep: Submitted  # ... with size.deep waiting
    filling_ms: list[float]  # addtask under the clients while the queue filled
    detail_ms: tuple[list[float], list[float]]  # task detail of a waiting task, at each depth
    listing_s: tuple[float, float]  # GET /queue of the account, at a tenth of shallow and at shallow
    placed_early: int  # waiting tasks started before the drain: should be none
    rss_mb: list[float]  # the API's, with size.deep waiting
    waiting: int
    drain_rate: float


async def _queue_depths(api: Api, platform: PlacementPlatform, size: Size, items: list[dict],
                        rng: random.Random) -> Depths:
    """Hold every executor, let tasks wait, time addtask at two depths, then drain."""
    log = platform.events
    holds = await submit_all(api, ({"image": IMAGE, "params": "hold"} for _ in range(size.executors)), CLIENTS)
    await wait_seen(log, holds.sent, "starts", _bound_s(size.executors))
    await wait_count(api, "free", 0, _bound_s(0))
    waiting: dict[str, float] = {}
    filling: list[float] = []

    async def fill(upto: int) -> None:
        done = await submit_all(api, task_bodies(items, upto - len(waiting), rng, size.run_s), CLIENTS)
        if done.refused:
            raise RuntimeError(f"addtask refused while filling the queue: {dict(done.refused)}")
        waiting.update(done.sent)
        filling.extend(done.answer_ms)

    async def timed() -> Submitted:
        done = await timed_one_by_one(api, task_bodies(items, size.timed, rng, size.run_s))
        waiting.update(done.sent)
        return done

    await fill(size.shallow // 10)
    # The account's queue lists each waiting task with its position and pending reason.
    small_listing = await timed_get(api, "/queue")
    await fill(size.shallow)
    shallow = await timed()
    shallow_detail = await _detail_ms(api, list(waiting)[-20:])
    listing = await timed_get(api, "/queue")  # after the timed calls: it keeps the API busy for a while
    await fill(size.deep)
    deep = await timed()
    deep_detail = await _detail_ms(api, list(waiting)[-20:])
    log.read()
    placed_early = sum(1 for t in waiting if t in log.starts)
    rss = []
    for _ in range(5):
        rss.append(rss_mb(platform.api_pid))
        await asyncio.sleep(0.2)

    cancelled_at = time.time()
    await cancel_all(api, list(holds.sent), CLIENTS)
    await wait_seen(log, waiting, "starts", _bound_s(len(waiting)))
    drain_rate = len(waiting) / max(max(log.starts[t] for t in waiting) - cancelled_at, 1e-9)
    return Depths(shallow, deep, filling, (shallow_detail, deep_detail), (small_listing, listing), placed_early,
                  rss, len(waiting), drain_rate)


async def _detail_ms(api: Api, taskids: list[str]) -> list[float]:
    """GET /task/<id> of waiting tasks (their queue position and pending reason), one by one."""
    return [await timed_get(api, f"/task/{taskid}") * 1000 for taskid in taskids]


async def _measure(platform: PlacementPlatform, size: Size) -> tuple[list[Row], list]:
    rng = random.Random(SEED)
    api = Api(platform.server.url, platform.keys["bench"], CLIENTS)
    try:
        await wait_count(api, "free", size.executors, _bound_s(0))
        items = await api.executors()
        idle_rss = rss_mb(platform.api_pid)
        meters = {"API": CpuMeter(platform.api_pid), "simulated executors": CpuMeter(platform.sim.pid),
                  "clients": CpuMeter(os.getpid())}
        ours, pinned = await _rates(api, platform, size, items, rng)
        cpu = {name: meter.share() for name, meter in meters.items()}
        depths = await _queue_depths(api, platform, size, items, rng)
    finally:
        await api.close()
    rows, series = _rate_rows(platform, size, items, ours, pinned, cpu)
    more_rows, more_series = _queue_rows(platform, size, depths, idle_rss, Summary([r.rate for r in ours], "tasks/s"))
    return rows + more_rows, series + more_series


def _ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms"


def _rate_rows(platform: PlacementPlatform, size: Size, items: list[dict], ours: list[Round],
               pinned: list[Round], cpu: dict[str, float | None]) -> tuple[list[Row], list]:
    rate = Summary([r.rate for r in ours], "tasks/s")
    base_rate = Summary([r.rate for r in pinned], "tasks/s")
    answer = [ms for r in ours for ms in r.submitted.answer_ms]
    # A GPU whose memory the API does not know meets no min_vram_mb: the tasks would ask less of it.
    gpus = sum(1 for i in items if i["gpus"])
    with_vram = sum(1 for i in items if i["gpus"] and i["gpu_memory_mb"])
    rate_row = Row(
        "placement rate", f"{size.tasks:,} tasks with requirements, {CLIENTS} clients, {size.executors:,} executors "
        f"of mixed hardware, runs {size.run_s[0]:g}-{size.run_s[1]:g} s (vs as many pinned with hwid)",
        rate, base_rate, ratio(rate.median, base_rate.median), f">= {TARGET_RATE:g} tasks/s",
        rate.median >= TARGET_RATE,
        [f"placement rate: addtask with requirements under {CLIENTS} clients {_ms(answer)}; CPU over the rounds "
         + ", ".join(f"{k} {v:.0%} of a core" for k, v in cpu.items() if v is not None)
         + f"; pinned submissions that found their executor still busy (409, skipped): "
         f"{sum(r.submitted.busy for r in pinned)}",
         f"placement rate: {gpus} of {size.executors:,} executors have GPUs, the API knows the memory of "
         f"{with_vram} of them; all connected in {platform.connect_s:.1f} s"],
    )
    latency = Summary([ms for r in ours for ms in r.latency_ms], "ms")
    base_latency = Summary([ms for r in pinned for ms in r.latency_ms], "ms")
    latency_ratio = ratio(latency.median, base_latency.median)
    waited_ids = {t for r in ours for t in r.waited}
    at_once = [ms for r in ours for t, ms in zip(r.submitted.sent, r.latency_ms) if t not in waited_ids]
    latency_row = Row(
        "placement latency", f"submit -> start received by the executor: {_ms(latency.samples)} "
        f"(pinned {_ms(base_latency.samples)})", latency, base_latency, latency_ratio,
        f"p50 <= {TARGET_LATENCY_RATIO:g}x pinned", latency_ratio <= TARGET_LATENCY_RATIO,
        [f"placement latency: {len(waited_ids):,} of {size.tasks:,} tasks ({len(waited_ids) / size.tasks:.1%}) "
         f"found no fitting executor free and waited for one (their start came over {WAITED_S * 1000:g} ms after "
         f"the answer); the others, placed at once: {_ms(at_once)}"],
    )
    series = [("placement: submit to start received", "ms", {"by requirements": latency.samples,
                                                              "pinned with hwid": base_latency.samples})]
    return [rate_row, latency_row], series


def _queue_rows(platform: PlacementPlatform, size: Size, depths: Depths, idle_rss: float,
                rate: Summary) -> tuple[list[Row], list]:
    deep, shallow = Summary(depths.deep.answer_ms, "ms"), Summary(depths.shallow.answer_ms, "ms")
    depth_ratio = ratio(deep.p99, shallow.p99)
    shallow_detail, deep_detail = depths.detail_ms
    small_listing, listing = depths.listing_s
    queue_row = Row(
        "placement addtask queued", f"addtask one by one with {size.deep:,} waiting: p99 {deep.p99:.1f} ms "
        f"(with {size.shallow:,} waiting: p99 {shallow.p99:.1f} ms), every executor busy", deep, shallow,
        depth_ratio, f"p99 < {TARGET_ADDTASK_P99_MS:g} ms, ratio <= {TARGET_DEPTH_RATIO:g}",
        deep.p99 < TARGET_ADDTASK_P99_MS and depth_ratio <= TARGET_DEPTH_RATIO,
        [f"placement addtask queued: filling the queue, {CLIENTS} clients: {_ms(depths.filling_ms)}; "
         f"waiting tasks placed before the drain (should be 0): {depths.placed_early}",
         f"placement addtask queued: task detail of a waiting task {_ms(deep_detail)} with {size.deep:,} waiting "
         f"({_ms(shallow_detail)} with {size.shallow:,}); GET /queue of the account took {listing:.2f} s with "
         f"{size.shallow:,} waiting ({small_listing:.2f} s with {size.shallow // 10:,})"],
    )
    drain = Summary([depths.drain_rate], "tasks/s")
    drain_row = Row(
        "placement drain", f"{depths.waiting:,} waiting tasks placed as the {size.executors:,} executors free up "
        "(vs the rate above)", drain, rate, ratio(drain.median, rate.median), f">= {TARGET_RATE:g} tasks/s",
        drain.median >= TARGET_RATE,
    )
    rss = Summary(depths.rss_mb, "MB")
    memory_row = Row(
        "placement memory", f"API RSS with {size.deep:,} waiting and {size.tasks * 2:,} tasks done "
        f"(vs before any task, {size.executors:,} executors connected)", rss, Summary([idle_rss], "MB"),
        ratio(rss.median, idle_rss), f"<= {TARGET_RSS_MB:g} MB", max(rss.samples) <= TARGET_RSS_MB,
        [f"placement memory: API peak RSS (VmHWM) over the whole run: {rss_mb(platform.api_pid, 'VmHWM'):.1f} MB"],
    )
    series = [("placement addtask with tasks waiting", "ms", {f"{size.deep:,} waiting": deep.samples,
                                                              f"{size.shallow:,} waiting": shallow.samples})]
    return [queue_row, drain_row, memory_row], series


def run(quick: bool, workdir: Path) -> tuple[list[Row], list]:
    size = QUICK if quick else FULL
    platform = PlacementPlatform(workdir, size.executors)
    try:
        platform.start()
        return asyncio.run(_measure(platform, size))
    finally:
        platform.stop()
