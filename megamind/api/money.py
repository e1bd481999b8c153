"""The money calls: an estimate before a run, the account's balance and limit, usage, earnings."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from megamind.api.bodies import json_response, read_body, read_query
from megamind.api.handlers import hardware_item
from megamind.api.jobservice import run_spec, validate_pinned
from megamind.api.keys import ACCOUNT, hub_key, store_key
from megamind.api.moneyschemas import (
    account_schema,
    earnings_schema,
    estimate_schema,
    range_query_schema,
    spend_limit_request_schema,
    usage_schema,
)
from megamind.api.schemas import add_task_request_schema
from megamind.errors import ValidationFailed
from megamind.imageref import parse_image
from megamind.money import from_micro, to_micro
from megamind.placement import Need, Requirements
from megamind.store.spending import AccountMoney, UsageLine, month_start


async def estimate(request: web.Request) -> web.Response:
    """POST /api/v1/estimate: what addtask with this body would meet now; nothing is submitted."""
    body = await read_body(request, add_task_request_schema)
    store, hub = request.app[store_key], request.app[hub_key]
    image = parse_image(body["image"]).public
    spec = run_spec(body)
    hwid = body.get("hwid")
    if hwid is not None:
        record = await validate_pinned(request.config_dict, body, spec)
        busy = hwid in await store.tasks.busy_executors()
        found = await store.estimates.pinned(hwid, record.cost, not busy, image, spec.limits.runtime)
    else:
        need = Need.of(Requirements.from_dict(body.get("requirements") or {}), spec.limits)
        found = await store.estimates.estimate(need, image, body["priority"], spec.limits.runtime)
    online = {r.hwid: r for r in hub.online()}
    return json_response(estimate_schema.dump({
        "fits": found.fits,
        "free": [hardware_item(online[h]) for h in found.free if h in online],
        "queue_position": found.queue_position,
        "price": found.price,
        "estimated_time_seconds": found.time_s,
        "estimated_cost": None if found.cost is None else round(found.cost, 6),
    }))


def _account_view(money: AccountMoney) -> dict[str, Any]:
    return {
        "name": money.name,
        "balance": from_micro(money.balance_micro),
        "spent_today": from_micro(money.spent_today_micro),
        "spent_month": from_micro(money.spent_month_micro),
        "spend_limit_per_hour": from_micro(money.spend_limit_micro),
        "spent_last_hour": from_micro(money.spent_last_hour_micro),
    }


async def account(request: web.Request) -> web.Response:
    """GET /api/v1/account: balance and spend."""
    money = await request.app[store_key].spending.account(request[ACCOUNT].id)
    return json_response(account_schema.dump(_account_view(money)))


async def set_spend_limit(request: web.Request) -> web.Response:
    """PATCH /api/v1/account: the account's hourly spend limit (null: none)."""
    body = await read_body(request, spend_limit_request_schema)
    spending = request.app[store_key].spending
    limit = body["spend_limit_per_hour"]
    await spending.set_spend_limit(request[ACCOUNT].id, None if limit is None else to_micro(limit))
    return json_response(account_schema.dump(_account_view(await spending.account(request[ACCOUNT].id))))


def _range(request: web.Request) -> tuple[float, float]:
    query = read_query(request, range_query_schema)
    now = time.time()
    start, end = query.get("start", month_start(now)), query.get("end", now)
    if start > end:
        raise ValidationFailed("from: must not be after to")
    return start, end


def _line(line: UsageLine) -> dict[str, Any]:
    return {"tasks": line.tasks, "billed_seconds": line.billed_ms / 1000, "spent": from_micro(line.micro)}


async def usage(request: web.Request) -> web.Response:
    """GET /api/v1/usage: what the account spent, per UTC day and per image."""
    start, end = _range(request)
    days, images = await request.app[store_key].spending.usage(request[ACCOUNT].id, start, end)
    return json_response(usage_schema.dump({
        "total": from_micro(sum(d.micro for d in days)),
        "billed_seconds": sum(d.billed_ms for d in days) / 1000,
        "days": [{"day": d.key, **_line(d)} for d in days],
        "images": [{"image": i.key, **_line(i)} for i in images],
    }))


async def earnings(request: web.Request) -> web.Response:
    """GET /api/v1/earnings: what the caller's executors earned, after the platform's fee."""
    start, end = _range(request)
    lines = await request.app[store_key].spending.earnings(request[ACCOUNT].id, start, end)
    return json_response(earnings_schema.dump({
        "total": from_micro(sum(line.micro for line in lines)),
        "executors": [{"hwid": line.key, "tasks": line.tasks, "billed_seconds": line.billed_ms / 1000,
                       "earned": from_micro(line.micro)} for line in lines],
    }))
