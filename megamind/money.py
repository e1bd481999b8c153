"""Money as integer micro-units: stored, summed and compared exactly.

Prices (per hour), balances and charges travel as JSON numbers, as the contract
shows them; inside, every amount is an integer number of millionths, so that a
million charges add up to exactly what each of them says.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MICRO = 1_000_000
MS_PER_HOUR = 3_600_000
# Amounts are stored as SQL integers (64-bit): no balance may pass this.
MAX_MICRO = 2**63 - 1


def to_micro(amount: float | int | str | Decimal) -> int:
    """An amount as micro-units, rounded half up (floats through their shortest repr)."""
    try:
        value = Decimal(str(amount)) if not isinstance(amount, Decimal) else amount
    except InvalidOperation:
        raise ValueError(f"not an amount: {amount!r}") from None
    if not value.is_finite():
        raise ValueError(f"not an amount: {amount!r}")
    return int((value * MICRO).to_integral_value(rounding=ROUND_HALF_UP))


def from_micro(micro: int | None) -> float | None:
    """Micro-units as the JSON number the contract shows (exact to six decimals)."""
    return None if micro is None else float(Decimal(micro) / MICRO)


def cost_of(price_micro_per_hour: int, ms: int) -> int:
    """What ``ms`` milliseconds cost at a price per hour, rounded half up to a micro-unit."""
    numerator = price_micro_per_hour * ms
    quotient, remainder = divmod(numerator, MS_PER_HOUR)
    return quotient + (1 if 2 * remainder >= MS_PER_HOUR else 0)


def per_minute(price_micro_per_hour: int) -> int:
    """One minute at a price per hour: what a prepaid account must hold to start."""
    return cost_of(price_micro_per_hour, 60_000)


def share(amount_micro: int, fraction_micro: int) -> int:
    """A fraction (in millionths) of an amount, rounded half away from zero, so that a
    refund gives back exactly the share its charge took."""
    quotient, remainder = divmod(abs(amount_micro) * fraction_micro, MICRO)
    rounded = quotient + (1 if 2 * remainder >= MICRO else 0)
    return rounded if amount_micro >= 0 else -rounded


def format_money(micro: int) -> str:
    """An amount as people write it: up to six decimals, no trailing zeros."""
    text = f"{Decimal(micro) / MICRO:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
