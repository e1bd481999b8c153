"""Typed errors: each API error code has its own exception class.

Match on the class (or on ``code``), never on the message text::

    try:
        client.restart_task(taskid)
    except TaskNotFound:
        ...
    except ExecutorBusy as exc:
        print(exc.code, exc.message)
"""

from __future__ import annotations

from megamind.errors import ErrorCode


class MegamindClientError(Exception):
    """Base of everything the client raises."""


class TransportError(MegamindClientError):
    """The API could not be reached, or what answered was not the Megamind API."""


class UnsafeArchive(MegamindClientError):
    """A results archive holds a member that would land outside the folder it is unpacked into
    (an absolute path, ``..``, a link leading out, a device); nothing of it was unpacked."""


class ApiError(MegamindClientError):
    """The API answered ``{"code", "message"}`` with an error status."""

    def __init__(self, code: int, message: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        # Seconds to wait before trying again, when the API said so (429).
        self.retry_after = retry_after

    @property
    def name(self) -> str:
        """The code's name, e.g. ``task_not_found``; ``code_N`` for a code this client does not know."""
        try:
            return ErrorCode(self.code).name.lower()
        except ValueError:
            return f"code_{self.code}"

    def __str__(self) -> str:
        return f"{self.message} ({self.name}, code {self.code}, HTTP {self.status})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r}, status={self.status!r})"


class NotFound(ApiError):
    """Something the call names does not exist (HTTP 404)."""


class Conflict(ApiError):
    """The executor cannot take the task now (HTTP 409)."""


class PaymentRequired(ApiError):
    """The account cannot pay for the task now (HTTP 402)."""


class InternalError(ApiError): pass
class BadRequest(ApiError): pass
class ValidationFailed(ApiError): pass
class Unauthorized(ApiError): pass
class Forbidden(ApiError): pass
class RouteNotFound(NotFound): pass
class TaskNotFound(NotFound): pass
class ExecutorNotFound(NotFound): pass
class ExecutorBusy(Conflict): pass
class ExecutorOffline(Conflict): pass
class MethodNotAllowed(ApiError): pass
class PayloadTooLarge(ApiError): pass
class UnsupportedMediaType(ApiError): pass
class RateLimited(ApiError): pass
class Unavailable(ApiError): pass
class ImageNotAllowed(ValidationFailed): pass
class AccountNotFound(NotFound): pass
class RequestTimeout(ApiError): pass
class ResultsNotFound(NotFound): pass  # the task has no results (yet)
class Unsatisfiable(ValidationFailed): pass  # no registered executor could ever meet the requirements
class TaskQueued(Conflict): pass  # the task waits for an executor: restarting it must wait too
class InsufficientFunds(PaymentRequired): pass  # a prepaid balance that cannot pay one minute of the task
class SpendLimitReached(PaymentRequired): pass  # the account's spend limit per hour is used up


_BY_NAME: dict[str, type[ApiError]] = {
    "INTERNAL": InternalError,
    "BAD_REQUEST": BadRequest,
    "VALIDATION_FAILED": ValidationFailed,
    "UNAUTHORIZED": Unauthorized,
    "FORBIDDEN": Forbidden,
    "ROUTE_NOT_FOUND": RouteNotFound,
    "TASK_NOT_FOUND": TaskNotFound,
    "EXECUTOR_NOT_FOUND": ExecutorNotFound,
    "EXECUTOR_BUSY": ExecutorBusy,
    "EXECUTOR_OFFLINE": ExecutorOffline,
    "METHOD_NOT_ALLOWED": MethodNotAllowed,
    "PAYLOAD_TOO_LARGE": PayloadTooLarge,
    "UNSUPPORTED_MEDIA_TYPE": UnsupportedMediaType,
    "RATE_LIMITED": RateLimited,
    "UNAVAILABLE": Unavailable,
    "IMAGE_NOT_ALLOWED": ImageNotAllowed,
    "ACCOUNT_NOT_FOUND": AccountNotFound,
    "REQUEST_TIMEOUT": RequestTimeout,
    "RESULTS_NOT_FOUND": ResultsNotFound,
    "UNSATISFIABLE": Unsatisfiable,
    "TASK_QUEUED": TaskQueued,
    "INSUFFICIENT_FUNDS": InsufficientFunds,
    "SPEND_LIMIT_REACHED": SpendLimitReached,
}

ERROR_CLASSES: dict[int, type[ApiError]] = {
    int(code): _BY_NAME.get(code.name, ApiError) for code in ErrorCode
}


def error_for(code: int, message: str, status: int, retry_after: float | None = None) -> ApiError:
    """The exception for an error answer; a code this client does not know is a plain ApiError."""
    return ERROR_CLASSES.get(code, ApiError)(code, message, status, retry_after)
