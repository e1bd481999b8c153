"""Follow latency: how long after the engine logs a line a follower of the task sees it.

Each round starts one task on the one-slot agent that prints a sequence number about
every 10 ms (busybox ``date`` has no ``%N``, so the task cannot stamp its own lines
finely), and reads it two ways at once: Megamind's ``logs?follow=1`` (opened right
after addtask) and ``docker logs -f --timestamps`` (opened once the container runs,
before the first line).  The reference for both is the engine's own timestamp of the
line, as ``--timestamps`` gives it: the moment the engine read the line from the
container's pipe.  A side's latency for a line is the wall-clock time its bytes
reached this process minus that stamp; engine and bench share the host clock.
"""

from __future__ import annotations

import asyncio

from bench.client import Customer
from bench.engine import EnginePlatform
from bench.stats import Row, Summary, ratio
from bench.streams import check_sequence, first_arrivals, follow_both, latencies_ms

LINES = 300
SCRIPT = f"sleep 2; i=0; while [ $i -lt {LINES} ]; do echo $i; i=$((i+1)); usleep 10000; done"
TARGET_P50_MS, TARGET_P99_MS = 100.0, 250.0
TIMEOUT_S = 120.0


async def _round(platform: EnginePlatform, customer: Customer, hwid: str) -> tuple[list[float], list[float], dict]:
    taskid = await customer.addtask(hwid, SCRIPT)
    pair = await follow_both(platform.client, customer.http, customer.base, taskid, TIMEOUT_S)
    docker = pair.docker
    # Lines the engine stamped before `docker logs -f` was started reached it from history:
    # left out on both sides (the task sleeps first, so there should be none).
    stamped = {t: ns for t, ns in zip(docker.texts, docker.stamped_ns) if ns > docker.spawned_ns}
    ours = latencies_ms(stamped, first_arrivals(pair.megamind.texts, pair.megamind.at_ns))
    base = latencies_ms(stamped, first_arrivals(docker.texts, docker.at_ns))
    stamps = sorted(stamped.values())
    info = {
        "check": check_sequence(pair.megamind.texts, LINES),
        "left_out": len(docker.texts) - len(stamped),
        "interval_ms": (stamps[-1] - stamps[0]) / 1e6 / (len(stamps) - 1) if len(stamps) > 1 else 0.0,
    }
    await customer.deltask(taskid)
    await customer.wait_free([hwid])
    await platform.wait_containers_gone([taskid])
    return ours, base, info


async def run(platform: EnginePlatform, quick: bool) -> tuple[list[Row], list]:
    rounds = 2 if quick else 6
    (hwid,) = platform.agent1.hwids
    ours: list[float] = []
    base: list[float] = []
    infos = []
    async with Customer(platform.server.url, platform.key) as customer:
        await customer.wait_free([hwid])
        for _ in range(rounds):
            o, b, info = await _round(platform, customer, hwid)
            ours += o
            base += b
            infos.append(info)
            await asyncio.sleep(0.5)
    ours_s, base_s = Summary(ours, "ms"), Summary(base, "ms")
    p50, p99 = ours_s.median, ours_s.p99
    met = p50 <= TARGET_P50_MS and p99 <= TARGET_P99_MS and all(i["check"].exact for i in infos)
    notes = [
        f"follow: p99 {p99:.1f} ms for the follow=1 client, {base_s.p99:.1f} ms for docker logs -f; "
        f"{len(ours):,} lines in {rounds} rounds, one every {Summary([i['interval_ms'] for i in infos], '').median:.1f} ms "
        f"(engine stamps); latency = arrival at the reader - the engine's --timestamps stamp",
        f"follow: lines lost/duplicated/out of order by the follow=1 client: "
        f"{sum(i['check'].lost for i in infos)}/{sum(i['check'].duplicated for i in infos)}/"
        f"{sum(i['check'].out_of_order for i in infos)}; left out as read from history: "
        f"{sum(i['left_out'] for i in infos)}",
    ]
    row = Row("follow", "line logged by the engine -> seen by a follow=1 client (vs docker logs -f)", ours_s, base_s,
              ratio(p50, base_s.median), f"p50 <= {TARGET_P50_MS:g} ms, p99 <= {TARGET_P99_MS:g} ms", met, notes)
    series = [("follow: engine stamp -> line seen by the reader", "ms",
               {"megamind follow=1": ours, "docker logs -f": base})]
    return [row], series

