"""Text for people: aligned tables and short forms of long values."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal

MONEY_STEP = Decimal("0.000001")  # the platform keeps money to six decimals


def table(headers: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()) -> str:
    """Columns padded to their widest cell; the columns in ``right`` are right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    aligned = set(right)
    lines = []
    for row in cells:
        parts = [cell.rjust(w) if i in aligned else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def counted(items: Sequence[str]) -> str:
    """``["A", "A", "B"]`` as ``2× A, B``; ``-`` for none."""
    if not items:
        return "-"
    return ", ".join(f"{n}× {name}" if n > 1 else name for name, n in Counter(items).items())


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())  # one line
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def megabytes(mb: int) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb} MB"


def ago(timestamp: float | None, now: float | None = None) -> str:
    if timestamp is None:
        return "never"
    seconds = max(0, int((time.time() if now is None else now) - timestamp))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def fields(rows: Iterable[tuple[str, object]]) -> str:
    """``name   value`` lines, the values aligned."""
    rows = list(rows)
    width = max((len(name) for name, _ in rows), default=0)
    return "\n".join(f"{name.ljust(width)}  {value}".rstrip() for name, value in rows)


def size(nbytes: int) -> str:
    """Bytes for people: ``512 B``, ``1.5 KB``, ``3.2 MB``, ``1.1 GB`` (units of 1024)."""
    value = float(nbytes)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def percent(value: float) -> str:
    """``42%``, ``42.5%``."""
    return f"{value:g}%"


def duration(seconds: float) -> str:
    """Exact, in the largest units: ``45s``, ``2h``, ``1h 1m 1s``, ``3d 4h``."""
    left = max(0, int(seconds))
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if left >= size:
            parts.append(f"{left // size}{unit}")
            left %= size
    return " ".join(parts) or "0s"


def until(timestamp: float | None, now: float | None = None) -> str:
    """``in 5m``, ``now``; ``-`` for no time."""
    if timestamp is None:
        return "-"
    seconds = int(timestamp - (time.time() if now is None else now))
    if seconds <= 0:
        return "now"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"in {seconds // size}{unit}"
    return f"in {seconds}s"


def money(amount: Decimal | float | int) -> str:
    """``1.5``, ``0.000125``, ``3``: an amount to six decimals at most, without trailing zeros."""
    exact = amount if isinstance(amount, Decimal) else Decimal(str(amount))
    # Always six decimals once quantized, so there is a point to trim back to.
    text = f"{exact.quantize(MONEY_STEP, rounding=ROUND_HALF_UP):f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text  # a tiny negative rounds to nothing, not to "-0"


def moment(timestamp: float | None) -> str:
    """``2026-12-02 15:35`` in local time, for lists that span days; ``-`` for no time."""
    return "-" if timestamp is None else time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))
