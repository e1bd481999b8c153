"""What the API concludes when an agent tells it which containers it has."""

from __future__ import annotations

from dataclasses import dataclass, field

from megamind.protocol import (
    STATUS_BUSY,
    STATUS_EXITED,
    STATUS_RUNNING,
    ContainerReport,
)
from megamind.states import TaskState, state_of_exit
from megamind.store.tasks import Task

VANISHED = "container vanished"


@dataclass
class Plan:
    states: list[tuple[str, TaskState, str]] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


def reconcile(tasks: list[Task], inventory: list[ContainerReport], pending: set[str]) -> Plan:
    """Compare the tasks the API holds for one executor with the containers it has.

    ``pending`` holds the taskids with commands not yet acknowledged: their outcome
    is still to come, so neither the container nor its absence says anything yet.
    """
    plan = Plan()
    live = {t.taskid: t for t in tasks if not t.deleted}
    seen: set[str] = set()
    for report in inventory:
        seen.add(report.taskid)
        task = live.get(report.taskid)
        if task is None:
            # Deleted while the agent was away, or never ours to keep: an orphan.
            if report.taskid not in pending:
                plan.remove.append(report.taskid)
            continue
        if report.taskid in pending or report.status == STATUS_BUSY:
            continue
        if report.status == STATUS_RUNNING:
            plan.states.append((task.taskid, TaskState.RUNNING, ""))
        elif report.status == STATUS_EXITED:
            plan.states.append((task.taskid, *state_of_exit(report.exit_code or 0)))
        else:
            # Created but never started, with no command left to start it.
            plan.states.append((task.taskid, TaskState.ERROR, f"container left {report.status}"))
    for task in live.values():
        if task.taskid in seen or task.taskid in pending:
            continue
        if task.state.holds_executor:
            plan.states.append((task.taskid, TaskState.ERROR, VANISHED))
    return plan
