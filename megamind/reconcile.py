"""What the API concludes when an agent tells it which containers it has."""

from __future__ import annotations

from dataclasses import dataclass, field

from megamind.containerstates import task_state_of
from megamind.protocol import ContainerReport, ContainerStatus
from megamind.states import TaskState
from megamind.store.taskmodel import StateUpdate, Task

VANISHED = "container vanished"


@dataclass
class Plan:
    states: list[StateUpdate] = field(default_factory=list)
    # Containers of no live task and with no command pending, each named once: the hub
    # stores one remove for a task the executor was given, and only sends one otherwise.
    remove: list[str] = field(default_factory=list)
    # Deleted or cancelled tasks whose containers are gone: let go (of the executor, if held).
    released: list[str] = field(default_factory=list)


def reconcile(tasks: list[Task], inventory: list[ContainerReport], pending: set[str], clock_shift: float = 0.0) -> Plan:
    """Compare the tasks the API holds for one executor with the containers it has
    (``clock_shift``: the API's clock minus the agent's, for the engine's times).

    ``pending`` holds the taskids with commands not yet acknowledged: their outcome
    is still to come, so neither the container nor its absence says anything yet.
    A taskid the inventory names twice counts once.
    """
    plan = Plan()
    live = {t.taskid: t for t in tasks if not t.retired}
    seen: set[str] = set()
    for report in inventory:
        if report.taskid in seen:
            continue
        seen.add(report.taskid)
        task = live.get(report.taskid)
        if task is None:
            # Deleted while the agent was away, or never ours to keep: an orphan.
            if report.taskid not in pending:
                plan.remove.append(report.taskid)
            continue
        if report.taskid in pending or report.status is ContainerStatus.BUSY:
            continue
        state, error_msg = task_state_of(report.status, report.exit_code)
        # Same state: what the agent's own report said (published ports, the limit that
        # ended it) is more than an inventory line can tell, so it stands.
        if state != task.state:
            started = report.started_at
            plan.states.append(StateUpdate(task.taskid, state, error_msg, report.exit_code, (), started,
                                           None if started is None else started + clock_shift))
    for task in tasks:
        if task.taskid in seen:
            continue
        if task.retired:
            plan.released.append(task.taskid)
        elif task.taskid not in pending and task.state.holds_executor:
            plan.states.append(StateUpdate(task.taskid, TaskState.ERROR, VANISHED))
    return plan
