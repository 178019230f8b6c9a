"""Complaint decisions at open and for a child case, and case IDs and tokens (pure)."""

from __future__ import annotations

import random
import re
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from domain.complaints import child_decision, child_request, opening_priority
from domain.models import CASE_ID_PREFIX, CaseRequest, CaseType, Priority, Reason
from domain.opening import ID_ALPHABET, details, new_case_id, new_token, status_url, summary
from domain.policy import Policy
from domain.rules import evaluate
from tests.support.factory import request_body

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def complaint(**overrides: Any) -> CaseRequest:
    fields: dict[str, Any] = {
        "type": "complaint",
        "reason": None,
        "complaint": {"category": "product_quality"},
        **overrides,
    }
    return CaseRequest.model_validate(request_body(now=NOW, **fields))


@pytest.mark.parametrize(
    ("fields", "priority"),
    [
        ({}, Priority.NORMAL),
        ({"severity": "high"}, Priority.HIGH),
        ({"negative_review": True}, Priority.HIGH),
        ({"severity": "high", "negative_review": True}, Priority.HIGH),
    ],
)
def test_priority_at_open(fields: dict[str, Any], priority: Priority) -> None:
    request = complaint(complaint={"category": "logistics", **fields})
    assert opening_priority(request) == priority


def test_other_case_types_open_at_normal_priority() -> None:
    assert opening_priority(CaseRequest.model_validate(request_body(now=NOW))) == Priority.NORMAL


@pytest.mark.parametrize(
    ("category", "reason"),
    [
        ("product_quality", Reason.DEFECTIVE),
        ("logistics", Reason.DAMAGED_IN_TRANSIT),
        ("order_processing", Reason.WRONG_ITEM),
        ("price", Reason.NOT_AS_DESCRIBED),
    ],
)
def test_child_request_takes_a_seller_fault_reason(category: str, reason: Reason) -> None:
    child = child_request(complaint(complaint={"category": category}), CaseType.RETURN)
    assert (child.type, child.reason, child.complaint) == (CaseType.RETURN, reason, None)
    assert child.exchange_for == []


def test_child_request_keeps_the_complaints_reason_and_exchanges_like_for_like() -> None:
    request = complaint(reason="wrong_item")
    child = child_request(request, CaseType.EXCHANGE)
    assert child.reason == Reason.WRONG_ITEM
    assert [(x.sku, x.quantity, x.unit_price) for x in child.exchange_for] == [
        ("TEE-M-BLK", 1, Decimal("990.00"))
    ]
    # The complaint's request is left as it was.
    assert request.type == CaseType.COMPLAINT and request.exchange_for == []


def test_child_decision_overrides_the_policy_on_the_agents_terms() -> None:
    # Opened and customer reason, far outside the window: the policy alone would refuse it.
    old = {
        "placed_at": (NOW - timedelta(days=60)).isoformat(),
        "delivered_at": (NOW - timedelta(days=50)).isoformat(),
    }
    request = child_request(
        complaint(reason="changed_mind", order=old, items=[_opened_tee()]), CaseType.RETURN
    )
    policy = Policy()
    assert not evaluate(request, policy=policy, now=NOW, prior_cases=0).eligible
    decision = child_decision(
        request, policy=policy, now=NOW, high_risk=False, parent_case_id="C-1234ABCD"
    )
    assert decision.eligible and decision.review == "auto"
    assert decision.shipping_payer == "seller" and not decision.returnless
    assert decision.refund_estimate.amount == Decimal("990.00")
    assert decision.restocking_fee.amount == 0
    assert decision.fast_refund
    ids = [rule.id for rule in decision.rules]
    assert ids[:2] == ["complaint_resolution", "seller_pays_shipping"]
    assert "C-1234ABCD" in decision.rules[0].message
    for refused in ("outside_return_window", "customer_pays_shipping", "restocking_fee"):
        assert refused not in ids


def test_child_decision_keeps_the_customers_risk() -> None:
    request = child_request(complaint(), CaseType.RETURN)
    decision = child_decision(
        request, policy=Policy(), now=NOW, high_risk=True, parent_case_id="C-1234ABCD"
    )
    assert decision.high_risk and not decision.fast_refund
    assert "high_risk" in [rule.id for rule in decision.rules]


def test_child_decisions_for_an_exchange_and_a_repair_refund_nothing() -> None:
    for case_type in (CaseType.EXCHANGE, CaseType.REPAIR):
        request = child_request(complaint(), case_type)
        decision = child_decision(
            request, policy=Policy(), now=NOW, high_risk=False, parent_case_id="C-1234ABCD"
        )
        assert decision.refund_estimate.amount == 0 and not decision.fast_refund
        assert decision.shipping_payer == "seller"
    assert decision.in_warranty  # a repair a complaint agreed to is free


def _opened_tee() -> dict[str, Any]:
    return {"sku": "TEE-M-BLK", "name": "T-shirt", "unit_price": "990.00", "opened": True}


@pytest.mark.parametrize("case_type", list(CaseType))
def test_case_ids_are_short_typable_and_prefixed(case_type: CaseType) -> None:
    case_id = new_case_id(case_type, secrets.SystemRandom())
    assert re.fullmatch(rf"{CASE_ID_PREFIX[case_type]}-[{ID_ALPHABET}]{{8}}", case_id)
    assert not set(case_id[2:]) & set("ILOU")


def test_a_seeded_source_gives_the_same_id_and_token_again() -> None:
    # What a workflow replay relies on: workflow.random() is seeded the same way each time.
    first, again = random.Random(7), random.Random(7)
    assert new_case_id(CaseType.RETURN, first) == new_case_id(CaseType.RETURN, again)
    assert new_token(first) == new_token(again)
    token = new_token(secrets.SystemRandom())
    assert len(token) == 32 and re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert status_url("http://shop.example/", token) == f"http://shop.example/status/{token}"


def test_summary_and_details_name_the_case_and_its_parent() -> None:
    request = complaint()
    decision = evaluate(request, policy=Policy(), now=NOW, prior_cases=0)
    assert summary("C-1234ABCD", request, decision) == (
        f"complaint C-1234ABCD — order {request.order.id}, customer {request.customer.id}, TWD 0.00"
    )
    text = details("R-5678EFGH", request, decision, parent_case_id="C-1234ABCD")
    assert "`product_quality`" in text and "`C-1234ABCD`" in text
