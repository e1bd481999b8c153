"""What a task would meet if it were submitted now: fitting executors, its place in the
queue, its price, and how long and how much it would likely run.  Nothing is written."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from megamind.errors import Unsatisfiable
from megamind.placement import Capacity, Need, fits, never_fits
from megamind.store.db import Database
from megamind.store.queue import _EXECUTOR_NARROWING, _EXECUTOR_SIZE, _PLACEMENT_ORDER, _narrowing_args

FREE_SHOWN = 10  # free executors an estimate lists
# The median run time of an image is taken over its latest runs.
RUNS_CONSIDERED = 1000


@dataclass(frozen=True)
class Estimate:
    fits: int  # online executors that meet the requirements, busy or free
    free: list[str]  # hwids of free ones, cheapest first
    queue_position: int  # 0: placed at once
    price: float | None
    time_s: float | None

    @property
    def cost(self) -> float | None:
        if self.price is None or self.time_s is None:
            return None
        return self.price * self.time_s / 3600


class Estimator:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def estimate(self, need: Need, image: str, priority: int, runtime_limit: int | None) -> Estimate:
        rows = await self._db.fetchall(
            f"SELECT {_EXECUTOR_SIZE} FROM executors e WHERE {_EXECUTOR_NARROWING}{_PLACEMENT_ORDER}",
            _narrowing_args(need))
        fitting = [r for r in rows if fits(need, Capacity.of_columns(r))]
        if not fitting:
            every = await self._db.fetchall(f"SELECT {_EXECUTOR_SIZE} FROM executors e")
            raise Unsatisfiable(never_fits(need, map(Capacity.of_columns, every)))
        online = [r for r in fitting if r["online"]]
        free = [r for r in online if not r["busy"]]
        position = 0 if free else await self._position(priority)
        price = float((free[0] if free else fitting[0])["cost"])
        time_s = float(runtime_limit) if runtime_limit else await self.median_run_s(image)
        return Estimate(len(online), [r["hwid"] for r in free[:FREE_SHOWN]], position, price, time_s)

    async def pinned(self, hwid: str, cost: float, free: bool, image: str, runtime_limit: int | None) -> Estimate:
        """A task named to one (online, fitting) executor: it runs there at once or not at all."""
        time_s = float(runtime_limit) if runtime_limit else await self.median_run_s(image)
        return Estimate(1, [hwid] if free else [], 0, cost, time_s)

    async def _position(self, priority: int) -> int:
        """Where a task submitted now would stand: behind every queued task of its priority or higher."""
        row = await self._db.fetchone("SELECT count(*) FROM tasks WHERE queued = 1 AND priority >= ?", (priority,))
        return row[0] + 1

    async def median_run_s(self, image: str) -> float | None:
        rows = await self._db.fetchall(
            "SELECT finished_at - started_at FROM tasks WHERE image = ? AND started_at IS NOT NULL"
            " AND finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT ?", (image, RUNS_CONSIDERED))
        runs = [r[0] for r in rows if r[0] is not None and r[0] >= 0]
        return statistics.median(runs) if runs else None
