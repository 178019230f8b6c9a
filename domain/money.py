"""Money's one rounding rule: half up to the currency's minor unit, on every path.

Amounts are `decimal.Decimal` end to end and travel as `domain.models.Money` (amount and
currency). Python's own default, and babel's, is half-even ("banker's rounding"); a customer
owed 0.125 expects 0.13, so every amount the service computes, charges, refunds or shows is
rounded here.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

ROUNDING = ROUND_HALF_UP


def minor_unit(minor_units: int) -> Decimal:
    """The smallest amount of a currency with this many decimals: 0.01 for 2, 1 for 0."""
    return Decimal(1).scaleb(-minor_units)


def round_money(amount: Decimal, minor_units: int) -> Decimal:
    """The amount rounded half up to the minor unit, e.g. 297 → 297.00, 0.125 → 0.13."""
    return amount.quantize(minor_unit(minor_units), rounding=ROUNDING)
