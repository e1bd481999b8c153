from __future__ import annotations

from aiohttp import web

from megamind.api import agent_files, agent_handlers, extensions, handlers, history, jobs, money, openapi, output
from megamind.api import registry_auth
from megamind.dialects import add_dialects
from megamind.protocol import AGENT_PATH, FILES_PATH, REGISTER_PATH, RESULTS_PATH, SPEEDTEST_PATH


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/gethwlist", handlers.gethwlist)
    app.router.add_post("/api/v1/addtask", handlers.addtask)
    app.router.add_delete("/api/v1/deltask/{taskid}", handlers.deltask)
    app.router.add_get("/api/v1/gettasklist", handlers.gettasklist)
    app.router.add_post("/api/v1/restarttask/{taskid}", handlers.restarttask)
    app.router.add_get("/api/v1/gettasklogs/{taskid}", handlers.gettasklogs)

    # Extensions: beyond the contract, never changing its shapes.
    app.router.add_get("/api/v1/task/{taskid}", extensions.task)
    app.router.add_post("/api/v1/task/{taskid}/cancel", jobs.cancel)
    app.router.add_get("/api/v1/queue", jobs.queue)
    app.router.add_get("/api/v1/hardware", jobs.hardware)
    app.router.add_get("/api/v1/history", history.history)
    app.router.add_get("/api/v1/tasks", history.live_tasks)
    app.router.add_post("/api/v1/estimate", money.estimate)
    app.router.add_get("/api/v1/account", money.account)
    app.router.add_patch("/api/v1/account", money.set_spend_limit)
    app.router.add_get("/api/v1/usage", money.usage)
    app.router.add_get("/api/v1/earnings", money.earnings)
    app.router.add_get("/api/v1/executors", extensions.executors)
    app.router.add_delete("/api/v1/executors/{hwid}", extensions.remove_executor)
    app.router.add_get("/api/v1/images", extensions.images)
    app.router.add_patch("/api/v1/images", registry_auth.set_visibility)
    app.router.add_get("/api/v1/registry", registry_auth.registry_info)
    app.router.add_get("/api/v1/task/{taskid}/logs", output.logs)
    app.router.add_get("/api/v1/task/{taskid}/results", output.results)
    app.router.add_post("/api/v1/files", output.upload_file)
    # Outside /api/v1/: readable without an api-key.
    app.router.add_get(openapi.SPEC_PATH, openapi.serve)
    # The registry's token server: HTTP basic (account name, api-key) or anonymous.
    app.router.add_get(registry_auth.TOKEN_PATH, registry_auth.token)

    app.router.add_post(REGISTER_PATH, agent_handlers.register)
    app.router.add_get(SPEEDTEST_PATH, agent_handlers.speedtest)
    app.router.add_get(AGENT_PATH, agent_handlers.connect)
    app.router.add_put(RESULTS_PATH, agent_files.put_results)
    app.router.add_get(FILES_PATH, agent_files.get_input)
    add_dialects(app)
