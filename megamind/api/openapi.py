"""The customer API as an OpenAPI 3 document, built with apispec from the marshmallow schemas.

Served at ``/api/openapi.json`` (outside ``/api/v1/``, so no api-key is needed to read
it).  The agents' calls are internal and left out.
"""

from __future__ import annotations

import copy
import functools
from collections import defaultdict
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from megamind.api.bodies import json_response
from megamind.api.output import FOLLOW_VALUES, STREAMS
from megamind.api.schemas import (
    AddTaskRequestSchema,
    ErrorSchema,
    ExecutorItemSchema,
    FileSchema,
    HardwareItemSchema,
    ImageItemSchema,
    ResultsSchema,
    StatusSchema,
    TaskDetailSchema,
    TaskIdSchema,
    TaskItemSchema,
    TaskLogsSchema,
)
from megamind.api.uploads import FILE_PART, MULTIPART, OCTET_STREAM
from megamind.config import ServerConfig
from megamind.errors import ERROR_TABLE, ErrorCode
from megamind.store.files import MAX_NAME_BYTES

SPEC_PATH = "/api/openapi.json"
API_KEY_SCHEME = "api-key"
VERSION = "1.0.0"

_DESCRIPTION = """\
Run images of the Megamind registry as tasks on executors that hardware owners offer.

Every call under `/api/v1/` needs the header `api-key`. Every failure answers
`{"code": N, "message": "..."}`; `code` is stable (see the `Error` responses).
The six calls tagged `contract` are exactly those of the customer API contract; the
calls tagged `extension` add to it without changing any of its shapes.
"""

_SCHEMAS = {
    "Error": ErrorSchema,
    "Status": StatusSchema,
    "HardwareItem": HardwareItemSchema,
    "AddTaskRequest": AddTaskRequestSchema,
    "TaskId": TaskIdSchema,
    "TaskItem": TaskItemSchema,
    "TaskLogs": TaskLogsSchema,
    "Results": ResultsSchema,  # before the detail that nests it, or apispec names it itself
    "TaskDetail": TaskDetailSchema,
    "ExecutorItem": ExecutorItemSchema,
    "ImageItem": ImageItemSchema,
    "File": FileSchema,
}

# What the contract says of its fields; the extension schemas carry their own.
_FIELD_DOCS = {
    "Error": {
        "code": "a stable, non-zero error code (0 only in the success answer)",
        "message": "what was wrong, for a person to act on",
    },
    "HardwareItem": {
        "hwid": "the executor's unique id, stable across restarts of its agent",
        "gpus": "one entry per installed GPU",
        "cpus": "one entry per CPU socket",
        "ram": "memory in MB",
        "network": 'measured network speed, e.g. "100mbit"',
        "calculated_perfomance_rating": "the measured performance rating (spelled as in the contract)",
        "cost": "the owner's price per hour of task run time",
    },
    "AddTaskRequest": {
        "image": "megamind.network/<name>:<tag> (:latest when the tag is left out)",
        "params": "any string, handed unchanged to the task as MEGAMIND_PARAMS",
        "hwid": "a free executor from gethwlist",
    },
    "TaskId": {"taskid": "the new task's unguessable id"},
    "TaskItem": {
        "ip": "the address of the executor running the task",
        "state": "1 unknown, 2 setup, 3 running, 4 stopped, 5 error",
        "error_msg": "empty unless something went wrong; then why",
    },
    "TaskLogs": {
        "logs_b64": "base64 of the last 20 stdout lines, oldest first, each ended by a newline",
    },
}

# Which error answers each kind of call can give, besides those every call can give.
_COMMON_ERRORS = ("UNAUTHORIZED", "RATE_LIMITED", "INTERNAL", "UNAVAILABLE")
_BODY_ERRORS = ("BAD_REQUEST", "VALIDATION_FAILED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
                "REQUEST_TIMEOUT", "IMAGE_NOT_ALLOWED")
