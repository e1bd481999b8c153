"""The customer API as an OpenAPI 3 document, built with apispec from the marshmallow schemas.

Served at ``/api/openapi.json`` (outside ``/api/v1/``, so no api-key is needed to read
it).  The agents' calls are internal and left out.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

from aiohttp import web
from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from marshmallow import Schema, fields

from megamind.api.bodies import MAX_JSON_DEPTH, json_response
from megamind.api.jobschemas import (
    HardwareFiguresSchema,
    HardwareQuerySchema,
    LimitsSchema,
    PortMappingSchema,
    PortObjectSchema,
    QueuedTaskSchema,
    QueueSchema,
    RequirementsSchema,
)
from megamind.api.openapi_history import HISTORY_PATHS, HISTORY_SCHEMAS
from megamind.api.openapi_money import MONEY_PATHS, MONEY_SCHEMAS
from megamind.api.openapi_registry import REGISTRY_PATHS, REGISTRY_SCHEMAS
from megamind.dialects import DIALECTS
from megamind.api.openapi_parts import BODY_ERRORS, array_of, error_responses, error_statuses, json_content, operation
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
from megamind.imageref import MAX_REFERENCE_LENGTH, PUBLIC_REGISTRY, REFERENCE_PATTERN
from megamind.store.files import MAX_NAME_BYTES

SPEC_PATH = "/api/openapi.json"
API_KEY_SCHEME = "api-key"
VERSION = "1.0.0"
# 3.1: its schemas are JSON Schema, which can say what env's names may be (propertyNames).
OPENAPI_VERSION = "3.1.0"

_DESCRIPTION = """\
Run images of the Megamind registry as tasks on executors that hardware owners offer.

Every call under `/api/v1/` needs the header `api-key`. Every failure answers
`{"code": N, "message": "..."}`; `code` is stable (see the `Error` responses).
A JSON body is UTF-8 text, nested at most """ + str(MAX_JSON_DEPTH) + """ levels deep, without a `\\u` escape
of half a UTF-16 pair; any other is refused with 400 (code 2).
The six calls tagged `contract` are exactly those of the customer API contract; the
calls tagged `extension` add to it without changing any of its shapes.
"""


class HardwareDetailSchema(HardwareItemSchema, HardwareFiguresSchema):
    """An item of GET /api/v1/hardware: gethwlist's fields and every figure."""


class HardwareListSchema(Schema):
    executors = fields.List(fields.Nested(HardwareDetailSchema), required=True)
    total = fields.Integer(required=True, metadata={"description": "how many match, over every page"})


_SCHEMAS = {
    "Error": ErrorSchema,
    "Status": StatusSchema,
    "HardwareItem": HardwareItemSchema,
    # Nested schemas before those that nest them, or apispec names them itself.
    "Requirements": RequirementsSchema,
    "Limits": LimitsSchema,
    "PortObject": PortObjectSchema,  # referenced by name in the ports field's metadata
    "PortMapping": PortMappingSchema,
    "AddTaskRequest": AddTaskRequestSchema,
    "TaskId": TaskIdSchema,
    "TaskItem": TaskItemSchema,
    "TaskLogs": TaskLogsSchema,
    "Results": ResultsSchema,
    "TaskDetail": TaskDetailSchema,
    "ExecutorItem": ExecutorItemSchema,
    "ImageItem": ImageItemSchema,
    "File": FileSchema,
    "HardwareDetail": HardwareDetailSchema,
    "HardwareList": HardwareListSchema,
    "QueuedTask": QueuedTaskSchema,
    "Queue": QueueSchema,
    **HISTORY_SCHEMAS,
    **MONEY_SCHEMAS,
    **REGISTRY_SCHEMAS,
    **{name: schema for dialect in DIALECTS for name, schema in dialect.OPENAPI_SCHEMAS.items()},
}

