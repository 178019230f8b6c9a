"""A return of several lines, each with its own reason: a line the policy refuses stays out
while the others go ahead, and the inspection passes or fails each line with its own amount
(issue 11, multi-item cases)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.policy import Policy, ReturnsPolicy
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    reach,
    reach_deadline,
    reach_kind,
    requests_for,
    signal,
    stop,
)

# Refunds wait for the inspection, so a failed line's own amount is what is paid for it.
NO_FAST_REFUND = Policy(returns=ReturnsPolicy(fast_refund=False))


def three_lines() -> dict[str, Any]:
    """A shirt too small (opened: a 10% fee), a lamp that doesn't work (the shop's fault) and
    a toothbrush returned for a change of mind (a non-returnable category)."""
    return {
        "reason": None,
        "items": [
            {
                "sku": "TEE-M",
                "name": "T-shirt",
                "category": "apparel",
                "unit_price": "990.00",
                "opened": True,
                "reason": "size_fit",
            },
            {
                "sku": "LAMP-1",
                "name": "Desk lamp",
                "category": "electronics",
                "unit_price": "2000.00",
                "reason": "defective",
            },
            {
                "sku": "BRUSH-1",
                "name": "Toothbrush",
                "category": "personal_hygiene",
                "unit_price": "300.00",
                "reason": "changed_mind",
            },
        ],
    }


async def test_a_three_line_return_with_one_ineligible_line_and_one_failed_line(
    stack: Stack,
) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND, **three_lines())
    decision = case.decision
    # The toothbrush stays out with its rule; the shirt and the lamp go ahead.
    assert decision.eligible
    assert case.request.reason == "defective"  # the headline: the line the shop is at fault for
    assert [(line.sku, line.eligible) for line in decision.lines] == [
        ("TEE-M", True),
        ("LAMP-1", True),
        ("BRUSH-1", False),
    ]
    [excluded] = decision.excluded
    assert excluded.rule is not None and excluded.rule.id == "non_returnable_category"
    assert decision.fired("lines_excluded")
    # The shop pays the way back (a defective lamp) and takes the fee on the opened shirt only.
    assert decision.shipping_payer == "seller"
    assert decision.restocking_fee.amount == Decimal("99.00")
    assert decision.refund_estimate.amount == Decimal("2891.00")
    assert [line.refund.amount for line in decision.lines] == [
        Decimal("891.00"),
        Decimal("2000.00"),
        Decimal("0.00"),
    ]

    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    text = mail_text(stack.mail, case, "case_received")
    assert "These items can't be returned under our policy" in text
    assert "Toothbrush (BRUSH-1): its category can't be returned for this reason" in text
    assert "T-shirt (TEE-M)" in text  # the request lists every line it was sent

    await act(handle, "approve")
    await reach(handle, "awaiting_shipment")
    # The carrier collects the two lines the case takes back, not the toothbrush.
    [pickup] = requests_for(stack.peers, "/pickups", case.case_id)
    assert isinstance(pickup.payload, dict)
    assert [parcel["sku"] for parcel in pickup.payload["parcels"]] == ["TEE-M", "LAMP-1"]

    await signal(handle, "carrier.picked_up")
    await reach_deadline(handle, "transit")
    await signal(handle, "warehouse.received")
    await reach_deadline(handle, "inspection")
    await signal(
        handle,
        "inspection.completed",
        lines=[
            {"sku": "TEE-M", "result": "pass"},
            {
                "sku": "LAMP-1",
                "result": "fail",
                "refund_amount": "500.00",
                "notes": "Water inside the base.",
            },
        ],
    )
    view = await reach_kind(handle, "refund_succeeded")
    # One refund: the shirt's 891 and what the lamp still pays back, 500.
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("1391.00", "inspection_lines")
    assert view.refund is not None and view.refund.amount == Decimal("1391.00")
    assert kinds(view).count("inspection_failed") == 1
    # The failed lamp goes back to the customer; the shirt stays with the shop.
    await reach_kind(handle, "shipment_booked")
    [back] = requests_for(stack.peers, "/shipments", case.case_id)
    assert isinstance(back.payload, dict)
    assert [item["sku"] for item in back.payload["items"]] == ["LAMP-1"]
    assert back.idempotency_key == f"{case.case_id}:ship_back"

    await mails_arrive(stack.mail, case, "inspection_failed", "refund_sent")
    failed = mail_text(stack.mail, case, "inspection_failed")
    assert "one by one. Not all of them passed our inspection" in failed
    assert "T-shirt (TEE-M): passed, TWD 891.00 back" in failed
    assert (
        "Desk lamp (LAMP-1): didn't pass (Water inside the base.), TWD 500.00 back, "
        "sent back to you"
    ) in failed
    assert "we'll pay you back TWD 1,391.00 in all" in failed
    assert mail_names(stack.mail, case)[:2] == ["case_received", "case_approved"]
    await stop(stack.client, handle)


async def test_an_agent_inspection_must_name_every_line_taken_back(stack: Stack) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND, **three_lines())
    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    await act(handle, "approve")
    await reach(handle, "awaiting_shipment")
    await signal(handle, "warehouse.received")
    await reach_deadline(handle, "inspection")
    # The toothbrush never came back, and the lamp is missing: refused, nothing paid.
    with pytest.raises(WorkflowUpdateFailedError):
        await act(
            handle,
            "record_inspection",
            lines=[{"sku": "TEE-M", "result": "pass"}, {"sku": "BRUSH-1", "result": "pass"}],
        )
    assert stack.peers.refunds_for(case.case_id) == []
    # Every line passed: the whole estimate, once.
    await act(
        handle,
        "record_inspection",
        lines=[{"sku": "TEE-M", "result": "pass"}, {"sku": "LAMP-1", "result": "pass"}],
    )
    view = await reach_kind(handle, "refund_succeeded")
    assert "inspection_passed" in kinds(view) and "inspection_failed" not in kinds(view)
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("2891.00", "inspection_passed")
    assert requests_for(stack.peers, "/shipments", case.case_id) == []
    await stop(stack.client, handle)
