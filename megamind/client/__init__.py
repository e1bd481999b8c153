"""Python clients of the Megamind customer API.

    from megamind.client import Client

    api = Client()  # MEGAMIND_API_URL / MEGAMIND_API_KEY, or what `megamind login` stored
    hw = api.hw_list()[0]
    taskid = api.add_task("megamind.network/helloworld:latest", hw.hwid, params="hi")
    print(api.wait_task(taskid).state.name)  # RUNNING
    for line in api.follow_logs(taskid):
        print(line)

``Client`` blocks (scripts, notebooks); ``AsyncClient`` is the same on asyncio.
"""

from megamind.client.aio import SETTLED, AsyncClient, WaitTimeout, new_lines
from megamind.client.errors import (
    AccountNotFound,
    ApiError,
    BadRequest,
    Conflict,
    ExecutorBusy,
    ExecutorNotFound,
    ExecutorOffline,
    Forbidden,
    ImageNotAllowed,
    InternalError,
    MegamindClientError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RequestTimeout,
    RouteNotFound,
    TaskNotFound,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsupportedMediaType,
    ValidationFailed,
)
from megamind.client.models import (
    Executor,
    HardwareItem,
    Image,
    Task,
    TaskLogs,
    TaskState,
)
from megamind.client.sync import Client

__all__ = [
    "SETTLED", "AccountNotFound", "ApiError", "AsyncClient", "BadRequest", "Client", "Conflict",
    "Executor", "ExecutorBusy", "ExecutorNotFound", "ExecutorOffline", "Forbidden", "HardwareItem",
    "Image", "ImageNotAllowed", "InternalError", "MegamindClientError", "MethodNotAllowed", "NotFound",
    "PayloadTooLarge", "RateLimited", "RequestTimeout", "RouteNotFound", "Task", "TaskLogs",
    "TaskNotFound", "TaskState", "TransportError", "Unauthorized", "Unavailable",
    "UnsupportedMediaType", "ValidationFailed", "WaitTimeout", "new_lines",
]
