"""A task as a person reads it: one line on where it stands, --wait's progress lines,
and `megamind inspect`'s fields."""

from __future__ import annotations

import shlex
import time

import click

from megamind.cli import render
from megamind.cli.customer.session import EXIT_TASK_FAILED, EXIT_TIMEOUT, Failure, print_json
from megamind.client import SETTLED, Client, PublishedPort, Requirements, Task, TaskLimits, TaskState
from megamind.protocol import Phase

SETUP_PHASES = {
    Phase.PULLING.value: "setup: pulling the image",
    Phase.CREATING.value: "setup: creating the container",
    Phase.STARTING.value: "setup: starting the container",
    Phase.RESTARTING.value: "setup: restarting the container",
}


def describe_queue(task: Task) -> str:
    """``position 2 (2 executors fit; both busy)``: where a queued task stands, and why."""
    text = "waiting" if task.queue_position is None else f"position {task.queue_position}"
    return f"{text} ({task.pending_reason})" if task.pending_reason else text


def describe_state(task: Task) -> str:
    """One line for a person on where a task stands."""
    if task.state == TaskState.SETUP:
        if task.queued:  # before any executor: whether one is online does not apply
            return f"queued: {describe_queue(task)}"
        if task.executor_online is False:
            return "setup: waiting for the executor to come back"
        return SETUP_PHASES.get(task.phase, "setup: accepted, waiting for the executor")
    if task.state == TaskState.UNKNOWN:
        return "unknown: the executor is unreachable"
    if task.state == TaskState.ERROR:
        return f"error: {task.error_msg or 'no reason given'}"
    if task.state == TaskState.STOPPED:
        return "stopped: cancelled" if task.cancelled else "stopped: exited with code 0"
    if task.progress is not None:
        return f"{task.state_name} ({render.percent(task.progress)})"
    return task.state_name


def wait_settled(client: Client, taskid: str, timeout: float, interval: float, as_json: bool) -> Task:
    """Print each new state of the task (stderr) until it is settled; fail on error or timeout.

    A queued task's line changes as it moves up the queue, so each new position is shown.
    """
    started = time.monotonic()
    last: str | None = None
    while True:
        task = client.task(taskid)
        line = describe_state(task)
        if line != last:
            click.echo(f"[{time.monotonic() - started:5.1f}s] {line}", err=True)
            last = line
        if task.state in SETTLED:
            break
        if time.monotonic() - started >= timeout:
            if as_json:
                print_json(task.to_json())
            still = f"queued at {describe_queue(task)}" if task.queued else task.state_name
            raise Failure(f"task {taskid} is still {still} after {timeout:g} s; it goes on "
                          f"(see `megamind ps`)", EXIT_TIMEOUT)
        time.sleep(interval)
    if as_json:
        print_json(task.to_json())
    if task.state == TaskState.ERROR:
        raise Failure(f"task {taskid} failed: {task.error_msg or 'no reason given'}", EXIT_TASK_FAILED)
    return task


def describe_results(task: Task) -> str:
    if task.results is None:
        return "none yet" if not task.finished else "none"
    text = f"{render.size(task.results.size)}, collected {render.ago(task.results.created_at)}"
    if task.results.truncated:
        text += f", {task.results.truncated} files left out (the platform's bound)"
    return f"{text} (`megamind results {task.taskid}`)"


def describe_requirements(wanted: Requirements) -> str:
    parts = []
    if wanted.gpus is not None:
        parts.append(f"gpus >= {wanted.gpus}")
    if wanted.gpu_model is not None:
        parts.append(f"gpu model contains {wanted.gpu_model!r}")
    if wanted.min_vram_mb is not None:
        parts.append(f"vram >= {render.megabytes(wanted.min_vram_mb)} per gpu")
    if wanted.cpus is not None:
        parts.append(f"cpus >= {wanted.cpus}")
    if wanted.ram is not None:
        parts.append(f"ram >= {render.megabytes(wanted.ram)}")
    if wanted.max_cost is not None:
        parts.append(f"cost <= {wanted.max_cost:.2f}/h")
    if wanted.min_rating is not None:
        parts.append(f"rating >= {wanted.min_rating:g}")
    return ", ".join(parts) or "-"


