"""The job fields of addtask and the task detail, the hardware query and the queue, as schemas.

Ranges and patterns come from ``megamind/jobspec.py``; each field's metadata carries
them into the OpenAPI document, so a request the spec allows is one the server takes.
"""

from __future__ import annotations

import shlex
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from megamind.jobspec import (
    DEFAULT_PRIORITY,
    DEFAULT_QUEUE_TIMEOUT_S,
    ENV_NAME,
    ENV_NAME_PATTERN,
    EXECUTOR_STATUSES,
    HARDWARE_SORTS,
    MAX_COMMAND_WORDS,
    MAX_ENV,
    MAX_LIMIT_S,
    MAX_PORT,
    MAX_PORTS,
    MAX_QUEUE_TIMEOUT_S,
    PRIORITY_MAX,
    PRIORITY_MIN,
    RESERVED_ENV_PREFIX,
)

MAX_WORD_CHARS = 16 * 1024
MAX_ENV_VALUE_CHARS = 32 * 1024
MAX_WORKDIR_CHARS = 1024
MAX_MODEL_CHARS = 128
MAX_FIGURE = 2**31 - 1  # MB, CPUs, GPUs: beyond any machine, and an SQL integer everywhere
MAX_COST = 1e9
HARDWARE_PAGE_MAX = 1000

# This module's checks as ECMA-262 patterns, for the OpenAPI document: a request the spec
# allows is then one the server takes.
NO_NUL_PATTERN = r"^[^\u0000]*$"
# What shlex.split takes: quotes closed, no escape left at the end, some word not blank.
COMMAND_STRING_PATTERN = (r"^(?=[\s\S]*[^ \t\r\n])"
                          r'''(?:[^'"\\\u0000]|\\[^\u0000]|'[^'\u0000]*'|"(?:[^"\\\u0000]|\\[^\u0000])*")*$''')
# A command string this long holds at most MAX_COMMAND_WORDS words, each shorter than
# MAX_WORD_CHARS; neither the spec nor the server takes a longer string (a list may hold more).
MAX_COMMAND_STRING_CHARS = 2 * MAX_COMMAND_WORDS - 1
WORKDIR_PATTERN = r"^(?![^\u0000]*/\.\.(?:/|$))/[^\u0000]*$"  # absolute, no '..' component
# A variable a task may set: the platform's own prefix is refused in any case.
ENV_NAME_ALLOWED_PATTERN = "^(?!" + "".join(
    f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in RESERVED_ENV_PREFIX) + ")" + ENV_NAME_PATTERN[1:]
MAX_ENV_NAME_CHARS = 256
# A task's labels: a dialect's own fields kept with the task (``jobproxy.user``, ``onepanel.project``).
MAX_LABELS = 16
MAX_LABEL_VALUE_CHARS = 256
LABEL_KEY_PATTERN = r"^[a-z0-9][a-z0-9._/-]{0,62}$"
PRINTABLE_PATTERN = r"^[^\u0000-\u001f\u007f]*$"


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class WholeNumber(fields.Integer):
    """An integer as JSON Schema (and so the OpenAPI document) reads one: 3 or 3.0, never "3" or true."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(strict=True, **kwargs)

    def _validated(self, value: Any) -> int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return super()._validated(value)


def _count(description: str, minimum: int = 0) -> fields.Integer:
    return WholeNumber(validate=validate.Range(minimum, MAX_FIGURE), allow_none=True,
                       metadata={"description": description})


def _amount(description: str, minimum: float = 0.0, maximum: float = MAX_COST) -> fields.Float:
    return fields.Float(validate=validate.Range(minimum, maximum), allow_nan=False, allow_none=True,
                        metadata={"description": description})


class RequirementsSchema(_Strict):
    gpus = _count("at least this many GPUs")
    gpu_model = fields.String(validate=validate.Length(1, MAX_MODEL_CHARS), allow_none=True,
                              metadata={"description": "every GPU's name contains this, case-insensitive"})
    min_vram_mb = _count("every GPU has at least this much memory, MB")
    cpus = _count("at least this many logical CPUs")
    ram = _count("at least this much RAM, MB")
    max_cost = _amount("at most this price per hour")
    min_rating = _amount("calculated_perfomance_rating at least this")


class LimitsSchema(_Strict):
    cpus = fields.Float(validate=validate.Range(0.01, 4096), allow_nan=False, allow_none=True,
                        metadata={"description": "CPU share, as docker run --cpus"})
    memory = WholeNumber(validate=validate.Range(6, MAX_FIGURE), allow_none=True,
                         metadata={"description": "MB; the kernel's OOM kill ends the task"})
    cputime = WholeNumber(validate=validate.Range(1, MAX_LIMIT_S), allow_none=True,
                          metadata={"description": "seconds of CPU time (RLIMIT_CPU)"})
    runtime = WholeNumber(validate=validate.Range(1, MAX_LIMIT_S), allow_none=True,
                          metadata={"description": "seconds in state running, counted from each start"})


class PortObjectSchema(_Strict):
    container = WholeNumber(required=True, validate=validate.Range(1, MAX_PORT))
    host = WholeNumber(allow_none=True, validate=validate.Range(0, MAX_PORT),
                       metadata={"description": "0 or absent: a free port the engine picks"})


_PORT_OBJECT = PortObjectSchema()


class PortField(fields.Field):
    """A bare container port, or {"container", "host"}."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> dict[str, Any]:
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 8888.0 is the number 8888, as for every integer field
        if isinstance(value, int) and not isinstance(value, bool):
            if not 1 <= value <= MAX_PORT:
                raise ValidationError(f"{value} is not a port (1-{MAX_PORT})")
            return {"container": value, "host": None}
        if isinstance(value, dict):
            loaded = _PORT_OBJECT.load(value)
            return {"container": loaded["container"], "host": loaded.get("host") or None}
        raise ValidationError("a port is a number or an object {container, host}")


