"""The messages between the API and its agents, over one WebSocket per agent.

agent -> api:  hello {hardware, cost, inventory}, inventory {inventory},
               state {taskid, state, error_msg}, phase {taskid, phase},
               logs {taskid, lines, reset}, ack {id}
api -> agent:  welcome {hwid}, command {id, op (start, restart, remove, stop), taskid,
               image, public_image, params}

Commands carry ids: the API resends every command not yet acknowledged after a
reconnect, and the agent applies each id at most once.
"""

from __future__ import annotations

from dataclasses import dataclass

AGENT_PATH = "/api/agent/v1/connect"
REGISTER_PATH = "/api/agent/v1/register"
SPEEDTEST_PATH = "/api/agent/v1/speedtest"
TOKEN_HEADER = "executor-token"
PROTOCOL_VERSION = 1

# The contract's logs are the last 20 stdout lines; a line longer than this is cut.
TAIL_LINES = 20
MAX_LINE_CHARS = 64 * 1024

OP_START = "start"
OP_RESTART = "restart"
OP_REMOVE = "remove"
OP_STOP = "stop"  # stop the container, keep it (a task that must not run now)

# Where a task in setup has got to, as the agent reports it.
PHASES = ("pulling", "creating", "starting", "restarting")

# What an agent says of a container in its inventory.
STATUS_RUNNING = "running"
STATUS_EXITED = "exited"
STATUS_BUSY = "busy"  # an operation is under way: its outcome will be reported


@dataclass(frozen=True)
class ContainerReport:
    taskid: str
    status: str
    exit_code: int | None = None

    @classmethod
    def from_message(cls, item: dict) -> "ContainerReport":
        exit_code = item.get("exit_code")
        return cls(str(item["taskid"]), str(item["status"]), exit_code if isinstance(exit_code, int) else None)

    def to_message(self) -> dict:
        return {"taskid": self.taskid, "status": self.status, "exit_code": self.exit_code}
