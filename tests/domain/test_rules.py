"""The rules of DESIGN 5.2, each at its boundary."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.models import CaseRequest, Decision
from domain.policy import Policy
from domain.rules import add_months, evaluate

POLICY = Policy()
DELIVERED = datetime.fromisoformat("2026-11-12T15:00:00+08:00")


def day(n: int) -> datetime:
    """Noon shop time, n calendar days after delivery."""
    return datetime.fromisoformat("2026-11-12T12:00:00+08:00") + timedelta(days=n)


@dataclass
class Scenario:
    reason: str | None = "size_fit"
    type: str = "return"
    price: str = "990.00"
    quantity: int = 1
    category: str = "apparel"
    opened: bool = False
    warranty_months: int = 0
    evidence: bool = False
    delivered_at: str | None = DELIVERED.isoformat()
    shipped_at: str | None = "2026-11-11T09:00:00+08:00"
    now: datetime = field(default_factory=lambda: day(3))
    prior_cases: int = 0
    exchange_for: list[dict[str, Any]] = field(default_factory=list)

    def request(self) -> CaseRequest:
        return CaseRequest.model_validate(
            {
                "type": self.type,
                "order": {
                    "id": "SO-1001",
                    "placed_at": "2026-11-10T10:00:00+08:00",
                    "shipped_at": self.shipped_at,
                    "delivered_at": self.delivered_at,
                    "currency": "TWD",
                },
                "customer": {"id": "C-42"},
                "items": [
                    {
                        "sku": "SKU-1",
                        "category": self.category,
                        "quantity": self.quantity,
                        "unit_price": self.price,
                        "opened": self.opened,
                        "warranty_months": self.warranty_months,
                    }
                ],
                "reason": self.reason,
                "evidence": ["https://example.com/photo.jpg"] if self.evidence else [],
                "exchange_for": self.exchange_for,
            }
        )

    def evaluate(self) -> Decision:
        return evaluate(self.request(), policy=POLICY, now=self.now, prior_cases=self.prior_cases)


@dataclass
class Expect:
    rules: list[str]
    eligible: bool = True
    review: str = "auto"
    shipping_payer: str | None = "customer"
    refund: str = "990.00"
    fee: str = "0.00"
    high_risk: bool = False
    fast_refund: bool = True
    returnless: bool = False
    in_warranty: bool = False
    alternatives: list[str] = field(default_factory=list)


def rejected(*rules: str, alternatives: list[str] | None = None, **kw: Any) -> Expect:
    return Expect(
        rules=list(rules),
        eligible=False,
        review="none",
        shipping_payer=None,
        refund="0.00",
        fast_refund=False,
        alternatives=alternatives or [],
        **kw,
    )


CUSTOMER_AUTO = ["in_window", "customer_pays_shipping", "auto_approve", "fast_refund"]
SELLER_AUTO = ["in_window", "seller_pays_shipping", "auto_approve", "fast_refund"]

CASES = [
    # Rule 2: the window, by reason, counted in calendar days.
    pytest.param(Scenario(now=day(7)), Expect(CUSTOMER_AUTO), id="customer-reason-day-7"),
    pytest.param(
        Scenario(now=day(8)), rejected("outside_return_window"), id="customer-reason-day-8"
    ),
    pytest.param(
        Scenario(reason="defective", evidence=True, now=day(15)),
        Expect(SELLER_AUTO, shipping_payer="seller"),
        id="seller-fault-day-15",
    ),
    pytest.param(
        Scenario(reason="defective", evidence=True, now=day(16)),
        rejected("outside_return_window"),
        id="seller-fault-day-16-no-warranty",
    ),
    pytest.param(
        Scenario(reason="defective", evidence=True, now=day(16), warranty_months=12),
        rejected(
            "outside_return_window",
            "warranty_repair_suggested",
            alternatives=["repair"],
            in_warranty=True,
        ),
        id="seller-fault-day-16-warranty-repair-suggested",
    ),
    pytest.param(
        Scenario(now=day(8), warranty_months=12),
        rejected("outside_return_window", in_warranty=True),
        id="customer-reason-day-8-in-warranty-no-repair",
    ),
    # Delivered 23:30 local (15:30 UTC); 00:10 local seven days later is still 16:10 UTC the
    # day before, so UTC dates would say 6 days: the shop's dates say 7.
    pytest.param(
        Scenario(
            delivered_at="2026-11-12T15:30:00+00:00",
            now=datetime.fromisoformat("2026-11-18T16:10:00+00:00"),
        ),
        Expect(CUSTOMER_AUTO),
        id="timezone-day-7-in-shop-time",
    ),
    # 18:00 local on the 12th; 00:30 local on the 20th is the 19th in UTC: 8 days, not 7.
    pytest.param(
        Scenario(
            delivered_at="2026-11-12T10:00:00+00:00",
            now=datetime.fromisoformat("2026-11-19T16:30:00+00:00"),
        ),
        rejected("outside_return_window"),
        id="timezone-day-8-in-shop-time",
    ),
    # Rule 1.
    pytest.param(
        Scenario(delivered_at=None),
        rejected("not_delivered", alternatives=["refund"]),
        id="not-delivered",
    ),
    # Rule 3.
    pytest.param(
        Scenario(category="personal_hygiene"),
        rejected("in_window", "non_returnable_category"),
        id="non-returnable-customer-reason",
    ),
    pytest.param(
        Scenario(category="personal_hygiene", reason="wrong_item", evidence=True),
        Expect(SELLER_AUTO, shipping_payer="seller"),
        id="non-returnable-seller-fault-overrides",
    ),
    # Rules 5 and 7: an opened item costs a fee and an agent's look.
    pytest.param(
        Scenario(opened=True),
        Expect(
            [
                "in_window",
                "customer_pays_shipping",
                "restocking_fee",
                "manual_review",
                "fast_refund",
            ],
            review="manual",
            refund="891.00",
            fee="99.00",
        ),
        id="opened-item-restocking-fee",
    ),
    pytest.param(
        Scenario(opened=True, price="123.45"),
        Expect(
            [
                "in_window",
                "customer_pays_shipping",
                "restocking_fee",
                "manual_review",
                "fast_refund",
            ],
            review="manual",
            refund="111.10",
            fee="12.35",  # 12.345 rounds half up, not to even
        ),
        id="restocking-fee-rounds-half-up",
    ),
    pytest.param(
        Scenario(opened=True, reason="defective", evidence=True),
        Expect(SELLER_AUTO, shipping_payer="seller"),
        id="opened-item-seller-fault-no-fee",
    ),
    # Rule 7: the auto-approve value limit, and evidence for a seller fault.
    pytest.param(
        Scenario(price="3000.00", reason="changed_mind"),
        Expect(CUSTOMER_AUTO, refund="3000.00"),
        id="auto-approve-at-3000",
    ),
    pytest.param(
        Scenario(price="3000.01", reason="changed_mind"),
        Expect(
            ["in_window", "customer_pays_shipping", "manual_review", "fast_refund"],
            review="manual",
            refund="3000.01",
        ),
        id="manual-review-above-3000",
    ),
    pytest.param(
        Scenario(price="1500.00", quantity=2, reason="changed_mind"),
        Expect(CUSTOMER_AUTO, refund="3000.00"),
        id="auto-approve-limit-counts-quantity",
    ),
    pytest.param(
        Scenario(reason="defective", evidence=False),
        Expect(
            ["in_window", "seller_pays_shipping", "manual_review", "fast_refund"],
            review="manual",
            shipping_payer="seller",
        ),
        id="seller-fault-without-evidence-manual",
    ),
    # Rule 8: returnless at its value limit; it skips the return shipment and the review.
    pytest.param(
        Scenario(price="200.00", reason="damaged_in_transit"),
        Expect(
            ["in_window", "auto_approve", "returnless"],
            shipping_payer=None,
            refund="200.00",
            returnless=True,
            fast_refund=False,
        ),
        id="returnless-at-200",
    ),
    pytest.param(
        Scenario(price="200.01", reason="damaged_in_transit", evidence=True),
        Expect(SELLER_AUTO, shipping_payer="seller", refund="200.01"),
        id="no-returnless-above-200",
    ),
    pytest.param(
        Scenario(price="150.00", reason="size_fit"),
        Expect(CUSTOMER_AUTO, refund="150.00"),
        id="no-returnless-for-customer-reason",
    ),
    # Rule 6: the serial returner threshold.
    pytest.param(Scenario(prior_cases=2), Expect(CUSTOMER_AUTO), id="two-prior-cases"),
    pytest.param(
        Scenario(prior_cases=3),
        Expect(
            ["in_window", "customer_pays_shipping", "high_risk", "manual_review"],
            review="manual",
            high_risk=True,
            fast_refund=False,
        ),
        id="three-prior-cases-high-risk",
    ),
    pytest.param(
        Scenario(prior_cases=3, price="150.00", reason="defective", evidence=True),
        Expect(
            ["in_window", "seller_pays_shipping", "high_risk", "manual_review"],
            review="manual",
            shipping_payer="seller",
            refund="150.00",
            high_risk=True,
            fast_refund=False,
        ),
        id="high-risk-no-returnless",
    ),
    # Exchanges: same eligibility; the refund is the price difference, never early.
    pytest.param(
        Scenario(
            type="exchange",
            exchange_for=[{"sku": "SKU-2", "quantity": 1, "unit_price": "790.00"}],
        ),
        Expect(
            ["in_window", "customer_pays_shipping", "auto_approve"],
            refund="200.00",
            fast_refund=False,
        ),
        id="exchange-cheaper-replacement",
    ),
    pytest.param(
        Scenario(type="exchange"),
        Expect(
            ["in_window", "customer_pays_shipping", "auto_approve"],
            refund="0.00",
            fast_refund=False,
        ),
        id="exchange-like-for-like",
    ),
    pytest.param(
        Scenario(type="exchange", now=day(8)),
        rejected("outside_return_window"),
        id="exchange-day-8",
    ),
    # Refund only (DESIGN 3.4).
    pytest.param(
        Scenario(type="refund", reason="changed_mind", delivered_at=None, shipped_at=None),
        Expect(["not_delivered", "auto_approve"], shipping_payer=None, fast_refund=False),
        id="refund-not-shipped",
    ),
    pytest.param(
        Scenario(type="refund", reason="changed_mind", delivered_at=None),
        Expect(["not_delivered", "auto_approve"], shipping_payer=None, fast_refund=False),
        id="refund-shipped-not-delivered",
    ),
    pytest.param(
        Scenario(type="refund", reason="changed_mind"),
        rejected("use_return", alternatives=["return"]),
        id="refund-delivered-customer-reason",
    ),
    pytest.param(
        Scenario(type="refund", reason="not_as_described", evidence=True),
        Expect(
            ["in_window", "manual_review"], review="manual", shipping_payer=None, fast_refund=False
        ),
        id="refund-delivered-seller-fault",
    ),
    pytest.param(
        Scenario(type="refund", reason="not_as_described", price="200.00"),
        Expect(
            ["in_window", "auto_approve", "returnless"],
            shipping_payer=None,
            refund="200.00",
            returnless=True,
            fast_refund=False,
        ),
        id="refund-delivered-seller-fault-returnless",
    ),
    # Repair (DESIGN 3.5): the warranty decides who pays.
    pytest.param(
        Scenario(type="repair", reason="defective", evidence=True, warranty_months=1, now=day(30)),
        Expect(
            ["in_warranty", "seller_pays_shipping", "auto_approve"],
            shipping_payer="seller",
            refund="0.00",
            fast_refund=False,
            in_warranty=True,
        ),
        id="repair-last-day-of-warranty",
    ),
    pytest.param(
        Scenario(type="repair", reason="defective", evidence=True, warranty_months=1, now=day(31)),
        Expect(
            ["out_of_warranty", "customer_pays_shipping", "auto_approve"],
            refund="0.00",
            fast_refund=False,
        ),
        id="repair-day-after-warranty",
    ),
    pytest.param(
        Scenario(
            type="repair", reason="defective", warranty_months=12, delivered_at=None, now=day(300)
        ),
        Expect(
            ["in_warranty", "seller_pays_shipping", "manual_review"],
            review="manual",
            shipping_payer="seller",
            refund="0.00",
            fast_refund=False,
            in_warranty=True,
        ),
        id="repair-undelivered-warranty-from-placed-at",
    ),
    # Complaints always go to an agent.
    pytest.param(
        Scenario(type="complaint", reason=None),
        Expect(
            ["manual_review"],
            review="manual",
            shipping_payer=None,
            refund="0.00",
            fast_refund=False,
        ),
        id="complaint",
    ),
]


@pytest.mark.parametrize(("scenario", "expect"), CASES)
def test_rules(scenario: Scenario, expect: Expect) -> None:
    decision = scenario.evaluate()

    assert [rule.id for rule in decision.rules] == expect.rules
    assert decision.eligible is expect.eligible
    assert decision.review == expect.review
    assert decision.shipping_payer == expect.shipping_payer
    assert decision.refund_estimate.amount == Decimal(expect.refund)
    assert decision.refund_estimate.currency == "TWD"
    assert decision.restocking_fee.amount == Decimal(expect.fee)
    assert decision.high_risk is expect.high_risk
    assert decision.fast_refund is expect.fast_refund
    assert decision.returnless is expect.returnless
    assert decision.in_warranty is expect.in_warranty
    assert decision.alternatives == expect.alternatives
    assert all(rule.message.endswith(".") and len(rule.message) > 20 for rule in decision.rules)


def test_window_message_reads_as_the_design_shows() -> None:
    decision = Scenario(now=day(3)).evaluate()
    assert decision.rules[0].message == "Delivered 3 days ago; returns are accepted for 7 days."


def test_seller_fault_window_message_names_the_reason_and_window() -> None:
    message = Scenario(reason="defective", evidence=True, now=day(16)).evaluate().rules[0].message
    assert message == (
        "Delivered 16 days ago; returns for a defective item are accepted for only 15 days."
    )


def test_policy_values_are_used() -> None:
    generous = POLICY.model_copy(
        update={
            "returns": POLICY.returns.model_copy(
                update={"window_days": 30, "restocking_fee_percent": Decimal("12.5")}
            )
        }
    )
    request = Scenario(opened=True, price="100.00").request()
    decision = evaluate(request, policy=generous, now=day(30), prior_cases=0)
    assert decision.eligible
    assert decision.restocking_fee.amount == Decimal("12.50")
    assert decision.rules[0].message == "Delivered 30 days ago; returns are accepted for 30 days."
    assert "12.5% restocking fee of TWD 12.50" in decision.rules[2].message


def test_zero_minor_units_rounds_to_whole_amounts() -> None:
    whole = POLICY.model_copy(update={"currency_minor_units": 0})
    request = Scenario(opened=True, price="995.00").request()
    decision = evaluate(request, policy=whole, now=day(1), prior_cases=0)
    assert decision.restocking_fee.amount == Decimal("100")  # 99.5 rounds half up
    assert decision.refund_estimate.amount == Decimal("895")


def test_reason_required_except_for_complaints() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        Scenario(reason=None).evaluate()


def test_now_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        evaluate(Scenario().request(), policy=POLICY, now=datetime(2026, 11, 15), prior_cases=0)


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        pytest.param(date(2026, 1, 31), 1, date(2026, 2, 28), id="clamp-to-february"),
        pytest.param(date(2028, 1, 31), 1, date(2028, 2, 29), id="leap-year"),
        pytest.param(date(2026, 11, 12), 12, date(2027, 11, 12), id="one-year"),
        pytest.param(date(2026, 12, 15), 1, date(2027, 1, 15), id="year-rollover"),
        pytest.param(date(2026, 8, 31), 13, date(2027, 9, 30), id="thirteen-months-clamped"),
        pytest.param(date(2026, 5, 5), 0, date(2026, 5, 5), id="zero"),
    ],
)
def test_add_months(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected
