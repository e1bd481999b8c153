"""The queries and answers of an account's history and of the paged task listing.

Each check is written once as a pattern that both the server and the OpenAPI document
use, so a query the spec allows is one the server takes (but a cursor, which is opaque,
and `from` after `to`, which JSON Schema cannot say).
"""

from __future__ import annotations

import math
import re
from datetime import date, datetime, timezone
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from megamind.api.schemas import TaskDetailSchema
from megamind.imageref import MAX_REFERENCE_LENGTH
from megamind.states import TaskState

DEFAULT_PAGE = 100
MAX_PAGE = 1000
MAX_CURSOR_CHARS = 512
DAY_S = 86400
STATE_NAMES = {state.name.lower(): state for state in TaskState}

# A real calendar day, years 0001-9999 (what datetime.date takes): the lengths of the
# months and the Gregorian leap years spelled out, so the spec refuses 2023-02-29 too.
_MONTH_DAY = (r"(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])"
              r"|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
              r"|02-(?:0[1-9]|1[0-9]|2[0-8]))")
_LEAP_YEAR = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_DATE = rf"(?!0000)(?:[0-9]{{4}}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
# Unix seconds: up to 11 digits (the year 5138) and 6 decimals.
_SECONDS = r"[0-9]{1,11}(?:\.[0-9]{1,6})?"
TIME_PATTERN = rf"^(?:{_DATE}|{_SECONDS})$"
_TIME = re.compile(TIME_PATTERN)
_DAY = re.compile(rf"^{_DATE}$")
STATE_PATTERN = "^(?:[1-5]|" + "|".join(STATE_NAMES) + ")$"
_STATE = re.compile(STATE_PATTERN)
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


class TimeBound(fields.Field):
    """A day (YYYY-MM-DD, UTC) or Unix seconds, as Unix seconds.  As the upper bound, a day
    means its very end: the last float before the next midnight, so `to` stays inclusive."""

    def __init__(self, *, end_of_day: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.end_of_day = end_of_day

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if not isinstance(value, str) or not _TIME.fullmatch(value):
            raise ValidationError("a day YYYY-MM-DD (UTC) or Unix seconds, such as 2024-03-01 or 1709251200")
        if not _DAY.fullmatch(value):
            return float(value)
        day = date.fromisoformat(value)
        start = datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp()
        return math.nextafter(start + DAY_S, -math.inf) if self.end_of_day else start


class StateField(fields.Field):
    """A stored state: its number 1-5 or its name (megamind/states.py, lowercase)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if not isinstance(value, str) or not _STATE.fullmatch(value):
            raise ValidationError(f"a state 1-5 or one of {', '.join(STATE_NAMES)}")
        return int(value) if value.isdigit() else int(STATE_NAMES[value])


def _state_field() -> StateField:
    return StateField(metadata={
        "description": "only tasks in this state as stored, a number or its name (a task whose executor "
                       "is offline is stored as it was last reported, though shown as unknown)",
        "oneOf": [{"type": "integer", "minimum": 1, "maximum": 5},
                  {"type": "string", "enum": list(STATE_NAMES)}]})


class TaskPageQuerySchema(Schema):
    """GET /api/v1/tasks: the live tasks, filtered and a page at a time."""

    class Meta:
        unknown = RAISE  # a misspelt filter would silently widen the answer

    state = _state_field()
    image = fields.String(validate=validate.Length(1, MAX_REFERENCE_LENGTH), metadata={
        "description": "only tasks of exactly this image, as addtask stored it: megamind.network/<name>:<tag> "
                       "(:latest where addtask was given no tag); no prefix or tag-less match"})
    limit = fields.Integer(load_default=DEFAULT_PAGE, validate=validate.Range(1, MAX_PAGE),
                           metadata={"description": "at most this many tasks on the page"})
    cursor = fields.String(validate=validate.Length(1, MAX_CURSOR_CHARS), metadata={
        "description": "the next_cursor of the previous page, as it came; the first page without it",
        "pattern": CURSOR_PATTERN})


class HistoryQuerySchema(TaskPageQuerySchema):
    """GET /api/v1/history: every task of the account created in [from, to], deleted ones too."""

    created_from = TimeBound(data_key="from", metadata={
        "description": "created at or after: a day YYYY-MM-DD (its start, UTC) or Unix seconds",
        "type": "string", "pattern": TIME_PATTERN})
    created_to = TimeBound(end_of_day=True, data_key="to", metadata={
        "description": "created at or before: a day YYYY-MM-DD (to its end, UTC, inclusive) or Unix seconds",
        "type": "string", "pattern": TIME_PATTERN})

    @validates_schema
    def _range_not_reversed(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("created_from"), data.get("created_to")
        if start is not None and end is not None and start > end:
            raise ValidationError("must not be after to", "from")


class PagedTaskSchema(TaskDetailSchema):
    """A task as history and the paged listing show it: the detail without env."""

    class Meta:
        exclude = ("env",)

    deleted = fields.Boolean(required=True, metadata={"description": "removed by deltask"})
    deleted_at = fields.Float(required=True, allow_none=True,
                              metadata={"description": "when deltask removed it, Unix seconds; else null"})


class TaskPageSchema(Schema):
    tasks = fields.List(fields.Nested(PagedTaskSchema), required=True, metadata={"description": "newest first"})
    total = fields.Integer(required=True, metadata={"description": "how many match, over every page"})
    has_more = fields.Boolean(required=True, metadata={"description": "another page follows"})
    next_cursor = fields.String(required=True, allow_none=True,
                                metadata={"description": "pass as cursor for the next page; null on the last"})


history_query_schema = HistoryQuerySchema()
task_page_query_schema = TaskPageQuerySchema()
task_page_schema = TaskPageSchema()