def describe_limits(limits: TaskLimits) -> str:
    parts = []
    if limits.cpus is not None:
        parts.append(f"cpus {limits.cpus:g}")
    if limits.memory is not None:
        parts.append(f"memory {render.megabytes(limits.memory)}")
    if limits.cputime is not None:
        parts.append(f"cpu time {render.duration(limits.cputime)}")
    if limits.runtime is not None:
        parts.append(f"runtime {render.duration(limits.runtime)}")
    return ", ".join(parts) or "-"


def describe_port(port: PublishedPort) -> str:
    """``8888 -> 203.0.113.7:32768``; only the container's port before it is published."""
    if port.endpoint:
        return f"{port.container} -> {port.endpoint}"
    if port.host:
        return f"{port.container} -> port {port.host}"
    return f"{port.container} (not published yet)"


def describe_executor(task: Task) -> str:
    if task.hwid is None:
        return "not placed yet" if task.queued or task.state == TaskState.SETUP else "-"
    return f"{task.hwid} ({'online' if task.executor_online else 'offline'}, {task.ip or 'no address'})"


def _time(timestamp: float | None) -> str:
    return "-" if timestamp is None else render.ago(timestamp)


def inspect_rows(task: Task) -> list[tuple[str, object]]:
    """`megamind inspect`'s fields. What the API did not say (an older server) is left out;
    what it said is empty shows as ``-``."""
    rows: list[tuple[str, object]] = [
        ("taskid", task.taskid),
        ("state", f"{task.state_name} ({int(task.state)})"),
        ("what", describe_state(task)),
        ("error", task.error_msg or "-"),
    ]
    if task.queued:
        rows.append(("queue", describe_queue(task)))
    if task.exit_code is not None:
        rows.append(("exit code", task.exit_code))
    rows += [
        ("progress", "-" if task.progress is None else render.percent(task.progress)),
        ("results", describe_results(task)),
        ("image", task.image),
        ("params", task.params or "-"),
    ]
    # A server with the job model always says the priority; an older one says none of it.
    job_model = task.priority is not None
    job_rows = [
        ("command", task.command, lambda words: shlex.join(words) if words else "- (the image's own)"),
        ("workdir", task.workdir, str),
        ("env", task.env, lambda env: " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())),
        ("ports", task.ports, lambda ports: ", ".join(describe_port(p) for p in ports)),
        ("requires", task.requirements, describe_requirements),
        ("limits", task.limits, describe_limits),
        ("priority", task.priority, str),
    ]
    for name, value, show in job_rows:
        if value is not None:
            rows.append((name, show(value) or "-"))
        elif job_model:
            rows.append((name, "- (the image's own)" if name in ("command", "workdir") else "-"))
    pending = task.pending_command or "-"
    rows += [
        ("executor", describe_executor(task)),
        ("pending", pending + (" (the executor has not reported it done yet)" if task.pending_command else "")),
    ]
    if task.price is not None:
        rows.append(("price", f"{task.price:.2f}/h"))
    if task.billed_seconds is not None or task.cost is not None:
        billed = "-" if task.billed_seconds is None else render.duration(task.billed_seconds)
        rows.append(("billed", billed + ("" if task.cost is None else f", cost {task.cost:.2f}")))
    rows.append(("created", render.ago(task.created_at)))
    for name, timestamp in (("placed", task.placed_at), ("started", task.started_at),
                            ("finished", task.finished_at)):
        if timestamp is not None or job_model:
            rows.append((name, _time(timestamp)))
    rows.append(("changed", render.ago(task.updated_at)))
    return rows
