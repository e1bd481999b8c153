"""Reading JSON fields of a wire message strictly: one error type for anything that does not fit."""

from __future__ import annotations

from enum import Enum
from typing import Any


class ProtocolError(Exception):
    """A message that the protocol does not allow."""


def read_field(data: dict[str, Any], name: str, kind: type | tuple[type, ...], *, optional: bool = False,
               default: Any = None) -> Any:
    if name not in data or data[name] is None:
        if optional:
            return default
        raise ProtocolError(f"{name}: missing")
    value = data[name]
    if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
        raise ProtocolError(f"{name}: expected {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise ProtocolError(f"{name}: expected {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


# A moment on a clock as Unix seconds: past 1970 and before the year 5138.
_LATEST_MOMENT = 1e11


def read_moment(data: dict[str, Any], name: str) -> float | None:
    """An optional Unix time; anything not a finite moment after 1970 is refused."""
    value = read_field(data, name, (int, float), optional=True)
    if value is None:
        return None
    if not 0 < value < _LATEST_MOMENT:  # also refuses NaN, which compares false
        raise ProtocolError(f"{name}: not a Unix time")
    return float(value)


def read_enum(enum: type[Enum], value: Any, name: str) -> Any:
    try:
        return enum(value)
    except ValueError:
        raise ProtocolError(f"{name}: unknown value {value!r}") from None


def storable_text(value: str, limit: int) -> str:
    """Text made storable: cut to a bound, lone surrogates (not encodable as UTF-8) replaced."""
    return value[:limit].encode("utf-8", "replace").decode("utf-8")


def read_taskid(data: dict[str, Any]) -> str:
    taskid = read_field(data, "taskid", str)
    if not 0 < len(taskid) <= 64:
        raise ProtocolError("taskid: must be 1 to 64 characters")
    return taskid