_TASKID = {
    "name": "taskid", "in": "path", "required": True, "schema": {"type": "string"},
    "description": "a task id from addtask",
}
_LOG_PARAMETERS = [
    _TASKID,
    {"name": "stream", "in": "query", "required": False,
     "schema": {"type": "string", "enum": list(STREAMS), "default": "stdout"}, "description": "which stream"},
    {"name": "tail", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 0},
     "description": "only the last N lines (0: none of those printed so far); all of them when left out"},
    {"name": "follow", "in": "query", "required": False,
     "schema": {"type": "string", "enum": list(FOLLOW_VALUES), "default": "0"},
     "description": "1 or true: stay open and send each new line as it arrives"},
]
_FILE_NAME = {
    "name": "name", "in": "query", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_BYTES, "pattern": r"^(?!\.\.?$)[^/\x00]+$"},
    "description": f"the file's name in the task's /megamind/input/: a plain file name of at most {MAX_NAME_BYTES} "
                   "bytes of UTF-8 (no '/', not '.' or '..'). Wins over a multipart part's filename; with "
                   "neither, the name is the file_id",
}
_MAX_FILE_MIB = ServerConfig.max_file_bytes // (1024 * 1024)
_FOLLOW_MINUTES = ServerConfig.follow_max_s / 60
_LOGS_DESCRIPTION = f"""\
The task's own lines of one stream, oldest first, each ended by a newline (UTF-8).
Each stream keeps its lines up to a bound per task (the server's `--log-limit-mb`); past
it the oldest go, and a read from the start begins with a line
`[megamind: N earlier lines dropped]`. Lines the executor could not send show as
`[megamind: N lines dropped here]`.

With `follow=1` the answer stays open: each new line is sent as it arrives, and the
answer ends once the task has ended (state 4 or 5) and its last line was sent, when the
task is deleted, or after {_FOLLOW_MINUTES:g} minutes at most (follow again with `tail=0`).
A task whose executor is offline has not ended. Errors are answered before the first line.
"""


def _json(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _array_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": name}


def _error_statuses(*names: str) -> list[int]:
    codes = [ErrorCode[n] for n in (*_COMMON_ERRORS, *names) if n in ErrorCode.__members__]
    return sorted({ERROR_TABLE[c][0] for c in codes})


def _operation(
    op_id: str, tag: str, summary: str, ok: dict[str, Any], errors: list[int], status: int = 200, **extra: Any
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(status): ok}
    responses.update({str(status): f"Error{status}" for status in errors})
    return {"operationId": op_id, "tags": [tag], "summary": summary, "responses": responses, **extra}


def _error_responses() -> dict[int, dict[str, Any]]:
    by_status: dict[int, list[str]] = defaultdict(list)
    for code, (status, meaning) in sorted(ERROR_TABLE.items()):
        by_status[status].append(f"`{int(code)}` {ErrorCode(code).name.lower()}: {meaning}")
    return {
        status: _json("Error", "An error; `code` is one of: " + "; ".join(lines) + ".")
        for status, lines in by_status.items()
    }


def _paths() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/api/v1/gethwlist", {"get": _operation(
            "gethwlist", "contract", "Free executors: online and not running a task",
            _json(_array_of("HardwareItem"), "One object per free executor"), _error_statuses(),
        )}),
        ("/api/v1/addtask", {"post": _operation(
            "addtask", "contract", "Start an image of the registry on a free executor",
            _json("TaskId", "The task is accepted; it starts in state 2 (setup)"),
            _error_statuses(*_BODY_ERRORS, "EXECUTOR_NOT_FOUND", "EXECUTOR_BUSY", "EXECUTOR_OFFLINE"),
            requestBody={"required": True, "content": {"application/json": {"schema": "AddTaskRequest"}}},
        )}),
        ("/api/v1/deltask/{taskid}", {"delete": _operation(
            "deltask", "contract", "Stop and destroy a task (also when its executor is offline: once back)",
            _json("Status", "Deleted"), _error_statuses("TASK_NOT_FOUND"), parameters=[_TASKID],
        )}),
        ("/api/v1/gettasklist", {"get": _operation(
            "gettasklist", "contract", "The account's tasks that were not deleted, finished ones included",
            _json(_array_of("TaskItem"), "One object per task"), _error_statuses(),
        )}),
        ("/api/v1/restarttask/{taskid}", {"post": _operation(
            "restarttask", "contract", "Restart a task's container (a finished task starts again)",
            _json("Status", "Restarting: the state goes through 2 (setup)"),
            _error_statuses("TASK_NOT_FOUND", "EXECUTOR_BUSY", "EXECUTOR_OFFLINE"), parameters=[_TASKID],
        )}),
        ("/api/v1/gettasklogs/{taskid}", {"get": _operation(
            "gettasklogs", "contract", "The last 20 lines a task wrote to stdout",
            _json("TaskLogs", "The lines, base64-encoded"), _error_statuses("TASK_NOT_FOUND"),
            parameters=[_TASKID],
        )}),
        ("/api/v1/task/{taskid}", {"get": _operation(
            "gettask", "extension", "One task: gettasklist's object and what else the API knows of it",
            _json("TaskDetail", "The task"), _error_statuses("TASK_NOT_FOUND"), parameters=[_TASKID],
        )}),
        ("/api/v1/executors", {"get": _operation(
            "getexecutors", "extension", "The caller's own executors (as an owner), online or not",
            _json(_array_of("ExecutorItem"), "One object per executor the account registered"),
            _error_statuses(),
        )}),
        ("/api/v1/images", {"get": _operation(
            "getimages", "extension", "Every name:tag the platform's registry holds",
            _json(_array_of("ImageItem"), "One object per tag, sorted by name and tag"),
            _error_statuses(),
            description="503 (code 15) when the registry cannot be read.",
        )}),
        ("/api/v1/task/{taskid}/logs", {"get": _operation(
            "gettasklines", "extension", "A task's whole log of one stream, as text; or followed as it grows",
            {"description": "The lines, one per line",
             "content": {"text/plain": {"schema": {"type": "string"}}}},
            _error_statuses("VALIDATION_FAILED", "TASK_NOT_FOUND"), parameters=_LOG_PARAMETERS,
            description=_LOGS_DESCRIPTION,
        )}),
        ("/api/v1/task/{taskid}/results", {"get": _operation(
            "gettaskresults", "extension", "The files the task left in /megamind/output/, as a tar.gz",
            {"description": "A gzipped tar whose paths are relative to /megamind/output/",
             "headers": {"Content-Disposition": {
                 "schema": {"type": "string"}, "description": 'attachment; filename="<taskid>-results.tar.gz"'}},
             "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
            _error_statuses("TASK_NOT_FOUND", "RESULTS_NOT_FOUND"), parameters=[_TASKID],
            description="Collected by the executor when the task ends (exit, error, limit), up to a bound "
                        "per task (the server's `--results-limit-mb`); a restarted task's replace them. "
                        "404 with code 19 until there are results.",
        )}),
        ("/api/v1/files", {"post": _operation(
            "postfile", "extension", "Upload a file for addtask's inputs",
            _json("File", "Stored: name it in addtask's inputs"),
            _error_statuses("BAD_REQUEST", "VALIDATION_FAILED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
                            "REQUEST_TIMEOUT"),
            status=201, parameters=[_FILE_NAME],
            description=f"The body is the file itself ({OCTET_STREAM}), or a {MULTIPART} form holding one "
                        f"part, `{FILE_PART}`. At most {_MAX_FILE_MIB} MiB (413 past it, refused on its "
                        "Content-Length before it is read). The file is the account's own; a task given it "
                        "finds it at /megamind/input/<name>.",
            # No body is a file of 0 bytes.
            requestBody={"required": False, "content": {
                OCTET_STREAM: {"schema": {"type": "string", "format": "binary"}},
                MULTIPART: {"schema": {
                    "type": "object", "required": [FILE_PART], "additionalProperties": False,
                    "properties": {FILE_PART: {"type": "string", "format": "binary"}}}},
            }},
        )}),
        (SPEC_PATH, {"get": _operation(
            "getopenapi", "extension", "This document (no api-key needed)",
            _json({"type": "object"}, "The OpenAPI document"), [], security=[],
        )}),
    ]


@functools.cache
def _build() -> dict[str, Any]:
    spec = APISpec(
        title="Megamind customer API",
        version=VERSION,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={"description": _DESCRIPTION},
        security=[{API_KEY_SCHEME: []}],
        tags=[
            {"name": "contract", "description": "The six calls of the customer API contract"},
            {"name": "extension", "description": "Calls beyond the contract"},
        ],
    )
    spec.components.security_scheme(API_KEY_SCHEME, {"type": "apiKey", "in": "header", "name": "api-key"})
    for name, schema in _SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    for status, response in _error_responses().items():
        spec.components.response(f"Error{status}", response)
    for path, operations in _paths():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    schemas = document["components"]["schemas"]
    for name, docs in _FIELD_DOCS.items():
        for field, text in docs.items():
            schemas[name]["properties"][field].setdefault("description", text)
    return document


def build_spec() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_build())


async def serve(request: web.Request) -> web.Response:
    return json_response(_build())
