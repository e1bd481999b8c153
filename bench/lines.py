"""Lines: a task prints 200,000 numbered lines flat out (``seq``); not one may be lost.

Each round starts one task (``sleep 2; seq 0 199999``) on the one-slot agent, follows
it through the API (``logs?follow=1``, opened right after addtask) and through
``docker logs -f --timestamps`` (opened once the container runs, before its first
line), and when the task has ended reads its whole stdout back through the logs call,
and the engine's own stored copy (``docker logs`` without ``-f``).  Both Megamind
reads must hold every number once, in order.  Speed: lines per second from the first
line to the last as each reader got them; the ratio is Megamind's follower over
``docker logs -f`` on the same container.

200,000 such lines are about 15 MB in the engine's json-file log, past the 10 MB at
which the agent's log options rotate it; one more round prints 100,000 lines (one
file) so that a loss at the rotation can be told from a loss of Megamind's own.
"""

from __future__ import annotations

import asyncio

from bench.client import Customer
from bench.engine import EnginePlatform
from bench.procs import cpu_seconds
from bench.stats import Row, Summary, ratio
from bench.streams import SequenceCheck, check_sequence, follow_both, lines_per_second, longest_pause_ms
from megamind.client.follow import split_lines
from megamind.executor.spec import container_name

COUNT = 200_000
ONE_FILE_COUNT = 100_000  # ~7.6 MB of json-file log: below the 10 MB rotation
TIMEOUT_S = 300.0


def script(count: int) -> str:
    return f"sleep 2; seq 0 {count - 1}"


async def _round(platform: EnginePlatform, customer: Customer, hwid: str, count: int) -> dict:
    agent_pid = platform.agent1.proc.pid
    cpu_before = cpu_seconds(agent_pid)
    taskid = await customer.addtask(hwid, script(count))
    pair = await follow_both(platform.client, customer.http, customer.base, taskid, TIMEOUT_S)
    agent_cpu = cpu_seconds(agent_pid) - cpu_before
    whole = await customer.log_lines(taskid)
    stored = split_lines(await asyncio.to_thread(platform.client.api.logs, container_name(taskid), stderr=False))
    result = {
        "followed": check_sequence(pair.megamind.texts, count),
        "whole": check_sequence(whole, count),
        "docker": check_sequence(pair.docker.texts, count),
        "engine": check_sequence(stored, count),
        "ours_rate": lines_per_second(pair.megamind.at_ns) or 0.0,
        "docker_rate": lines_per_second(pair.docker.at_ns) or 0.0,
        # From the engine's stamp of the last line docker logs -f got to its arrival at each reader.
        "ours_last_ms": (pair.megamind.at_ns[-1] - pair.docker.stamped_ns[-1]) / 1e6 if pair.megamind.at_ns else 0,
        "docker_last_ms": (pair.docker.at_ns[-1] - pair.docker.stamped_ns[-1]) / 1e6 if pair.docker.at_ns else 0,
        "engine_rate": lines_per_second(pair.docker.stamped_ns) or 0.0,
        "ours_pause_ms": longest_pause_ms(pair.megamind.at_ns),
        "docker_pause_ms": longest_pause_ms(pair.docker.at_ns),
        "late_docker": bool(pair.docker.stamped_ns) and pair.docker.stamped_ns[0] < pair.docker.spawned_ns,
        "agent_cpu_s": agent_cpu,
    }
    await customer.deltask(taskid)
    await customer.wait_free([hwid])
    await platform.wait_containers_gone([taskid])
    return result


def worst(checks: list[SequenceCheck]) -> SequenceCheck:
    return max(checks, key=lambda c: (not c.exact, c.lost + c.duplicated + c.out_of_order + c.foreign))


def _median(values: list[float]) -> float:
    return Summary(values, "").median


async def run(platform: EnginePlatform, quick: bool) -> tuple[list[Row], list]:
    rounds = 1 if quick else 3
    (hwid,) = platform.agent1.hwids
    results = []
    async with Customer(platform.server.url, platform.key) as customer:
        await customer.wait_free([hwid])
        for _ in range(rounds):
            results.append(await _round(platform, customer, hwid, COUNT))
            await asyncio.sleep(1.0)
        one_file = await _round(platform, customer, hwid, ONE_FILE_COUNT)
    ours_s = Summary([r["ours_rate"] for r in results], "lines/s")
    base_s = Summary([r["docker_rate"] for r in results], "lines/s")
    met = all(r["followed"].exact and r["whole"].exact for r in results)
    lost = {k: sum(r[k].lost for r in results) for k in ("followed", "whole", "docker", "engine")}
    notes = [
        f"lines: {rounds} task(s) x {COUNT:,} lines; lines lost in all: follow=1 client {lost['followed']:,}, whole "
        f"log read back {lost['whole']:,}, docker logs -f {lost['docker']:,}, the engine's stored log "
        f"{lost['engine']:,}. Worst round: follow=1 client {worst([r['followed'] for r in results]).text()}; "
        f"whole log read back {worst([r['whole'] for r in results]).text()}; docker logs -f "
        f"{worst([r['docker'] for r in results]).text()}; the engine's stored log (docker logs, after the end) "
        f"{worst([r['engine'] for r in results]).text()}",
        f"lines: one task of {ONE_FILE_COUNT:,} lines (one engine log file, no rotation): follow=1 client "
        f"{one_file['followed'].text()}; whole log {one_file['whole'].text()}; docker logs -f "
        f"{one_file['docker'].text()}; {one_file['ours_rate']:,.0f} lines/s followed vs "
        f"{one_file['docker_rate']:,.0f} for docker logs -f",
        f"lines: the engine stamped them at {_median([r['engine_rate'] for r in results]):,.0f} lines/s "
        f"(first to last stamp); the last line reached the follow=1 client "
        f"{_median([r['ours_last_ms'] for r in results]):.0f} ms after its stamp, docker logs -f "
        f"{_median([r['docker_last_ms'] for r in results]):.0f} ms; longest pause between two lines: "
        f"{_median([r['ours_pause_ms'] for r in results]):.0f} ms for the follow=1 client, "
        f"{_median([r['docker_pause_ms'] for r in results]):.0f} ms for docker logs -f (medians over the rounds)",
        f"lines: agent CPU {_median([r['agent_cpu_s'] for r in results]):.2f} s per {COUNT:,}-line task "
        f"({_median([r['agent_cpu_s'] for r in results]) / COUNT * 1e6:.1f} us per line)",
    ]
    if any(r["late_docker"] for r in results):
        notes.append("lines: docker logs -f was attached after the first line in some round (its rate is high)")
    row = Row("lines", f"{COUNT:,} lines printed flat out: lines/s as followed (vs docker logs -f)", ours_s, base_s,
              ratio(ours_s.median, base_s.median), "0 lost, duplicated or out of order", met, notes)
    return [row], []
