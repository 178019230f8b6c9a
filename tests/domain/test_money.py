"""One rounding rule for money: half up to the currency's minor unit, on every path."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.money import round_money
from domain.policy import Policy
from notifications.render import money
from tests.support.factory import case_input


@pytest.mark.parametrize(
    ("amount", "minor_units", "expected"),
    [
        ("0.125", 2, "0.13"),  # half-even would give 0.12
        ("0.135", 2, "0.14"),
        ("990.5", 0, "991"),  # half-even would give 990
        ("991.5", 0, "992"),
        ("297", 2, "297.00"),
        ("-0.125", 2, "-0.13"),
    ],
)
def test_half_up_to_the_minor_unit(amount: str, minor_units: int, expected: str) -> None:
    assert str(round_money(Decimal(amount), minor_units)) == expected


def test_messages_round_half_up_not_babels_half_even() -> None:
    # babel alone formats 0.125 as 0.12 (half-even); the customer is owed 0.13.
    assert money("0.125", "TWD", "en") == "TWD 0.13"
    assert money("2.5", "JPY", "zh-CN") == money("3", "JPY", "zh-CN")


def test_restocking_fee_rounds_half_up() -> None:
    # Whole-dollar prices: the item's 12.50 rounds to 13 (half-even: 12), less the 10% fee
    # of 1.25 → 1, so 12 is refunded where half-even would refund 11.
    policy = Policy.model_validate({"currency_minor_units": 0})
    item = {"sku": "A", "name": "A", "quantity": 1, "unit_price": "12.50", "opened": True}
    case = case_input(now=datetime.now(UTC), policy=policy, items=[item], reason="size_fit")
    assert case.decision.restocking_fee.amount == Decimal("1")
    assert case.decision.refund_estimate.amount == Decimal("12")
