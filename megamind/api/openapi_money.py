"""The OpenAPI entries of the money calls, for ``openapi.py``."""

from __future__ import annotations

from typing import Any

from megamind.api.moneyschemas import (
    AccountSchema,
    EarningsSchema,
    EstimateSchema,
    RangeQuerySchema,
    SpendLimitRequestSchema,
    UsageSchema,
)
from megamind.api.openapi_parts import BODY_ERRORS, error_statuses, json_content, operation
from megamind.metering import SILENCE_GRACE_S
from megamind.store.estimates import FREE_SHOWN, RUNS_CONSIDERED

MONEY_SCHEMAS = {
    "Estimate": EstimateSchema,
    "Account": AccountSchema,
    "SpendLimitRequest": SpendLimitRequestSchema,
    "Usage": UsageSchema,
    "Earnings": EarningsSchema,
}

_METERING = f"""\
A task is billed for the seconds its container ran (state 3), by the engine's own start
and end times, at the executor's price per hour fixed when the task was placed. Setup,
queueing and the time after the exit are free. An executor that goes silent is not
billed past the moment it was last seen, unless it comes back within {SILENCE_GRACE_S:g} s and
its engine vouches that the same run went on. Each charge is a row of an append-only
ledger, written once whatever restarts or resends happen.
"""

_RANGE = [{"in": "query", "schema": RangeQuerySchema}]


def _range_call(op_id: str, summary: str, schema: str, description: str) -> dict[str, Any]:
    return operation(op_id, "extension", summary, json_content(schema, summary),
                     error_statuses("VALIDATION_FAILED"), parameters=_RANGE, description=description)


MONEY_PATHS: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/estimate", {"post": operation(
        "estimate", "extension", "What addtask with this body would meet now; nothing is submitted",
        json_content("Estimate", "Fitting executors, the queue position, the price and the estimate"),
        error_statuses(*BODY_ERRORS, "EXECUTOR_NOT_FOUND", "EXECUTOR_OFFLINE", "UNSATISFIABLE"),
        requestBody={"required": True, "content": {"application/json": {"schema": "AddTaskRequest"}}},
        description=f"`free` lists up to {FREE_SHOWN} free fitting executors, cheapest first. "
                    "`queue_position` 0 means the task would be placed at once. The time is the runtime "
                    f"limit when given, else the median run time of the image's last {RUNS_CONSIDERED} runs "
                    "on this platform, else null; the cost is price x time / 3600, or null.\n\n" + _METERING,
    )}),
    ("/api/v1/account", {
        "get": operation(
            "getaccount", "extension", "The account's balance and spend",
            json_content("Account", "Balance (null: not prepaid), spend and the hourly limit"), error_statuses(),
            description="A prepaid account (credited with `megamind admin credit`) whose balance cannot pay one "
                        "minute is refused by addtask (402, code 22); its tasks stop in state 5 with "
                        "`stopped: balance exhausted` when the balance reaches zero.",
        ),
        "patch": operation(
            "setspendlimit", "extension", "Set or clear the account's hourly spend limit",
            json_content("Account", "The account, with its new limit"), error_statuses(*BODY_ERRORS),
            requestBody={"required": True, "content": {"application/json": {"schema": "SpendLimitRequest"}}},
            description="Past the limit within any hour, addtask answers 402 (code 23) and the account's "
                        "tasks stop in state 5 with `stopped: hourly spend limit of X reached`.",
        ),
    }),
    ("/api/v1/usage", {"get": _range_call(
        "getusage", "What the account spent, per UTC day and per image", "Usage", _METERING)}),
    ("/api/v1/earnings", {"get": _range_call(
        "getearnings", "What the caller's executors earned, after the platform's fee", "Earnings",
        "The server's `--platform-fee` share of each charge is kept by the platform.\n\n" + _METERING)}),
]
