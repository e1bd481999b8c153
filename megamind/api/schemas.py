"""Every request and response body of the API, as marshmallow schemas."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from megamind.api.jobschemas import MAX_COST, JobFieldsSchema, LimitsSchema, PortMappingSchema, RequirementsSchema

MAX_PARAMS_LENGTH = 64 * 1024
MAX_INPUTS = 64  # files one task may be given


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


# --- customer API ---------------------------------------------------------------


class ErrorSchema(Schema):
    code = fields.Integer(required=True)
    message = fields.String(required=True)


class HardwareItemSchema(Schema):
    """An executor as gethwlist lists it (the contract's shape)."""

    hwid = fields.String(required=True)
    gpus = fields.List(fields.String(), required=True)
    cpus = fields.List(fields.String(), required=True)
    ram = fields.Integer(required=True)
    network = fields.String(required=True)
    calculated_perfomance_rating = fields.Float(required=True)
    cost = fields.Float(required=True)


class AddTaskRequestSchema(JobFieldsSchema):
    """The contract's three fields, inputs, and the job fields (jobs-api "addtask, extended")."""

    class Meta:
        unknown = RAISE

    # Length and form are checked by imageref.parse_image, so every bad image is code 16.
    image = fields.String(required=True)
    params = fields.String(load_default="", validate=validate.Length(max=MAX_PARAMS_LENGTH))
    hwid = fields.String(validate=validate.Length(min=1, max=64), allow_none=True, metadata={
        "description": "run exactly there; without it (and with or without requirements) the platform places "
                       "the task on the cheapest free executor that fits, or queues it"})
    # An extension (jobs-api "Inputs"): files from POST /api/v1/files, put at
    # /megamind/input/<name> before the task starts.
    inputs = fields.List(
        fields.String(validate=validate.Length(min=1, max=64)), load_default=list,
        validate=validate.Length(max=MAX_INPUTS),
        metadata={"description": f"optional: up to {MAX_INPUTS} file ids from POST /api/v1/files, of distinct "
                                 "names; each file is put at /megamind/input/<name> before the task starts"},
    )


class TaskIdSchema(Schema):
    taskid = fields.String(required=True)


class TaskItemSchema(Schema):
    taskid = fields.String(required=True)
    ip = fields.String(required=True)
    image = fields.String(required=True)
    params = fields.String(required=True)
    state = fields.Integer(required=True, validate=validate.Range(1, 5))
    error_msg = fields.String(required=True)


class TaskLogsSchema(Schema):
    taskid = fields.String(required=True)
    logs_b64 = fields.String(required=True)


# --- agent API ------------------------------------------------------------------


# What an executor may claim, on registration and in every hello: past these no machine
# is, and a claim past them is refused rather than believed.
MAX_GPUS = 64
MAX_CPUS = 4096  # logical CPUs
MAX_CPU_PACKAGES = 256  # entries of `cpus`: one model string per socket
MAX_RAM_MB = 64 * 1024 * 1024  # 64 TiB
MAX_GPU_MEMORY_MB = 1024 * 1024  # 1 TiB per GPU
MAX_RATING = 1_000_000.0
MAX_SLOTS = 1024
MAX_MODEL_NAME_CHARS = 256
_PRINTABLE = validate.Regexp(r"^[^\x00-\x1f\x7f]*$", error="control characters are not allowed")


def _model_name() -> fields.String:
    return fields.String(validate=[validate.Length(max=MAX_MODEL_NAME_CHARS), _PRINTABLE])


class HardwareReportSchema(Schema):
    cpus = fields.List(_model_name(), load_default=list, validate=validate.Length(max=MAX_CPU_PACKAGES))
    gpus = fields.List(_model_name(), load_default=list, validate=validate.Length(max=MAX_GPUS))
    ram = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_RAM_MB))  # MB
    network = fields.String(load_default="unknown", validate=[validate.Length(max=64), _PRINTABLE])
    calculated_perfomance_rating = fields.Float(load_default=0.0, allow_nan=False,
                                                validate=validate.Range(min=0, max=MAX_RATING))
    # What placement needs: logical CPUs and each GPU's memory as a task can use them, the
    # owner's CPU cap, and how many executors the host is offered as.
    cpu_count = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_CPUS))
    cpu_limit = fields.Float(load_default=None, allow_none=True, allow_nan=False,
                             validate=validate.Range(min=0, max=MAX_CPUS))
    gpu_memory_mb = fields.List(fields.Integer(validate=validate.Range(min=0, max=MAX_GPU_MEMORY_MB)),
                                load_default=list, validate=validate.Length(max=MAX_GPUS))
    slots = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_SLOTS))

    @validates_schema
    def _one_memory_per_gpu(self, data: dict, **kwargs) -> None:
        memory, gpus = data.get("gpu_memory_mb") or [], data.get("gpus") or []
        if memory and len(memory) != len(gpus):
            raise ValidationError(f"{len(memory)} memory sizes for {len(gpus)} GPUs", "gpu_memory_mb")


class RegisterRequestSchema(StrictSchema):
    hardware = fields.Nested(HardwareReportSchema, load_default=dict)
    cost = fields.Float(load_default=0.0, validate=validate.Range(min=0, max=MAX_COST), allow_nan=False)


class RegisterResponseSchema(Schema):
    hwid = fields.String(required=True)
    token = fields.String(required=True)


STATUS_OK = {"code": 0, "message": "ok"}

error_schema = ErrorSchema()
add_task_request_schema = AddTaskRequestSchema()
task_id_schema = TaskIdSchema()
task_logs_schema = TaskLogsSchema()
register_request_schema = RegisterRequestSchema()
register_response_schema = RegisterResponseSchema()


