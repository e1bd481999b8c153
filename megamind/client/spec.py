"""What a task asks for, as addtask and the hardware listing take it.

Requirements say what an executor must have; TaskLimits, PortRequest and the ranges of
priority, env names and ports come from megamind.jobspec, the same rules the API checks.
The body builders send only what the caller gave, so a call with none of the job fields
is exactly the contract's original addtask.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, Union

from megamind.jobspec import (
    ENV_NAME,
    ENV_NAME_PATTERN,
    EXECUTOR_STATUSES,
    HARDWARE_SORTS,
    MAX_PORT,
    MAX_QUEUE_TIMEOUT_S,
    PRIORITY_MAX,
    PRIORITY_MIN,
    RESERVED_ENV_PREFIX,
    PortRequest,
    TaskLimits,
)
from megamind.placement import Requirements

__all__ = ["HARDWARE_SORTS", "HARDWARE_STATUSES", "PortSpec", "PortRequest", "Requirements", "TaskLimits",
           "addtask_body", "hardware_query", "port_request"]

# What GET /api/v1/hardware takes besides the requirements.
HARDWARE_STATUSES = (*EXECUTOR_STATUSES, "any")

# A port to publish: the container's port (the engine picks the host's), a pair
# (container, host), or a PortRequest.
PortSpec = Union[int, Sequence[int], PortRequest]


def port_request(port: PortSpec) -> PortRequest:
    """``8888``, ``(8888, 18888)`` or a PortRequest, as a PortRequest; ValueError otherwise."""
    if isinstance(port, PortRequest):
        container, host = port.container, port.host
    elif isinstance(port, int) and not isinstance(port, bool):
        container, host = port, None
    elif isinstance(port, Sequence) and not isinstance(port, (str, bytes)) and len(port) == 2:
        container, host = port
    else:
        raise ValueError(f"ports: {port!r} is not a port, a (container, host) pair or a PortRequest")
    _check_port(container, "container")
    if host is not None:
        # 0 is the contract's "any free port", as is no host at all.
        _check_port(host, "host", allow_zero=True)
    return PortRequest(container, host or None)


def _check_port(value: Any, what: str, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not (0 if allow_zero else 1) <= value <= MAX_PORT:
        raise ValueError(f"ports: the {what} port {value!r} is not a port (1-{MAX_PORT})")


def _port_wire(port: PortRequest) -> int | dict[str, int]:
    # A bare number when the engine picks the host's port: the contract's shortest form.
    return port.container if port.host is None else {"container": port.container, "host": port.host}


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables as sent; ValueError for a name a task may not set or a value that is not text."""
    for name, value in env.items():
        if not isinstance(name, str) or not ENV_NAME.match(name):
            raise ValueError(f"env: {name!r} is not a variable name ({ENV_NAME_PATTERN})")
        if name.upper().startswith(RESERVED_ENV_PREFIX):  # in any case: the API's rule
            raise ValueError(f"env: {name!r}: names starting with {RESERVED_ENV_PREFIX} are the platform's")
        if not isinstance(value, str):
            raise ValueError(f"env: the value of {name} is not a string")
    return dict(env)


def _command_wire(command: str | Sequence[str]) -> str | list[str]:
    if isinstance(command, str):
        return command  # the API splits it into words as a POSIX shell would
    words = list(command)
    if not all(isinstance(word, str) for word in words):
        raise ValueError("command: every word is a string")
    return words


def _limits(value: "TaskLimits | Mapping[str, Any]") -> TaskLimits:
    return value if isinstance(value, TaskLimits) else TaskLimits(**value)


class JobOptions(TypedDict, total=False):
    """addtask's optional fields as the client's calls take them (None: not sent)."""

    requirements: Requirements | Mapping[str, Any] | None
    command: str | Sequence[str] | None
    env: Mapping[str, str] | None
    workdir: str | None
    ports: Iterable[PortSpec] | None
    limits: TaskLimits | Mapping[str, Any] | None
    priority: int | None
    queue_timeout: int | None
    inputs: Iterable[Any]  # file ids or FileInfo, as add_task takes them


def addtask_body(
    image: str,
    params: str,
    hwid: str | None,
    *,
    requirements: Requirements | Mapping[str, Any] | None = None,
    command: str | Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    workdir: str | None = None,
    ports: Iterable[PortSpec] | None = None,
    limits: TaskLimits | Mapping[str, Any] | None = None,
    priority: int | None = None,
    queue_timeout: int | None = None,
    file_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """addtask's body with exactly the fields given (None: not given)."""
    body: dict[str, Any] = {"image": image, "params": params}
    if hwid is not None:
        body["hwid"] = hwid
    if requirements is not None:
        if hwid is not None:
            raise ValueError("give hwid (run exactly there) or requirements (placed by the platform), not both")
        body["requirements"] = Requirements.of(requirements).to_dict()
    if command is not None:
        body["command"] = _command_wire(command)
    if env is not None:
        body["env"] = check_env(env)
    if workdir is not None:
        body["workdir"] = workdir
    if ports is not None:
        body["ports"] = [_port_wire(port_request(p)) for p in ports]
    if limits is not None:
        body["limits"] = _limits(limits).to_wire()
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            raise ValueError(f"priority: {priority!r} is not a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}")
        body["priority"] = priority
    if queue_timeout is not None:
        if isinstance(queue_timeout, bool) or not isinstance(queue_timeout, int) \
                or not 1 <= queue_timeout <= MAX_QUEUE_TIMEOUT_S:
            raise ValueError(f"queue_timeout: {queue_timeout!r} is not a number of seconds "
                             f"from 1 to {MAX_QUEUE_TIMEOUT_S}")
        body["queue_timeout"] = queue_timeout
    if file_ids:
        body["inputs"] = list(file_ids)
    return body


def hardware_query(requirements: Requirements, *, status: str | None = None, sort: str | None = None,
                   limit: int | None = None, offset: int | None = None) -> dict[str, str]:
    """The hardware listing's query: the requirements that are set, then the listing's own."""
    query = {name: str(value) for name, value in requirements.to_dict().items()}
    for name, value in (("status", status), ("sort", sort), ("limit", limit), ("offset", offset)):
        if value is not None:
            query[name] = str(value)
    return query
