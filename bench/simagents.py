"""Simulated executors: N agents in one process, each registering through the real
register call and holding its own WebSocket, speaking `megamind.protocol`.

    python -m bench.simagents --api URL --api-key OWNER_KEY --count 1000 --ready FILE

Each says hello with its hardware, tells an empty inventory once welcomed, answers
pings (aiohttp heartbeats both ways, 5 s), acknowledges every command and reports a
started task as running.  When all are welcomed, FILE gets the count.  Runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import aiohttp

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


class Fleet:
    def __init__(self, api: str, key: str, count: int) -> None:
        self.api = api.rstrip("/")
        self.key = key
        self.count = count
        self.welcomed: set[str] = set()
        self.all_welcomed = asyncio.Event()

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

    async def agent(self, http: aiohttp.ClientSession, hwid: str, token: str) -> None:
        while True:
            try:
                async with http.ws_connect(self.api + AGENT_PATH, headers={TOKEN_HEADER: token},
                                           heartbeat=HEARTBEAT_S, max_msg_size=MAX_MESSAGE_BYTES) as ws:
                    await ws.send_str(Hello(PROTOCOL_VERSION, HARDWARE, 0.5).encode())
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
                            if received.op is not Op.REMOVE:
                                await ws.send_str(StateReport(received.taskid, TaskState.RUNNING).encode())
                            await ws.send_str(Ack(received.id).encode())
            except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
                pass
            self.welcomed.discard(hwid)
            await asyncio.sleep(1.0)


async def main_async(args: argparse.Namespace) -> None:
    fleet = Fleet(args.api, args.api_key, args.count)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    connector = aiohttp.TCPConnector(limit=0)  # one connection per agent, all held open
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=30)) as http:
        limit = asyncio.Semaphore(16)
        identities = await asyncio.gather(*(fleet.register(http, limit) for _ in range(args.count)))
        agents = [asyncio.create_task(fleet.agent(http, hwid, token)) for hwid, token in identities]
        await fleet.all_welcomed.wait()
        args.ready.write_text(str(len(fleet.welcomed)))
        await stopping.wait()
        for task in agents:
            task.cancel()
        await asyncio.gather(*agents, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--ready", type=Path, required=True)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
