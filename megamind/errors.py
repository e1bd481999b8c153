"""Domain errors and the stable table of API error codes.

The store, the executor hub and the handlers raise these; one middleware turns them
into ``{"code", "message"}`` answers.  Codes never change meaning once released:
clients may branch on them.
"""

from __future__ import annotations

from enum import IntEnum


class ErrorCode(IntEnum):
    INTERNAL = 1
    BAD_REQUEST = 2
    VALIDATION_FAILED = 3
    UNAUTHORIZED = 4
    FORBIDDEN = 5
    ROUTE_NOT_FOUND = 6
    TASK_NOT_FOUND = 7
    EXECUTOR_NOT_FOUND = 8
    EXECUTOR_BUSY = 9
    EXECUTOR_OFFLINE = 10
    METHOD_NOT_ALLOWED = 11
    PAYLOAD_TOO_LARGE = 12
    UNSUPPORTED_MEDIA_TYPE = 13
    RATE_LIMITED = 14
    UNAVAILABLE = 15
    IMAGE_NOT_ALLOWED = 16
    ACCOUNT_NOT_FOUND = 17
    REQUEST_TIMEOUT = 18
    RESULTS_NOT_FOUND = 19
    UNSATISFIABLE = 20
    TASK_QUEUED = 21
    INSUFFICIENT_FUNDS = 22
    SPEND_LIMIT_REACHED = 23


class MegamindError(Exception):
    """Base of every error the API answers with a JSON body."""

    code: ErrorCode = ErrorCode.INTERNAL
    status: int = 500

    def __init__(self, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # Seconds a client should wait, sent as Retry-After (rate limits).
        self.retry_after = retry_after


def _error(name: str, code: ErrorCode, status: int) -> type[MegamindError]:
    return type(name, (MegamindError,), {"code": code, "status": status})


BadRequest = _error("BadRequest", ErrorCode.BAD_REQUEST, 400)
ValidationFailed = _error("ValidationFailed", ErrorCode.VALIDATION_FAILED, 422)
Unauthorized = _error("Unauthorized", ErrorCode.UNAUTHORIZED, 401)
Forbidden = _error("Forbidden", ErrorCode.FORBIDDEN, 403)
RouteNotFound = _error("RouteNotFound", ErrorCode.ROUTE_NOT_FOUND, 404)
TaskNotFound = _error("TaskNotFound", ErrorCode.TASK_NOT_FOUND, 404)
ExecutorNotFound = _error("ExecutorNotFound", ErrorCode.EXECUTOR_NOT_FOUND, 404)
ExecutorBusy = _error("ExecutorBusy", ErrorCode.EXECUTOR_BUSY, 409)
ExecutorOffline = _error("ExecutorOffline", ErrorCode.EXECUTOR_OFFLINE, 409)
MethodNotAllowed = _error("MethodNotAllowed", ErrorCode.METHOD_NOT_ALLOWED, 405)
PayloadTooLarge = _error("PayloadTooLarge", ErrorCode.PAYLOAD_TOO_LARGE, 413)
UnsupportedMediaType = _error("UnsupportedMediaType", ErrorCode.UNSUPPORTED_MEDIA_TYPE, 415)
RateLimited = _error("RateLimited", ErrorCode.RATE_LIMITED, 429)
Unavailable = _error("Unavailable", ErrorCode.UNAVAILABLE, 503)
ImageNotAllowed = _error("ImageNotAllowed", ErrorCode.IMAGE_NOT_ALLOWED, 422)
AccountNotFound = _error("AccountNotFound", ErrorCode.ACCOUNT_NOT_FOUND, 404)
RequestTimeout = _error("RequestTimeout", ErrorCode.REQUEST_TIMEOUT, 408)
ResultsNotFound = _error("ResultsNotFound", ErrorCode.RESULTS_NOT_FOUND, 404)
Unsatisfiable = _error("Unsatisfiable", ErrorCode.UNSATISFIABLE, 422)
TaskQueued = _error("TaskQueued", ErrorCode.TASK_QUEUED, 409)
InsufficientFunds = _error("InsufficientFunds", ErrorCode.INSUFFICIENT_FUNDS, 402)
SpendLimitReached = _error("SpendLimitReached", ErrorCode.SPEND_LIMIT_REACHED, 402)

# code -> (HTTP status, meaning), the documented table (README "Error codes").
ERROR_TABLE: dict[int, tuple[int, str]] = {
    ErrorCode.INTERNAL: (500, "unexpected server error; the request may be retried"),
    ErrorCode.BAD_REQUEST: (400, "the body is not valid JSON or not UTF-8"),
    ErrorCode.VALIDATION_FAILED: (422, "a field is missing, of the wrong type or out of range"),
    ErrorCode.UNAUTHORIZED: (401, "the api-key header is missing, unknown or revoked"),
    ErrorCode.FORBIDDEN: (403, "the credential is valid but not for this call"),
    ErrorCode.ROUTE_NOT_FOUND: (404, "no such call"),
    ErrorCode.TASK_NOT_FOUND: (404, "no task with this id in the caller's account"),
    ErrorCode.EXECUTOR_NOT_FOUND: (404, "no executor with this hwid"),
    ErrorCode.EXECUTOR_BUSY: (409, "the executor is running another task"),
    ErrorCode.EXECUTOR_OFFLINE: (409, "the executor is not connected"),
    ErrorCode.METHOD_NOT_ALLOWED: (405, "the call exists but not with this HTTP method"),
    ErrorCode.PAYLOAD_TOO_LARGE: (413, "the body is larger than the server accepts"),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: (415, "the body is not of a type the call takes (JSON, but for uploads)"),
    ErrorCode.RATE_LIMITED: (429, "too many requests; wait Retry-After seconds"),
    ErrorCode.UNAVAILABLE: (503, "the server is starting or shutting down"),
    ErrorCode.IMAGE_NOT_ALLOWED: (422, "the image is not a megamind.network image"),
    ErrorCode.ACCOUNT_NOT_FOUND: (404, "no such account"),
    ErrorCode.REQUEST_TIMEOUT: (408, "the request head or body was sent too slowly"),
    ErrorCode.RESULTS_NOT_FOUND: (404, "the task has no results (yet)"),
    ErrorCode.UNSATISFIABLE: (422, "no registered executor could ever meet the requirements or hold the limits"),
    ErrorCode.TASK_QUEUED: (409, "the task is queued: it cannot be restarted before it is placed"),
    ErrorCode.INSUFFICIENT_FUNDS: (402, "the prepaid balance cannot pay one minute on the executor it would run on"),
    ErrorCode.SPEND_LIMIT_REACHED: (402, "the account spent its hourly spend limit in the last hour"),
}