# --- extensions (megamind/api/extensions.py): calls beyond the contract -----------
# They add to the API and never change the contract's shapes above.


class StatusSchema(Schema):
    code = fields.Integer(required=True, metadata={"description": "0: success"})
    message = fields.String(required=True, metadata={"description": '"ok"'})


class ResultsSchema(Schema):
    size = fields.Integer(required=True, metadata={"description": "bytes of the tar.gz"})
    truncated = fields.Integer(
        required=True, metadata={"description": "files left out because the results would pass the bound"},
    )
    created_at = fields.Float(required=True, metadata={"description": "when they were collected, Unix seconds"})


class TaskDetailSchema(TaskItemSchema):
    state_name = fields.String(
        required=True, validate=validate.OneOf(["unknown", "setup", "running", "stopped", "error"]),
        metadata={"description": "the state's name: unknown, setup, running, stopped or error"},
    )
    hwid = fields.String(required=True, allow_none=True,
                         metadata={"description": "the executor the task runs on; null while queued"})
    executor_online = fields.Boolean(
        required=True, metadata={"description": "whether that executor is connected to the API now"},
    )
    pending_command = fields.String(
        required=True, allow_none=True, validate=validate.OneOf(["start", "restart", "remove", "stop"]),
        metadata={"description": "the last command for this task that the executor has not yet reported "
                                 "carried out (start: the image is being pulled and the container "
                                 "created and started), or null"},
    )
    phase = fields.String(
        required=True, allow_none=True,
        validate=validate.OneOf(["queued", "pulling", "creating", "starting", "restarting"]),
        metadata={"description": "while in setup: queued (waiting for an executor), or the step the executor "
                                 "last reported (pulling, creating, starting, restarting); else null"},
    )
    requirements = fields.Nested(RequirementsSchema, required=True)
    command = fields.List(fields.String(), required=True, allow_none=True,
                          metadata={"description": "the command run instead of the image's CMD, or null"})
    env = fields.Dict(keys=fields.String(), values=fields.String(), required=True)
    workdir = fields.String(required=True, allow_none=True)
    limits = fields.Nested(LimitsSchema, required=True)
    priority = fields.Integer(required=True)
    queue_position = fields.Integer(required=True, allow_none=True,
                                    metadata={"description": "1 is next; null once placed"})
    pending_reason = fields.String(required=True, allow_none=True,
                                   metadata={"description": "why it waits, while queued; else null"})
    ports = fields.List(fields.Nested(PortMappingSchema), required=True)
    exit_code = fields.Integer(required=True, allow_none=True)
    cancelled = fields.Boolean(required=True, metadata={"description": "ended by POST .../cancel"})
    labels = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                         metadata={"description": "as addtask gave them"})
    price = fields.Float(required=True, allow_none=True,
                         metadata={"description": "per hour, fixed when the task was placed; null while queued"})
    billed_seconds = fields.Float(required=True, metadata={"description": "seconds its container ran"})
    cost = fields.Float(required=True, metadata={"description": "price x billed_seconds / 3600"})
    placed_at = fields.Float(required=True, allow_none=True)
    started_at = fields.Float(required=True, allow_none=True, metadata={"description": "its latest run's start"})
    finished_at = fields.Float(required=True, allow_none=True)
    created_at = fields.Float(required=True, metadata={"description": "when addtask was called, Unix seconds"})
    updated_at = fields.Float(
        required=True, metadata={"description": "when the state or error_msg last changed, Unix seconds"},
    )
    progress = fields.Float(
        required=True, allow_none=True, validate=validate.Range(0, 100),
        metadata={"description": "the last MEGAMIND_PROGRESS=<0-100> line the task printed on stdout, "
                                 "or null (none yet, or restarted since)"},
    )
    results = fields.Nested(
        ResultsSchema, required=True, allow_none=True,
        metadata={"description": "the files the task left in /megamind/output/ (GET .../results), or null"},
    )


class ExecutorItemSchema(HardwareItemSchema):
    """gethwlist's item, and what its owner may know besides."""

    status = fields.String(
        required=True, validate=validate.OneOf(["offline", "free", "busy"]),
        metadata={"description": "offline: not connected; free: listed by gethwlist; busy: holds a task"},
    )
    online = fields.Boolean(required=True)
    busy = fields.Boolean(required=True, metadata={"description": "a task in setup or running holds it"})
    taskid = fields.String(
        required=True, allow_none=True,
        metadata={"description": "the task holding it when that task is the caller's own, else null"},
    )
    ip = fields.String(required=True, metadata={"description": "the address it last connected from"})
    last_seen = fields.Float(
        required=True, allow_none=True,
        metadata={"description": "when it last connected, Unix seconds; null if never"},
    )


class FileSchema(Schema):
    file_id = fields.String(required=True, metadata={"description": "for addtask's inputs"})
    name = fields.String(required=True, metadata={"description": "where the task finds it: /megamind/input/<name>"})
    size = fields.Integer(required=True, metadata={"description": "bytes"})


class ImageItemSchema(Schema):
    image = fields.String(required=True, metadata={"description": "megamind.network/<name>:<tag>, for addtask"})
    name = fields.String(required=True)
    tag = fields.String(required=True)
    owner = fields.String(required=True, allow_none=True, metadata={
        "description": "the account that pushed it first; null: nobody has pushed it since the registry got auth"})
    public = fields.Boolean(required=True, metadata={"description": "any account may run it (its owner publishes it)"})


task_detail_schema = TaskDetailSchema()
executor_item_schema = ExecutorItemSchema()
image_item_schema = ImageItemSchema()
file_schema = FileSchema()
