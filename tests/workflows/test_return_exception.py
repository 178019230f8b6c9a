"""A supervisor's word over the policy's: exceptions to a rejection, and changed terms (issue 11).

A rejected return or exchange waits for a supervisor's `approve_exception` until its
`exception_window` closes (tests/workflows/test_return_review.py lets it close); an approval
may change the restocking fee and who pays return shipping.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.conftest import Stack, until
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    entry,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    reach,
    reach_deadline,
    send_back,
    signal,
    stop,
)

# OPENED_TEE: opened, for a customer reason; an agent reviews it, and a 10% fee applies (99).
from tests.workflows.test_return_review import OPENED_TEE
from workflows.case import CaseInput

REASON = "Loyal customer; the carrier delayed the delivery by a week."


async def test_a_supervisor_approves_a_return_the_policy_rejected(stack: Stack) -> None:
    now = await stack.now()
    delivered = (now - timedelta(days=10)).isoformat()
    case = case_input(now=now, reason="changed_mind", order={"delivered_at": delivered})
    assert not case.decision.eligible
    handle = await stack.start(case)
    view = await reach(handle, "rejected")
    assert view.agent_actions == ["approve_exception"]
    assert view.deadlines == []  # nobody owes anything while the exception window is open
    await mails_arrive(stack.mail, case, "case_rejected")

    view = await act(handle, "approve_exception", actor="sup-sue", reason=REASON)
    assert view.status == "awaiting_shipment"
    assert view.decision.eligible
    assert [rule.id for rule in view.decision.rules] == [
        "agent_exception",
        "customer_pays_shipping",
    ]
    exception = view.decision.rules[0].message
    assert "sup-sue" in exception and REASON in exception
    # An exception takes the careful path: refunded after inspection, never at the first scan.
    assert not view.decision.fast_refund and not view.decision.returnless
    assert view.decision.refund_estimate.amount == Decimal("990.00")
    approved = entry(view, "exception_approved")
    assert (approved.actor, approved.message) == ("sup-sue", exception)
    assert kinds(view)[:4] == ["opened", "rejected", "exception_approved", "awaiting_shipment"]
    await mails_arrive(stack.mail, case, "case_approved")
    assert mail_names(stack.mail, case) == ["case_received", "case_rejected", "case_approved"]
    text = mail_text(stack.mail, case, "case_approved")
    assert "made an exception to our return policy" in text
    assert "TWD 990" in text or "990.00" in text

    await send_back(handle)
    assert stack.peers.refunds_for(case.case_id) == []  # no fast refund at the scan
    await signal(handle, "inspection.completed", result="pass", grade="A")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    await until(lambda: len(stack.peers.refunds_for(case.case_id)) == 1)
    [refund] = stack.peers.refunds_for(case.case_id)
    assert Decimal(refund["amount"]) == Decimal("990.00")
    await mails_arrive(stack.mail, case, "refund_sent")
    assert "TWD 990.00" in mail_text(stack.mail, case, "refund_sent")
    await stop(stack.client, handle)


async def test_an_exception_reopens_an_agents_rejection_with_the_fee_waived(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    handle = await stack.start(case)
    await reach(handle, "awaiting_review")
    await act(handle, "reject", actor="agent-bo", reason="Worn.")
    await reach(handle, "rejected")
    view = await act(
        handle,
        "approve_exception",
        actor="sup-sue",
        reason="Worn once to a wedding, tags still on.",
        restocking_fee="0",
        shipping_payer="seller",
    )
    # The shop now pays return shipping: it books the pickup instead of asking for tracking.
    await reach_deadline(handle, "carrier_pickup")
    view = await reach(handle, "awaiting_shipment")
    decision = view.decision
    assert [rule.id for rule in decision.rules] == ["agent_exception", "agent_adjustment"]
    assert "restocking fee TWD 99.00 -> TWD 0.00 (waived)" in decision.rules[1].message
    assert decision.restocking_fee.amount == 0
    assert decision.refund_estimate.amount == Decimal("990.00")
    assert decision.shipping_payer == "seller"
    assert len(stack.peers.pickups_for(case.case_id)) == 1
    assert kinds(view).count("rejected") == 1
    # The customer hears the new terms: the exception, the shop's pickup, the refund in full.
    await mails_arrive(stack.mail, case, "case_rejected", "case_approved")
    assert mail_names(stack.mail, case) == ["case_received", "case_rejected", "case_approved"]
    text = mail_text(stack.mail, case, "case_approved")
    assert "made an exception to our return policy" in text
    assert "booked a courier to pick the parcel up at your address, free of charge" in text
    assert "Your refund: TWD 990.00," in text and "restocking fee" not in text

    # And the refund pays it: the waived fee is not taken off.
    await refunded_in_full(stack, handle, case)


async def refunded_in_full(stack: Stack, handle: Any, case: CaseInput) -> None:
    """Send the item back, pass it, and see one refund of the full 990 and its mail."""
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass", grade="A")
    await reach_deadline(handle, "follow_up")
    await until(lambda: len(stack.peers.refunds_for(case.case_id)) == 1)
    [refund] = stack.peers.refunds_for(case.case_id)
    assert Decimal(refund["amount"]) == Decimal("990.00")
    await mails_arrive(stack.mail, case, "refund_sent")
    assert "TWD 990.00" in mail_text(stack.mail, case, "refund_sent")
    await stop(stack.client, handle)


async def test_a_supervisor_waives_the_fee_at_approval(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    assert case.decision.restocking_fee.amount == Decimal("99.00")
    handle = await stack.start(case)
    await reach(handle, "awaiting_review")
    view = await act(handle, "approve", actor="sup-sue", restocking_fee="0", notes="Goodwill.")
    changed = entry(view, "terms_changed")
    assert changed.actor == "sup-sue"
    assert "(waived)" in changed.message
    assert kinds(view).index("terms_changed") < kinds(view).index("approved")
    assert view.decision.restocking_fee.amount == 0
    assert view.decision.refund_estimate.amount == Decimal("990.00")
    assert "restocking_fee" not in [rule.id for rule in view.decision.rules]
    await mails_arrive(stack.mail, case, "case_approved")
    text = mail_text(stack.mail, case, "case_approved")
    assert "restocking fee" not in text and "990" in text

    await refunded_in_full(stack, handle, case)


@pytest.mark.parametrize(
    ("action", "fields", "why"),
    [
        # Only a rejected case takes an exception.
        ("approve_exception", {"reason": "Because."}, "can't take 'approve_exception'"),
        # A fee can't exceed what the items cost.
        ("approve", {"restocking_fee": "1000"}, "more than the items'"),
    ],
)
async def test_terms_a_case_cant_take_are_refused_before_anything_is_written(
    stack: Stack, action: str, fields: dict[str, str], why: str
) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    handle = await stack.start(case)
    before = await reach(handle, "awaiting_review")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await act(handle, action, actor="sup-sue", **fields)
    assert why in str(refused.value.cause)
    view = await reach(handle, "awaiting_review")
    assert kinds(view) == kinds(before)
    assert view.decision == before.decision
    await stop(stack.client, handle)
