"""Python clients of the Megamind customer API.

    from megamind.client import Client

    api = Client()  # MEGAMIND_API_URL / MEGAMIND_API_KEY, or what `megamind login` stored
    hw = api.hw_list()[0]
    taskid = api.add_task("megamind.network/helloworld:latest", hw.hwid, params="hi")
    print(api.wait_task(taskid).state.name)  # RUNNING
    # or let the platform place it, on the cheapest free executor that fits (queued until one is):
    taskid = api.add_task("megamind.network/trainer:1.2", requirements=Requirements(gpus=1, ram=16000),
                          command=["python", "train.py"], env={"EPOCHS": "3"}, ports=[8888],
                          limits=TaskLimits(memory=4096, runtime=7200), priority=80)
    for line in api.follow_logs(taskid):  # every line, until the task ends
        print(line)
    api.download_results(taskid, "results")  # what it wrote under /megamind/output/
    # what a run would cost before it runs, and what the account spent
    print(api.estimate("megamind.network/trainer:1.2", requirements=Requirements(gpus=1)).estimated_cost)
    print(api.account().balance, api.usage(from_="2026-12-01").total)  # amounts are Decimals

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
    InsufficientFunds,
    InternalError,
    MegamindClientError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    PaymentRequired,
    RateLimited,
    RequestTimeout,
    ResultsNotFound,
    RouteNotFound,
    SpendLimitReached,
    TaskNotFound,
    TaskQueued,
    TransportError,
    Unauthorized,
    Unavailable,
    UnsafeArchive,
    UnsupportedMediaType,
    Unsatisfiable,
    ValidationFailed,
)
from megamind.client.models import (
    Executor,
    FileInfo,
    HardwareItem,
    Image,
    PublishedPort,
    Results,
    Task,
    TaskLogs,
    TaskState,
)
from megamind.client.billing import Account, DayUsage, Earnings, Estimate, ExecutorEarnings, ImageUsage, Usage
from megamind.client.listings import HardwareDetail, HardwarePage, QueuedTask, TaskPage
from megamind.client.registrycalls import RegistryInfo, Repository
from megamind.client.spec import PortRequest, Requirements, TaskLimits
from megamind.client.sync import Client

__all__ = [
    "Account", "AccountNotFound", "ApiError", "AsyncClient", "BadRequest", "Client", "Conflict", "DayUsage",
    "Earnings", "Estimate", "Executor", "ExecutorBusy", "ExecutorEarnings", "ExecutorNotFound", "ExecutorOffline",
    "FileInfo", "Forbidden", "HardwareDetail", "HardwareItem", "HardwarePage", "Image", "ImageNotAllowed",
    "ImageUsage", "InsufficientFunds", "InternalError", "MegamindClientError", "MethodNotAllowed", "NotFound",
    "PayloadTooLarge", "PaymentRequired", "PortRequest", "PublishedPort", "QueuedTask", "RateLimited",
    "RegistryInfo", "Repository", "RequestTimeout", "Requirements", "Results", "ResultsNotFound", "RouteNotFound", "SETTLED",
    "SpendLimitReached", "Task", "TaskLimits", "TaskLogs", "TaskNotFound", "TaskPage", "TaskQueued", "TaskState",
    "TransportError", "Unauthorized", "Unavailable", "UnsafeArchive", "Unsatisfiable", "UnsupportedMediaType",
    "Usage", "ValidationFailed", "WaitTimeout",
]
