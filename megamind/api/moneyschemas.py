"""The answers and requests of the money calls: estimate, account, usage and earnings.

Amounts are JSON numbers, as the contract shows them; inside they are exact
micro-units (``megamind.money``), turned into numbers only here.
"""

from __future__ import annotations

import time
from typing import Any

from marshmallow import RAISE, Schema, fields, post_load, validate

from megamind.api.historyschemas import TIME_PATTERN, TimeBound
from megamind.api.schemas import HardwareItemSchema
from megamind.store.spending import month_start

# An hourly limit or a credit beyond this is a typing mistake, not a budget.
MAX_AMOUNT = 1e12


def _money(description: str, *, allow_none: bool = False) -> fields.Float:
    return fields.Float(required=True, allow_none=allow_none, metadata={"description": description})


class EstimateSchema(Schema):
    fits = fields.Integer(required=True, metadata={"description": "online executors that meet the requirements"})
    free = fields.List(fields.Nested(HardwareItemSchema), required=True,
                       metadata={"description": "up to 10 free ones, cheapest first, as gethwlist shows them"})
    queue_position = fields.Integer(required=True,
                                    metadata={"description": "0: placed at once; else where it would wait"})
    price = _money("per hour: the cheapest free fitting executor's, else the cheapest fitting one's",
                   allow_none=True)
    estimated_time_seconds = fields.Float(
        required=True, allow_none=True,
        metadata={"description": "the runtime limit when given, else the median run time of the same image "
                                 "on this platform, else null"})
    estimated_cost = _money("price x estimated_time_seconds / 3600, or null", allow_none=True)


class AccountSchema(Schema):
    name = fields.String(required=True)
    balance = _money("prepaid credit left; null: not prepaid (usage is only recorded)", allow_none=True)
    spent_today = _money("charged since midnight UTC")
    spent_month = _money("charged since the first of the month, UTC")
    spend_limit_per_hour = _money("the account's own hourly limit, or null", allow_none=True)
    spent_last_hour = _money("charged in the last 3,600 seconds, as the limit counts it")


class SpendLimitRequestSchema(Schema):
    class Meta:
        unknown = RAISE

    spend_limit_per_hour = fields.Float(
        required=True, allow_none=True, allow_nan=False, validate=validate.Range(0, MAX_AMOUNT),
        metadata={"description": "at most this much charged in any hour; its tasks stop past it. null: no limit"})


class RangeQuerySchema(Schema):
    class Meta:
        unknown = RAISE

    start = TimeBound(data_key="from", metadata={
        "description": "charges made at or after: a day YYYY-MM-DD (UTC) or Unix seconds; default: "
                       "the first of the month `to` falls in (of this month without `to`)",
        "type": "string", "pattern": TIME_PATTERN})
    end = TimeBound(end_of_day=True, data_key="to", metadata={
        "description": "charges made at or before: a day (to its end) or Unix seconds; default: now, "
                       "or `from` when that is later (then nothing is charged in the range)",
        "type": "string", "pattern": TIME_PATTERN})

    @post_load
    def _defaults_on_the_given_side(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """One bound given: the other defaults on its side of it, so only both given can be reversed."""
        if "end" in data and "start" not in data:
            data["start"] = month_start(data["end"])
        elif "start" in data and "end" not in data:
            data["end"] = max(time.time(), data["start"])
        return data


class UsageLineSchema(Schema):
    tasks = fields.Integer(required=True)
    billed_seconds = fields.Float(required=True)
    spent = _money("charged")


class UsageDaySchema(UsageLineSchema):
    day = fields.String(required=True, metadata={"description": "YYYY-MM-DD, UTC"})


class UsageImageSchema(UsageLineSchema):
    image = fields.String(required=True)


class UsageSchema(Schema):
    total = _money("charged in the range")
    billed_seconds = fields.Float(required=True)
    days = fields.List(fields.Nested(UsageDaySchema), required=True, metadata={"description": "oldest first"})
    images = fields.List(fields.Nested(UsageImageSchema), required=True, metadata={"description": "by name"})


class EarningLineSchema(Schema):
    hwid = fields.String(required=True)
    tasks = fields.Integer(required=True)
    billed_seconds = fields.Float(required=True)
    earned = _money("charged for its runs, less the platform's fee")


class EarningsSchema(Schema):
    total = _money("earned by every executor of the caller in the range")
    executors = fields.List(fields.Nested(EarningLineSchema), required=True)


estimate_schema = EstimateSchema()
account_schema = AccountSchema()
spend_limit_request_schema = SpendLimitRequestSchema()
range_query_schema = RangeQuerySchema()
usage_schema = UsageSchema()
earnings_schema = EarningsSchema()
