"""What the API answers about money, as typed objects: what a task would cost before it
runs, the account's balance and spend limit, what it spent, and what an owner's
executors earned.

Every amount is a ``decimal.Decimal`` (the platform keeps money to six decimals, which
binary floats cannot hold exactly); durations and counts are plain numbers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from megamind.client.models import HardwareItem

__all__ = ["Account", "DayUsage", "Earnings", "Estimate", "ExecutorEarnings", "ImageUsage", "Usage", "money",
           "money_json"]


def money(value: Any) -> Decimal:
    """An amount from the API: a Decimal as parsed, or a JSON number through its text."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise TypeError(f"{value!r} is not an amount")
    try:
        return Decimal(str(value))  # a float's shortest text: 0.1 stays 0.1
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None


def _optional_money(value: Any) -> Decimal | None:
    return None if value is None else money(value)


def money_json(amount: Decimal | None) -> float | None:
    """An amount as the JSON number the API wrote (six decimals survive a float's text)."""
    return None if amount is None else float(amount)


@dataclass(frozen=True)
class Estimate:
    """What ``addtask`` with the same body would do now (``POST /api/v1/estimate``)."""

    fits: int  # executors that meet the requirements, free or not
    free: list[HardwareItem]  # up to 10 of those free now, cheapest first
    queue_position: int  # 0: it would be placed at once
    price: Decimal | None  # per hour, where it would go; None when that cannot be told yet
    estimated_time_seconds: float | None  # the runtime limit, else the image's median run, else None
    estimated_cost: Decimal | None  # price × time; None when either is unknown

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Estimate":
        seconds = data["estimated_time_seconds"]
        return cls(
            fits=int(data["fits"]),
            free=[HardwareItem.from_json(item) for item in data["free"]],
            queue_position=int(data["queue_position"]),
            price=_optional_money(data["price"]),
            estimated_time_seconds=None if seconds is None else float(seconds),
            estimated_cost=_optional_money(data["estimated_cost"]),
        )

    @property
    def placed_at_once(self) -> bool:
        return self.queue_position == 0

    def to_json(self) -> dict[str, Any]:
        return {"fits": self.fits, "free": [item.to_json() for item in self.free],
                "queue_position": self.queue_position, "price": money_json(self.price),
                "estimated_time_seconds": self.estimated_time_seconds,
                "estimated_cost": money_json(self.estimated_cost)}


@dataclass(frozen=True)
class Account:
    """The caller's account (``GET /api/v1/account``): its balance, spending and limit."""

    name: str
    balance: Decimal | None  # None: not prepaid (usage is only recorded)
    spent_today: Decimal
    spent_month: Decimal
    # None: no limit, or a server that does not tell.
    spend_limit_per_hour: Decimal | None
    spent_last_hour: Decimal | None  # None from a server without spend limits

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Account":
        return cls(
            name=str(data["name"]),
            balance=_optional_money(data["balance"]),
            spent_today=money(data["spent_today"]),
            spent_month=money(data["spent_month"]),
            spend_limit_per_hour=_optional_money(data.get("spend_limit_per_hour")),
            spent_last_hour=_optional_money(data.get("spent_last_hour")),
        )

    @property
    def prepaid(self) -> bool:
        """Tasks are paid from the balance, and refused when it cannot pay."""
        return self.balance is not None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "balance": money_json(self.balance),
                "spent_today": money_json(self.spent_today), "spent_month": money_json(self.spent_month),
                "spend_limit_per_hour": money_json(self.spend_limit_per_hour),
                "spent_last_hour": money_json(self.spent_last_hour)}


@dataclass(frozen=True)
class DayUsage:
    """What the account's tasks ran and cost on one day."""

    day: dt.date
    billed_seconds: float
    spent: Decimal

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "DayUsage":
        return cls(day=dt.date.fromisoformat(data["day"]), billed_seconds=float(data["billed_seconds"]),
                   spent=money(data["spent"]))

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day.isoformat(), "billed_seconds": self.billed_seconds, "spent": money_json(self.spent)}


@dataclass(frozen=True)
class ImageUsage:
    """What the account's tasks of one image ran and cost."""

    image: str
    tasks: int
    billed_seconds: float
    spent: Decimal

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ImageUsage":
        return cls(image=str(data["image"]), tasks=int(data["tasks"]), billed_seconds=float(data["billed_seconds"]),
                   spent=money(data["spent"]))

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "tasks": self.tasks, "billed_seconds": self.billed_seconds,
                "spent": money_json(self.spent)}


@dataclass(frozen=True)
class Usage:
    """What the account spent in a range (``GET /api/v1/usage``), per day and per image."""

    total: Decimal
    billed_seconds: float
    days: list[DayUsage]
    images: list[ImageUsage]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Usage":
        return cls(total=money(data["total"]), billed_seconds=float(data["billed_seconds"]),
                   days=[DayUsage.from_json(d) for d in data["days"]],
                   images=[ImageUsage.from_json(i) for i in data["images"]])

    def to_json(self) -> dict[str, Any]:
        return {"total": money_json(self.total), "billed_seconds": self.billed_seconds,
                "days": [d.to_json() for d in self.days], "images": [i.to_json() for i in self.images]}


@dataclass(frozen=True)
class ExecutorEarnings:
    """What one of the caller's executors earned in a range, the platform's fee taken."""

    hwid: str
    billed_seconds: float
    earned: Decimal

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "ExecutorEarnings":
        return cls(hwid=str(data["hwid"]), billed_seconds=float(data["billed_seconds"]),
                   earned=money(data["earned"]))

    def to_json(self) -> dict[str, Any]:
        return {"hwid": self.hwid, "billed_seconds": self.billed_seconds, "earned": money_json(self.earned)}


@dataclass(frozen=True)
class Earnings:
    """What the caller's executors earned in a range (``GET /api/v1/earnings``), as an owner."""

    total: Decimal
    executors: list[ExecutorEarnings]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Earnings":
        return cls(total=money(data["total"]), executors=[ExecutorEarnings.from_json(e) for e in data["executors"]])

    def to_json(self) -> dict[str, Any]:
        return {"total": money_json(self.total), "executors": [e.to_json() for e in self.executors]}
