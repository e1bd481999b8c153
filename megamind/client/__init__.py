"""Python clients of the Megamind customer API.

    from megamind.client import Client

    api = Client()  # MEGAMIND_API_URL / MEGAMIND_API_KEY, or what `megamind login` stored
    hw = api.hw_list()[0]
    taskid = api.add_task("megamind.network/helloworld:latest", hw.hwid, params="hi")
    print(api.wait_task(taskid).state.name)  # RUNNING
    for line in api.follow_logs(taskid):  # every line, until the task ends
        print(line)
    api.download_results(taskid, "results")  # what it wrote under /megamind/output/

``Client`` blocks (scripts, notebooks); ``AsyncClient`` is the same on asyncio.
"""

from megamind.client.aio import SETTLED, AsyncClient, WaitTimeout
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
    ResultsNotFound,
    RouteNotFound,
    TaskNotFound,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsafeArchive,
    UnsupportedMediaType,
    ValidationFailed,
)
from megamind.client.models import (
    Executor,
    FileInfo,
    HardwareItem,
    Image,
    Results,
    Task,
    TaskLogs,
    TaskState,
)
from megamind.client.sync import Client

__all__ = [
    "SETTLED", "AccountNotFound", "ApiError", "AsyncClient", "BadRequest", "Client", "Conflict",
    "Executor", "ExecutorBusy", "ExecutorNotFound", "ExecutorOffline", "FileInfo", "Forbidden",
    "HardwareItem", "Image", "ImageNotAllowed", "InternalError", "MegamindClientError", "MethodNotAllowed",
    "NotFound", "PayloadTooLarge", "RateLimited", "RequestTimeout", "Results", "ResultsNotFound",
    "RouteNotFound", "Task", "TaskLogs", "TaskNotFound", "TaskState", "TransportError", "Unauthorized",
    "Unavailable", "UnsafeArchive", "UnsupportedMediaType", "ValidationFailed", "WaitTimeout",
]
