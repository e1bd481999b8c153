"""Figures from samples: median, percentiles, ratios, and one row of the results table."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


def percentile(samples: list[float], p: float) -> float:
    """The p-th percentile (0-100), linear between the two nearest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return float(ordered[0])
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(samples: list[float]) -> float:
    return percentile(samples, 50)


def p95(samples: list[float]) -> float:
    return percentile(samples, 95)


def ratio(ours: float, base: float) -> float:
    """ours / base; infinite when the base is zero and ours is not."""
    if base == 0:
        return 1.0 if ours == 0 else math.inf
    return ours / base


@dataclass
class Summary:
    """What one side of a benchmark measured, in one unit."""

    samples: list[float]
    unit: str

    @property
    def median(self) -> float:
        return median(self.samples)

    @property
    def p95(self) -> float:
        return p95(self.samples)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    def text(self) -> str:
        return f"{_fmt(self.median)} / {_fmt(self.p95)} {self.unit}"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Row:
    """One line of the table: a figure of Megamind, its baseline, the ratio and the target."""

    benchmark: str
    metric: str
    ours: Summary | None  # None: the benchmark did not run to its end
    base: Summary | None
    ratio: float | None
    target: str
    met: bool
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        return [
            self.benchmark,
            self.metric,
            self.ours.text() if self.ours else "-",
            self.base.text() if self.base else "-",
            f"{self.ratio:.2f}" if self.ratio is not None else "-",
            self.target,
            "yes" if self.met else "NO",
        ]

    def to_dict(self) -> dict:
        def side(s: Summary | None) -> dict | None:
            if s is None:
                return None
            return {"unit": s.unit, "median": s.median, "p95": s.p95, "p99": s.p99, "n": len(s.samples)}

        return {
            "benchmark": self.benchmark, "metric": self.metric, "ours": side(self.ours),
            "base": side(self.base), "ratio": self.ratio, "target": self.target, "met": self.met,
            "notes": self.notes,
        }


HEADERS = ["benchmark", "metric", "megamind median / p95", "baseline median / p95", "ratio", "target", "met?"]


def table(rows: list[Row], markdown: bool = False) -> str:
    lines = [HEADERS] + [r.cells() for r in rows]
    if markdown:
        out = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
        out += ["| " + " | ".join(cells) + " |" for cells in lines[1:]]
        return "\n".join(out)
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    text = []
    for n, line in enumerate(lines):
        text.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if n == 0:
            text.append("  ".join("-" * w for w in widths))
    return "\n".join(text)
