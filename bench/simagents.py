"""Simulated executors: N agents in one process, each registering through the real
register call and holding its own WebSocket, speaking `megamind.protocol`.

    python -m bench.simagents --api URL --api-key OWNER_KEY --count 1000 --ready FILE
                              [--hardware uniform|mixed] [--events FILE]

Each says hello with its hardware, tells an empty inventory once welcomed, answers
pings (aiohttp heartbeats both ways, 5 s), acknowledges every command and reports a
started task as running.  When all are welcomed, FILE gets the count.  Runs until SIGTERM.

A task whose params hold ``sim-run=SECONDS`` is reported stopped (exit code 0) that
long after its start, which frees the executor; any other runs until it is removed.
``--hardware mixed`` gives each executor its own size and price (`bench/hardwaremix.py`);
``--events`` records each start received and each task ended (`bench/simevents.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
from pathlib import Path

import aiohttp

from bench.hardwaremix import executor_hardware
from bench.simevents import START, STOP, EventWriter
from megamind.protocol import (
    AGENT_PATH,
    API_MESSAGES,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    REGISTER_PATH,
    TOKEN_HEADER,
    Ack,
    Command,
    Hello,
    Inventory,
    Op,
    StateReport,
    Welcome,
    decode,
)
from megamind.states import TaskState

HARDWARE = {"cpus": ["Simulated CPU 3.0 GHz"], "gpus": ["nVidia 1060 6G"], "ram": 32000,
            "network": "1000mbit", "calculated_perfomance_rating": 4.5}
HEARTBEAT_S = 5.0
RUN_DIRECTIVE = re.compile(r"(?:^|\s)sim-run=([0-9]+(?:\.[0-9]+)?)(?:\s|$)")


def run_seconds(params: str) -> float | None:
    """How long a task runs before it stops by itself; None: until it is removed."""
    found = RUN_DIRECTIVE.search(params)
    return float(found.group(1)) if found else None


class Fleet:
    def __init__(self, api: str, key: str, count: int, mixed: bool = False,
                 events: EventWriter | None = None) -> None:
        self.api = api.rstrip("/")
        self.key = key
        self.count = count
        self.mixed = mixed
        self.events = events
        self.welcomed: set[str] = set()
        self.all_welcomed = asyncio.Event()

    def hello(self, n: int) -> Hello:
        if not self.mixed:
            return Hello(PROTOCOL_VERSION, HARDWARE, 0.5)
        return Hello(PROTOCOL_VERSION, *executor_hardware(n))

    async def register(self, http: aiohttp.ClientSession, limit: asyncio.Semaphore) -> tuple[str, str]:
        async with limit:
            for _ in range(20):
                async with http.post(self.api + REGISTER_PATH, json={"cost": 0.5},
                                     headers={"api-key": self.key}) as resp:
                    body = await resp.json(content_type=None)
                    if resp.status == 201:
                        return body["hwid"], body["token"]
                await asyncio.sleep(0.5)
            raise RuntimeError(f"registration refused: {resp.status} {body}")

    async def agent(self, http: aiohttp.ClientSession, n: int, hwid: str, token: str) -> None:
        while True:
            running: dict[str, asyncio.Task] = {}  # taskid -> its stop to come
            try:
                async with http.ws_connect(self.api + AGENT_PATH, headers={TOKEN_HEADER: token},
                                           heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES) as ws:
                    await ws.send_str(self.hello(n).encode())
                    async for message in ws:
                        if message.type != aiohttp.WSMsgType.TEXT:
                            continue
                        received = decode(message.data, API_MESSAGES)
                        if isinstance(received, Welcome):
                            await ws.send_str(Inventory(()).encode())
                            self.welcomed.add(hwid)
                            if len(self.welcomed) == self.count:
                                self.all_welcomed.set()
                        elif isinstance(received, Command):
                            await self._command(ws, received, running)
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
                pass
            finally:
                for stop in running.values():
                    stop.cancel()
            self.welcomed.discard(hwid)
            await asyncio.sleep(1.0)

    async def _command(self, ws: aiohttp.ClientWebSocketResponse, command: Command,
                       running: dict[str, asyncio.Task]) -> None:
        if command.op in (Op.START, Op.RESTART):
            if self.events is not None:
                self.events.write(START, command.taskid)
            await ws.send_str(StateReport(command.taskid, TaskState.RUNNING).encode())
            seconds = run_seconds(command.params)
            if seconds is not None:
                previous = running.pop(command.taskid, None)
                if previous is not None:
                    previous.cancel()
                running[command.taskid] = asyncio.create_task(
                    self._stop_after(ws, command.taskid, seconds, running))
        elif command.op is Op.STOP:
            self._forget(command.taskid, running)
            await ws.send_str(StateReport(command.taskid, TaskState.STOPPED, exit_code=0).encode())
        else:  # remove: the container is gone, nothing to report but the ack
            self._forget(command.taskid, running)
        await ws.send_str(Ack(command.id).encode())

    def _forget(self, taskid: str, running: dict[str, asyncio.Task]) -> None:
        stop = running.pop(taskid, None)
        if stop is not None:
            stop.cancel()
        if self.events is not None:
            self.events.write(STOP, taskid)

    async def _stop_after(self, ws: aiohttp.ClientWebSocketResponse, taskid: str, seconds: float,
                          running: dict[str, asyncio.Task]) -> None:
        await asyncio.sleep(seconds)
        running.pop(taskid, None)
        try:
            await ws.send_str(StateReport(taskid, TaskState.STOPPED, exit_code=0).encode())
        except (ConnectionError, RuntimeError):
            return  # the link is gone; the inventory after the reconnect tells
        if self.events is not None:
            self.events.write(STOP, taskid)


async def main_async(args: argparse.Namespace) -> None:
    events = EventWriter(args.events) if args.events else None
    fleet = Fleet(args.api, args.api_key, args.count, args.hardware == "mixed", events)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    connector = aiohttp.TCPConnector(limit=0)  # one connection per agent, all held open
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=30)) as http:
        limit = asyncio.Semaphore(16)
        identities = await asyncio.gather(*(fleet.register(http, limit) for _ in range(args.count)))
        agents = [asyncio.create_task(fleet.agent(http, n, hwid, token))
                  for n, (hwid, token) in enumerate(identities)]
        await fleet.all_welcomed.wait()
        args.ready.write_text(str(len(fleet.welcomed)))
        await stopping.wait()
        for task in agents:
            task.cancel()
        await asyncio.gather(*agents, return_exceptions=True)
    if events is not None:
        events.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--ready", type=Path, required=True)
    parser.add_argument("--hardware", choices=("uniform", "mixed"), default="uniform")
    parser.add_argument("--events", type=Path, help="append each start received and each task ended")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