class CommandField(fields.Field):
    """A list of words run as is, or a string split as a POSIX shell would (no shell runs it)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs) -> list[str]:
        if isinstance(value, str):
            if len(value) > MAX_COMMAND_STRING_CHARS:  # as the spec says: it cannot count words
                raise ValidationError(f"a command string is at most {MAX_COMMAND_STRING_CHARS} characters; "
                                      "give a longer command as a list of words")
            try:
                words = shlex.split(value)
            except ValueError as exc:
                raise ValidationError(f"cannot be split into words: {exc}") from None
        elif isinstance(value, list) and all(isinstance(word, str) for word in value):
            words = list(value)
        else:
            raise ValidationError("a list of strings, or one string to split into words")
        if not words:
            raise ValidationError("must name a program")
        if len(words) > MAX_COMMAND_WORDS or any(len(w) > MAX_WORD_CHARS or "\0" in w for w in words):
            raise ValidationError(f"at most {MAX_COMMAND_WORDS} words of {MAX_WORD_CHARS} characters, no NUL")
        return words


def _check_env(env: dict[str, str]) -> None:
    for name in env:
        if not ENV_NAME.match(name):
            raise ValidationError(f"{name!r} is not a variable name ({ENV_NAME_PATTERN})")
        if name.upper().startswith(RESERVED_ENV_PREFIX):
            raise ValidationError(f"{name!r}: names starting with {RESERVED_ENV_PREFIX} are the platform's")
    if any("\0" in value for value in env.values()):
        raise ValidationError("values may not contain NUL")


def _check_workdir(path: str) -> None:
    if not path.startswith("/") or "\0" in path or ".." in path.split("/"):
        raise ValidationError("must be an absolute path without '..', such as /work")


def _check_printable(value: str) -> None:
    # Not validate.Regexp: its ``$`` would let a trailing newline through.
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in value):
        raise ValidationError("control characters are not allowed")


class JobFieldsSchema(Schema):
    """addtask's fields beyond the contract's three (and inputs)."""

    requirements = fields.Nested(RequirementsSchema, allow_none=True,
                                 metadata={"description": "optional, only without hwid: what the executor must have"})
    command = CommandField(allow_none=True, metadata={
        "description": "replaces the image's CMD: a list is run as is, a string is split into words "
                       "as a POSIX shell would (no shell runs it)",
        "oneOf": [{"type": "string", "minLength": 1, "maxLength": MAX_COMMAND_STRING_CHARS,
                   "pattern": COMMAND_STRING_PATTERN},
                  {"type": "array", "minItems": 1, "maxItems": MAX_COMMAND_WORDS,
                   "items": {"type": "string", "maxLength": MAX_WORD_CHARS, "pattern": NO_NUL_PATTERN}},
                  {"type": "null"}]})  # as allow_none says: the image's own CMD
    env = fields.Dict(keys=fields.String(validate=validate.Length(1, MAX_ENV_NAME_CHARS)),
                      values=fields.String(validate=validate.Length(max=MAX_ENV_VALUE_CHARS),
                                           metadata={"pattern": NO_NUL_PATTERN}),
                      validate=[validate.Length(max=MAX_ENV), _check_env], allow_none=True,
                      metadata={"description": f"variable names {ENV_NAME_PATTERN}; {RESERVED_ENV_PREFIX}* is reserved",
                                "propertyNames": {"minLength": 1, "maxLength": MAX_ENV_NAME_CHARS,
                                                  "pattern": ENV_NAME_ALLOWED_PATTERN}})
    workdir = fields.String(validate=[validate.Length(1, MAX_WORKDIR_CHARS), _check_workdir], allow_none=True,
                            metadata={"description": "an absolute path without '..'", "pattern": WORKDIR_PATTERN})
    ports = fields.List(PortField(), validate=validate.Length(max=MAX_PORTS), allow_none=True, metadata={
        "description": "published on the executor's host: a container port, or {container, host}; "
                       "each container port and each host port other than 0 at most once",
        "uniqueItems": True,
        "items": {"oneOf": [{"type": "integer", "minimum": 1, "maximum": MAX_PORT},
                            {"$ref": "#/components/schemas/PortObject"}]}})
    limits = fields.Nested(LimitsSchema, allow_none=True)
    labels = fields.Dict(
        keys=fields.String(validate=validate.Regexp(LABEL_KEY_PATTERN)),
        values=fields.String(validate=[validate.Length(max=MAX_LABEL_VALUE_CHARS), _check_printable],
                             metadata={"maxLength": MAX_LABEL_VALUE_CHARS, "pattern": PRINTABLE_PATTERN}),
        validate=validate.Length(max=MAX_LABELS), allow_none=True,
        metadata={"description": "kept with the task and shown with it: lowercase keys such as team or "
                                 "jobproxy.user, printable values",
                  "maxProperties": MAX_LABELS,
                  "propertyNames": {"pattern": LABEL_KEY_PATTERN, "maxLength": 63}})
    priority = WholeNumber(load_default=DEFAULT_PRIORITY, validate=validate.Range(PRIORITY_MIN, PRIORITY_MAX),
                           metadata={"description": "higher is placed first"})
    queue_timeout = WholeNumber(load_default=DEFAULT_QUEUE_TIMEOUT_S, validate=validate.Range(1, MAX_QUEUE_TIMEOUT_S),
                                metadata={"description": "seconds it may wait for an executor"})

    @validates_schema
    def _ports_distinct(self, data: dict[str, Any], **kwargs) -> None:
        ports = data.get("ports") or []
        containers = [p["container"] for p in ports]
        hosts = [p["host"] for p in ports if p["host"]]
        if len(set(containers)) != len(containers) or len(set(hosts)) != len(hosts):
            raise ValidationError("each container port and each host port at most once", "ports")


class PortMappingSchema(Schema):
    container = fields.Integer(required=True)
    host = fields.Integer(required=True)
    address = fields.String(required=True, metadata={"description": "where to reach it: the executor's address"})


class HardwareQuerySchema(_Strict):
    """GET /api/v1/hardware: the requirement fields, a status, an order and a page."""

    gpus = fields.Integer(validate=validate.Range(0, MAX_FIGURE))
    gpu_model = fields.String(validate=validate.Length(1, MAX_MODEL_CHARS))
    min_vram_mb = fields.Integer(validate=validate.Range(0, MAX_FIGURE))
    cpus = fields.Integer(validate=validate.Range(0, MAX_FIGURE))
    ram = fields.Integer(validate=validate.Range(0, MAX_FIGURE))
    max_cost = fields.Float(validate=validate.Range(0, MAX_COST), allow_nan=False)
    min_rating = fields.Float(validate=validate.Range(0, MAX_COST), allow_nan=False)
    status = fields.String(load_default="any", validate=validate.OneOf((*EXECUTOR_STATUSES, "any")))
    sort = fields.String(load_default="cost", validate=validate.OneOf(HARDWARE_SORTS))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, HARDWARE_PAGE_MAX))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_FIGURE))


class HardwareFiguresSchema(Schema):
    """What /api/v1/hardware adds to gethwlist's item."""

    cpu_count = fields.Integer(required=True, metadata={"description": "logical CPUs a task can use"})
    gpu_memory_mb = fields.List(fields.Integer(), required=True, metadata={"description": "one per GPU"})
    status = fields.String(required=True, validate=validate.OneOf(EXECUTOR_STATUSES))
    slots = fields.Integer(required=True, metadata={"description": "executors its host is offered as"})


class QueuedTaskSchema(Schema):
    taskid = fields.String(required=True)
    image = fields.String(required=True)
    priority = fields.Integer(required=True)
    created_at = fields.Float(required=True)
    queue_deadline = fields.Float(required=True, metadata={"description": "when it ends in error unless placed"})
    queue_position = fields.Integer(required=True, metadata={"description": "1 is next"})
    pending_reason = fields.String(required=True)


class QueueSchema(Schema):
    tasks = fields.List(fields.Nested(QueuedTaskSchema), required=True)


hardware_query_schema = HardwareQuerySchema()
queue_schema = QueueSchema()
