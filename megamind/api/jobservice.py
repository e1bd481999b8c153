"""Submitting, ending and deleting tasks: the one path of the native calls and every dialect.

A dialect translates its request into a native ``addtask`` body and hands it to `submit`,
so its jobs are validated, placed, queued, billed and kept exactly as native tasks are.
``ctx`` is what a handler reads the app's resources from (``request.config_dict``), so the
same functions serve the root application and a dialect's sub-application.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from megamind.api.bodies import describe_validation_error
from megamind.api.keys import blobs_key, config_key, hub_key, store_key
from megamind.api.output import results_key
from megamind.api.schemas import add_task_request_schema
from megamind.errors import ExecutorNotFound, ExecutorOffline, Unsatisfiable, ValidationFailed
from megamind.imageref import parse_image
from megamind.jobspec import PortRequest, RunSpec, TaskLimits
from megamind.placement import Need, Requirements, shortfalls
from megamind.store.accounts import Account
from megamind.store.executors import ExecutorRecord
from megamind.store.files import FileRecord
from megamind.store.taskmodel import NewTask

Context = Mapping[Any, Any]


def load_task_body(body: dict[str, Any]) -> dict[str, Any]:
    """A native addtask body, as a dialect built it, checked as addtask checks its own."""
    try:
        return add_task_request_schema.load(body)
    except ValidationError as exc:
        raise ValidationFailed(describe_validation_error(exc.messages)) from None


async def submit(ctx: Context, account: Account, body: dict[str, Any]) -> str:
    """Place or queue a task from a loaded addtask body; its id."""
    store, hub = ctx[store_key], ctx[hub_key]
    hwid = body.get("hwid")
    parse_image(body["image"])  # a bad image is answered before the inputs are looked up
    inputs = await _inputs(ctx, account, body["inputs"])
    spec = run_spec(body)
    payload = run_payload(ctx, body["image"], body["params"], inputs, spec)
    if hwid is not None:
        await validate_pinned(ctx, body, spec)
    placed = await store.scheduler.submit(NewTask(
        account.id, payload["public_image"], body["params"], payload,
        inputs=tuple(f.file_id for f in inputs), hwid=hwid,
        requirements=Requirements.from_dict(body.get("requirements") or {}), spec=spec,
        priority=body["priority"], queue_timeout=body["queue_timeout"],
        labels=dict(body.get("labels") or {}),
    ))
    if placed.command is not None:
        await hub.dispatch(placed.command)
    return placed.task.taskid


async def cancel(ctx: Context, account: Account, taskid: str) -> None:
    """End the task and keep it (state 4, cancelled)."""
    command = await ctx[store_key].tasks.cancel(account.id, taskid)
    if command is not None:
        await ctx[hub_key].dispatch(command)


async def delete(ctx: Context, account: Account, taskid: str) -> None:
    """Stop the task and destroy its container, its logs and its results."""
    store = ctx[store_key]
    command = await store.tasks.delete(account.id, taskid)
    # The task's output goes with it; its input files are the account's and stay.
    await store.logs.delete(taskid)
    await ctx[blobs_key].delete(results_key(taskid))
    if command is not None:
        await ctx[hub_key].dispatch(command)


def run_payload(ctx: Context, image: str, params: str, inputs: list[FileRecord], spec: RunSpec) -> dict[str, Any]:
    """What an agent needs to run the image: where to pull it, what to hand it, which files to fetch,
    and the task's own command, surroundings and limits."""
    ref = parse_image(image)
    return {
        "image": ref.pull_reference(ctx[config_key].registry),
        "public_image": ref.public,
        "params": params,
        "inputs": [f.input_file().to_wire() for f in inputs],
        "spec": spec.to_wire(),
    }


def run_spec(body: dict[str, Any]) -> RunSpec:
    limits = body.get("limits") or {}
    return RunSpec(
        command=tuple(body["command"]) if body.get("command") is not None else None,
        env=dict(body.get("env") or {}),
        workdir=body.get("workdir"),
        ports=tuple(PortRequest(p["container"], p["host"]) for p in body.get("ports") or ()),
        limits=TaskLimits(limits.get("cpus"), limits.get("memory"), limits.get("cputime"), limits.get("runtime")),
    )


async def _inputs(ctx: Context, account: Account, file_ids: list[str]) -> list[FileRecord]:
    files = await ctx[store_key].files.of_account(account.id, file_ids)
    names: set[str] = set()
    for f in files:
        if f.name in names:
            raise ValidationFailed(f"inputs: two files are named {f.name!r}; each lands at /megamind/input/<name>")
        names.add(f.name)
    return files


async def validate_pinned(ctx: Context, body: dict[str, Any], spec: RunSpec) -> ExecutorRecord:
    """The executor an addtask body names, if a task could start there now."""
    hwid = body["hwid"]
    if body.get("requirements"):
        raise ValidationFailed("give hwid or requirements, not both: hwid runs the task exactly there")
    record = await ctx[store_key].executors.get(hwid)
    if record is None:
        raise ExecutorNotFound(f"hwid: no executor {hwid!r}; pick one from gethwlist")
    if not ctx[hub_key].is_online(hwid):
        raise ExecutorOffline(f"hwid: executor {hwid} is offline")
    lacking = shortfalls(Need.of(Requirements(), spec.limits), record.capacity)
    if lacking:
        raise Unsatisfiable(f"executor {hwid} cannot hold the limits: it lacks {', '.join(lacking)}")
    return record
