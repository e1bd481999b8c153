"""The baseline server: a bare aiohttp JSON handler, the same answers with no platform.

    python -m bench.bare --port PORT

``GET /tasks`` answers 100 task objects and ``GET /hw`` 1,000 executor objects,
shaped like `gettasklist` and `gethwlist`, built once and serialised per request.
"""

from __future__ import annotations

import argparse

from aiohttp import web

TASKS = [
    {"taskid": f"{n:024x}", "ip": "10.0.0.1", "image": "megamind.network/benchbox:latest",
     "params": f"--job {n}", "state": 4, "error_msg": ""}
    for n in range(100)
]
HARDWARE = [
    {"hwid": f"{n:016x}", "gpus": ["nVidia 1060 6G"], "cpus": ["Simulated CPU 3.0 GHz"], "ram": 32000,
     "network": "1000mbit", "calculated_perfomance_rating": 4.5, "cost": 0.5}
    for n in range(1000)
]


async def tasks(request: web.Request) -> web.Response:
    return web.json_response(TASKS)


async def hardware(request: web.Request) -> web.Response:
    return web.json_response(HARDWARE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_get("/tasks", tasks)
    app.router.add_get("/hw", hardware)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
