from __future__ import annotations

from aiohttp import web

from megamind.api import agent_handlers, handlers
from megamind.protocol import AGENT_PATH, REGISTER_PATH, SPEEDTEST_PATH


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/gethwlist", handlers.gethwlist)
    app.router.add_post("/api/v1/addtask", handlers.addtask)
    app.router.add_delete("/api/v1/deltask/{taskid}", handlers.deltask)
    app.router.add_get("/api/v1/gettasklist", handlers.gettasklist)
    app.router.add_post("/api/v1/restarttask/{taskid}", handlers.restarttask)
    app.router.add_get("/api/v1/gettasklogs/{taskid}", handlers.gettasklogs)

    app.router.add_post(REGISTER_PATH, agent_handlers.register)
    app.router.add_get(SPEEDTEST_PATH, agent_handlers.speedtest)
    app.router.add_get(AGENT_PATH, agent_handlers.connect)
