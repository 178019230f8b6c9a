"""Issue 11, multi-item cases: each line's reason, the lines the policy leaves out, each
line's terms, and an inspection settled line by line."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from domain.actions import InspectionData
from domain.inspection import mismatch, settle
from domain.models import CaseRequest, CaseView, Decision
from domain.opening import initial_view
from domain.policy import Policy
from domain.rules import adjusted, evaluate, excepted

DELIVERED = "2026-11-20T15:30:00+00:00"  # 23:30 in Taipei
NOW = datetime.fromisoformat("2026-11-23T10:00:00+08:00")  # 3 days after delivery


def line(sku: str, price: str, *, reason: str | None = None, **more: Any) -> dict[str, Any]:
    return {"sku": sku, "unit_price": price, "reason": reason, **more}


def request(*items: dict[str, Any], reason: str | None = None, kind: str = "return") -> CaseRequest:
    return CaseRequest.model_validate(
        {
            "type": kind,
            "order": {
                "id": "SO-1",
                "placed_at": "2026-11-10T10:00:00+08:00",
                "delivered_at": DELIVERED,
                "currency": "TWD",
            },
            "customer": {"id": "C-1"},
            "items": list(items),
            "reason": reason,
        }
    )


def decide(req: CaseRequest, now: datetime = NOW, policy: Policy | None = None) -> Decision:
    return evaluate(req, policy=policy or Policy(), now=now, prior_cases=0)


def rule(decision: Decision, rule_id: str) -> str:
    return next(hit.message for hit in decision.rules if hit.id == rule_id)


def test_the_case_reason_is_the_lines_when_it_is_left_out() -> None:
    fault_last = request(line("A", "100", reason="size_fit"), line("B", "100", reason="defective"))
    assert fault_last.reason == "defective"  # the shop's fault decides who pays the way back
    assert fault_last.seller_fault and not fault_last.all_seller_fault
    both_customer = request(
        line("A", "100", reason="size_fit"), line("B", "100", reason="changed_mind")
    )
    assert both_customer.reason == "size_fit" and not both_customer.seller_fault
    # A case reason given stays, and lines without their own take it.
    given = request(line("A", "100"), line("B", "100", reason="defective"), reason="size_fit")
    assert given.reason == "size_fit"
    assert [given.line_reason(item) for item in given.items] == ["size_fit", "defective"]
    assert given.fault_reason == "defective"


def test_each_line_is_held_to_the_window_of_its_own_reason() -> None:
    # Day 10: past the 7-day window for a change of mind, inside the 30-day defect window.
    late = NOW + timedelta(days=7)
    mixed = request(
        line("SHIRT", "990", reason="size_fit"), line("LAMP", "2000", reason="defective")
    )
    decision = decide(mixed, late)
    assert decision.eligible
    assert [(terms.sku, terms.eligible) for terms in decision.lines] == [
        ("SHIRT", False),
        ("LAMP", True),
    ]
    assert decision.excluded[0].rule is not None
    assert decision.excluded[0].rule.id == "outside_return_window"
    assert decision.refund_estimate.amount == Decimal("2000.00")
    # Only the lamp comes back, at the shop's cost.
    assert decision.shipping_payer == "seller"
    assert "1 of 2 lines can't be returned" in rule(decision, "lines_excluded")
    # Every line past its window: the case is refused, each line with its rule.
    refused = decide(mixed, NOW + timedelta(days=40))
    assert not refused.eligible
    assert [terms.eligible for terms in refused.lines] == [False, False]
    assert all(terms.rule is not None for terms in refused.lines)


def test_the_fee_is_taken_only_on_opened_lines_returned_for_a_customer_reason() -> None:
    req = request(
        line("SHIRT", "1000", reason="size_fit", opened=True),
        line("LAMP", "2000", reason="defective", opened=True),
    )
    decision = decide(req)
    assert decision.restocking_fee.amount == Decimal("100.00")  # 10% of the shirt alone
    assert rule(decision, "restocking_fee").endswith("(SHIRT).")
    assert [(t.refund.amount, t.restocking_fee.amount) for t in decision.lines] == [
        (Decimal("900.00"), Decimal("100.00")),
        (Decimal("2000.00"), Decimal("0.00")),
    ]
    assert decision.refund_estimate.amount == Decimal("2900.00")
    # An opened line for a customer reason needs an agent, evidence or not.
    assert decision.review == "manual"


def test_returnless_only_when_the_shop_is_at_fault_for_every_line() -> None:
    cheap_fault = request(
        line("A", "100", reason="defective"), line("B", "100", reason="wrong_item")
    )
    assert decide(cheap_fault).returnless
    one_customer = request(
        line("A", "100", reason="defective"), line("B", "100", reason="size_fit")
    )
    assert not decide(one_customer).returnless


def test_an_exception_takes_every_line_and_a_changed_fee_is_shared_by_the_lines() -> None:
    late = NOW + timedelta(days=40)
    req = request(
        line("SHIRT", "1000", reason="size_fit", opened=True),
        line("CAP", "500", reason="size_fit", opened=True),
        line("SOCKS", "300", reason="size_fit"),
    )
    assert not decide(req, late).eligible
    opened_at = late
    decision = excepted(req, policy=Policy(), opened_at=opened_at, by="sam", reason="VIP")
    assert [terms.eligible for terms in decision.lines] == [True, True, True]
    assert decision.restocking_fee.amount == Decimal("150.00")
    # The supervisor charges 60 instead: shared 2:1 like the fees were, the rest unchanged.
    changed = adjusted(decision, req, policy=Policy(), fee=Decimal("60"), payer=None, by="sam")
    assert [terms.restocking_fee.amount for terms in changed.lines] == [
        Decimal("40.00"),
        Decimal("20.00"),
        Decimal("0.00"),
    ]
    assert sum(terms.refund.amount for terms in changed.lines) == changed.refund_estimate.amount
    # A fee above a line's own total spills over to the others, never below zero.
    heavy = adjusted(decision, req, policy=Policy(), fee=Decimal("1700"), payer=None, by="sam")
    assert [terms.restocking_fee.amount for terms in heavy.lines] == [
        Decimal("1000.00"),
        Decimal("500.00"),
        Decimal("200.00"),
    ]
    assert all(terms.refund.amount >= 0 for terms in heavy.lines)
    # Waived: every line refunds its whole total.
    waived = adjusted(decision, req, policy=Policy(), fee=Decimal("0"), payer=None, by="sam")
    assert [terms.refund.amount for terms in waived.lines] == [
        Decimal("1000.00"),
        Decimal("500.00"),
        Decimal("300.00"),
    ]


def _case(req: CaseRequest) -> CaseView:
    return initial_view(
        case_id="R-1",
        request=req,
        decision=decide(req),
        queue="customer_service",
        priority="normal",  # type: ignore[arg-type]
        status_url="http://x/status/t",
        opened_at=NOW,
    )


THREE = request(
    line("SHIRT", "1000", reason="size_fit", opened=True),
    line("LAMP", "2000", reason="defective"),
    line("BRUSH", "300", reason="changed_mind", category="personal_hygiene"),
)


def test_an_inspection_settles_each_line_with_its_own_amount() -> None:
    case = _case(THREE)
    assert [item.sku for item in case.returned_items] == ["SHIRT", "LAMP"]
    inspection = InspectionData.model_validate(
        {
            "lines": [
                {"sku": "SHIRT", "result": "pass"},
                {"sku": "LAMP", "result": "fail", "refund_amount": "5000", "keep_item": True},
            ]
        }
    )
    assert inspection.result == "fail"
    assert mismatch(case, inspection) is None
    settled = settle(case, inspection)
    # The shirt's refund after its fee, and the lamp's amount capped at its own refund.
    assert [(line.sku, line.passed, line.refund) for line in settled.lines] == [
        ("SHIRT", True, Decimal("900.00")),
        ("LAMP", False, Decimal("2000.00")),
    ]
    assert settled.amount == Decimal("2900.00") and not settled.passed
    assert settled.sent_back(case.items) == []  # the shop keeps the lamp


def test_an_inspection_must_name_the_lines_taken_back_and_only_them() -> None:
    case = _case(THREE)

    def lines(*skus: str) -> InspectionData:
        return InspectionData.model_validate(
            {"lines": [{"sku": sku, "result": "pass"} for sku in skus]}
        )

    assert mismatch(case, lines("SHIRT", "LAMP")) is None
    assert mismatch(case, lines("SHIRT", "LAMP", "BRUSH")) == (
        "not lines this case takes back: BRUSH"
    )
    assert mismatch(case, lines("SHIRT")) == ("every line taken back needs a result: LAMP missing")
    assert mismatch(case, InspectionData(result="pass")) is None
    with pytest.raises(ValidationError, match="each line once"):
        lines("SHIRT", "SHIRT")