# imageref.parse_image decides (a bad image is code 16); the spec says the same, so a
# generated request is never refused for its form.
_IMAGE = {"minLength": 1, "maxLength": MAX_REFERENCE_LENGTH, "pattern": REFERENCE_PATTERN}
# addtask refuses a hwid together with requirements that ask for something.
_HWID_OR_REQUIREMENTS = {"not": {
    "required": ["hwid", "requirements"],
    "properties": {"hwid": {"type": "string"}, "requirements": {"type": "object", "minProperties": 1}},
}}

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
        "image": f"{PUBLIC_REGISTRY}/<name>:<tag> (:latest when the tag is left out)",
        "params": "any string, handed unchanged to the task as MEGAMIND_PARAMS",
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

_TASKID = {
    "name": "taskid", "in": "path", "required": True, "schema": {"type": "string"},
    "description": "a task id from addtask",
}
# Where addtask's taskid is used next (OpenAPI links: a client, or a fuzzer, may follow them).
_TASK_LINKS = {
    link: {"operationId": op_id, "parameters": {"taskid": "$response.body#/taskid"}}
    for link, op_id in (("GetTask", "gettask"), ("GetTaskLogs", "gettasklogs"), ("GetTaskLines", "gettasklines"),
                        ("GetTaskResults", "gettaskresults"), ("CancelTask", "canceltask"),
                        ("RestartTask", "restarttask"), ("DeleteTask", "deltask"))
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
_HARDWARE_QUERY_DOCS = {
    "gpus": "at least this many GPUs",
    "gpu_model": "every GPU's name contains this, case-insensitive",
    "min_vram_mb": "every GPU has at least this much memory, MB",
    "cpus": "at least this many logical CPUs",
    "ram": "at least this much RAM, MB",
    "max_cost": "at most this price per hour",
    "min_rating": "calculated_perfomance_rating at least this",
    "status": "free: online and holding no task; busy: holding one; offline: not connected; any",
    "sort": "cost: cheapest first; rating, ram, gpus, cpus: most first (ties: cheapest)",
    "limit": "at most this many items",
    "offset": "skip this many items",
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


def _paths() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/api/v1/gethwlist", {"get": operation(
            "gethwlist", "contract", "Free executors: online and not running a task",
            json_content(array_of("HardwareItem"), "One object per free executor"), error_statuses(),
        )}),
        ("/api/v1/addtask", {"post": operation(
            "addtask", "contract", "Start an image of the registry on a free executor",
            {**json_content("TaskId", "The task is accepted; it starts in state 2 (setup)"), "links": _TASK_LINKS},
            error_statuses(*BODY_ERRORS, "EXECUTOR_NOT_FOUND", "EXECUTOR_BUSY", "EXECUTOR_OFFLINE",
                            "UNSATISFIABLE", "INSUFFICIENT_FUNDS", "SPEND_LIMIT_REACHED"),
            requestBody={"required": True, "content": {"application/json": {"schema": "AddTaskRequest"}}},
            description="With `hwid`, the task runs exactly there. Without it, it goes to the cheapest free "
                        "online executor that meets `requirements` and can hold `limits` (ties: the higher "
                        "rating), or waits in the queue (state 2, `ip` \"\") until one frees up or comes "
                        "online, higher `priority` first, then oldest first; after `queue_timeout` it ends "
                        "in state 5. 422 with code 20 when no registered executor could ever hold it. "
                        "402 for a prepaid account that cannot pay a minute there (code 22) or an account "
                        "past its hourly spend limit (code 23).",
        )}),
        ("/api/v1/deltask/{taskid}", {"delete": operation(
            "deltask", "contract", "Stop and destroy a task (also when its executor is offline: once back)",
            json_content("Status", "Deleted"), error_statuses("TASK_NOT_FOUND"), parameters=[_TASKID],
        )}),
        ("/api/v1/gettasklist", {"get": operation(
            "gettasklist", "contract", "The account's tasks that were not deleted, finished ones included",
            json_content(array_of("TaskItem"), "One object per task"), error_statuses(),
        )}),
        ("/api/v1/restarttask/{taskid}", {"post": operation(
            "restarttask", "contract", "Restart a task's container (a finished task starts again)",
            json_content("Status", "Restarting: the state goes through 2 (setup)"),
            error_statuses("TASK_NOT_FOUND", "EXECUTOR_BUSY", "EXECUTOR_OFFLINE", "TASK_QUEUED",
                           "INSUFFICIENT_FUNDS", "SPEND_LIMIT_REACHED"),
            parameters=[_TASKID], description="409 with code 21 while the task is queued.",
        )}),
        ("/api/v1/gettasklogs/{taskid}", {"get": operation(
            "gettasklogs", "contract", "The last 20 lines a task wrote to stdout",
            json_content("TaskLogs", "The lines, base64-encoded"), error_statuses("TASK_NOT_FOUND"),
            parameters=[_TASKID],
        )}),
        ("/api/v1/task/{taskid}", {"get": operation(
            "gettask", "extension", "One task: gettasklist's object and what else the API knows of it",
            json_content("TaskDetail", "The task"), error_statuses("TASK_NOT_FOUND"), parameters=[_TASKID],
        )}),
        ("/api/v1/task/{taskid}/cancel", {"post": operation(
            "canceltask", "extension", "End a queued, setting-up or running task and keep it",
            json_content("Status", "Cancelled, or ended already (then nothing changes)"),
            error_statuses("TASK_NOT_FOUND"), parameters=[_TASKID],
            description="Its container is stopped and removed; its logs and results stay. gettasklist shows "
                        "it in state 4, the task detail `cancelled: true`.",
        )}),
        ("/api/v1/queue", {"get": operation(
            "getqueue", "extension", "The account's tasks waiting for an executor, next first",
            json_content("Queue", "The queued tasks, each with its place and why it waits"), error_statuses(),
        )}),
        ("/api/v1/hardware", {"get": operation(
            "gethardware", "extension", "Every executor with every figure, filtered, sorted and paged",
            json_content("HardwareList", "The page of matching executors, and how many match"),
            error_statuses("VALIDATION_FAILED"), parameters=[{"in": "query", "schema": HardwareQuerySchema}],
            description="gethwlist stays as the contract says; this call also lists busy and offline "
                        "executors. Sizes are what a task can use: the owner's caps, one slot's share.",
        )}),
        ("/api/v1/executors", {"get": operation(
            "getexecutors", "extension", "The caller's own executors (as an owner), online or not",
            json_content(array_of("ExecutorItem"), "One object per executor the account registered"),
            error_statuses(),
        )}),
        ("/api/v1/executors/{hwid}", {"delete": operation(
            "removeexecutor", "extension", "Remove one of the caller's executors (as an owner)",
            json_content("Status", "Removed"), error_statuses("EXECUTOR_NOT_FOUND"),
            parameters=[{"name": "hwid", "in": "path", "required": True, "schema": {"type": "string"},
                         "description": "an executor of the caller's account (GET /api/v1/executors)"}],
            description="Its token stops working at once and its agent's connection closes; the agent "
                        "does not register again. A task running there ends in state 5 (\"executor "
                        "removed by its owner\"), charged up to then. It leaves every listing and is "
                        "never placed on again; its tasks' history stays. Another account's executor, "
                        "or one removed already, is 404 (code 8).",
        )}),
        ("/api/v1/images", {"get": operation(
            "getimages", "extension", "The registry's name:tags the caller may run, with owner and visibility",
            json_content(array_of("ImageItem"), "One object per tag, sorted by name and tag"),
            error_statuses(),
            description="503 (code 15) when the registry cannot be read.",
        )}),
        ("/api/v1/task/{taskid}/logs", {"get": operation(
            "gettasklines", "extension", "A task's whole log of one stream, as text; or followed as it grows",
            {"description": "The lines, one per line",
             "content": {"text/plain": {"schema": {"type": "string"}}}},
            error_statuses("VALIDATION_FAILED", "TASK_NOT_FOUND"), parameters=_LOG_PARAMETERS,
            description=_LOGS_DESCRIPTION,
        )}),
        ("/api/v1/task/{taskid}/results", {"get": operation(
            "gettaskresults", "extension", "The files the task left in /megamind/output/, as a tar.gz",
            {"description": "A gzipped tar whose paths are relative to /megamind/output/",
             "headers": {"Content-Disposition": {
                 "schema": {"type": "string"}, "description": 'attachment; filename="<taskid>-results.tar.gz"'}},
             "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}},
            error_statuses("TASK_NOT_FOUND", "RESULTS_NOT_FOUND"), parameters=[_TASKID],
            description="Collected by the executor when the task ends (exit, error, limit), up to a bound "
                        "per task (the server's `--results-limit-mb`); a restarted task's replace them. "
                        "404 with code 19 until there are results.",
        )}),
        ("/api/v1/files", {"post": operation(
            "postfile", "extension", "Upload a file for addtask's inputs",
            json_content("File", "Stored: name it in addtask's inputs"),
            error_statuses("BAD_REQUEST", "VALIDATION_FAILED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
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
        *HISTORY_PATHS,
        *MONEY_PATHS,
        *REGISTRY_PATHS,
        *(entry for dialect in DIALECTS for entry in dialect.OPENAPI_PATHS),
        (SPEC_PATH, {"get": operation(
            "getopenapi", "extension", "This document (no api-key needed)",
            json_content({"type": "object"}, "The OpenAPI document"), [], security=[],
        )}),
    ]


def _from_metadata(converter: Any, field: fields.Field, ret: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """What apispec's converters drop or get wrong for our fields: a List's `items` and a Dict's
    `propertyNames` given in metadata (the field's own would say nothing of a custom field), and
    a Dict's Length, which counts its entries."""
    extra = {key: field.metadata[key] for key in ("items", "propertyNames") if key in field.metadata}
    if isinstance(field, fields.Dict):
        for text, entries in (("minLength", "minProperties"), ("maxLength", "maxProperties")):
            if text in ret:
                extra[entries] = ret.pop(text)
    return extra


@functools.cache
def _build() -> dict[str, Any]:
    marshmallow_plugin = MarshmallowPlugin()
    spec = APISpec(
        title="Megamind customer API",
        version=VERSION,
        openapi_version=OPENAPI_VERSION,
        plugins=[marshmallow_plugin],
        info={"description": _DESCRIPTION},
        security=[{API_KEY_SCHEME: []}],
        tags=[
            {"name": "contract", "description": "The six calls of the customer API contract"},
            {"name": "extension", "description": "Calls beyond the contract"},
        ],
    )
    marshmallow_plugin.converter.add_attribute_function(_from_metadata)
    spec.components.security_scheme(API_KEY_SCHEME, {"type": "apiKey", "in": "header", "name": "api-key"})
    for name, schema in _SCHEMAS.items():
        spec.components.schema(name, schema=schema)
    for status, response in error_responses().items():
        spec.components.response(f"Error{status}", response)
    for path, operations in _paths():
        spec.path(path=path, operations=operations)
    document = spec.to_dict()
    schemas = document["components"]["schemas"]
    for name, docs in _FIELD_DOCS.items():
        for field, text in docs.items():
            schemas[name]["properties"][field].setdefault("description", text)
    schemas["AddTaskRequest"]["properties"]["image"].update(_IMAGE)
    schemas["AddTaskRequest"].update(_HWID_OR_REQUIREMENTS)
    for parameter in document["paths"]["/api/v1/hardware"]["get"]["parameters"]:
        parameter.setdefault("description", _HARDWARE_QUERY_DOCS[parameter["name"]])
    return document


def build_spec() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change it)."""
    return copy.deepcopy(_build())


async def serve(request: web.Request) -> web.Response:
    return json_response(_build())
