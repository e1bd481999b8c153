"""The pieces every OpenAPI path entry is made of (``openapi.py`` and the modules whose
paths it gathers: ``openapi_history.py``, ``openapi_money.py``)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from megamind.errors import ERROR_TABLE, ErrorCode

# Which error answers each kind of call can give, besides those every call can give.
COMMON_ERRORS = ("UNAUTHORIZED", "RATE_LIMITED", "INTERNAL", "UNAVAILABLE")
BODY_ERRORS = ("BAD_REQUEST", "VALIDATION_FAILED", "PAYLOAD_TOO_LARGE", "UNSUPPORTED_MEDIA_TYPE",
               "REQUEST_TIMEOUT", "IMAGE_NOT_ALLOWED")


def json_content(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def array_of(name: str) -> dict[str, Any]:
    return {"type": "array", "items": name}


def error_statuses(*names: str) -> list[int]:
    codes = [ErrorCode[n] for n in (*COMMON_ERRORS, *names) if n in ErrorCode.__members__]
    return sorted({ERROR_TABLE[c][0] for c in codes})


def operation(
    op_id: str, tag: str, summary: str, ok: dict[str, Any], errors: list[int], status: int = 200, **extra: Any
) -> dict[str, Any]:
    responses: dict[str, Any] = {str(status): ok}
    responses.update({str(status): f"Error{status}" for status in errors})
    return {"operationId": op_id, "tags": [tag], "summary": summary, "responses": responses, **extra}


def error_responses() -> dict[int, dict[str, Any]]:
    by_status: dict[int, list[str]] = defaultdict(list)
    for code, (status, meaning) in sorted(ERROR_TABLE.items()):
        by_status[status].append(f"`{int(code)}` {ErrorCode(code).name.lower()}: {meaning}")
    return {
        status: json_content("Error", "An error; `code` is one of: " + "; ".join(lines) + ".")
        for status, lines in by_status.items()
    }
