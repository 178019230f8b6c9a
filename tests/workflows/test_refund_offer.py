"""Refund only after delivery: a seller fault the customer keeps, or a refusal (DESIGN 3.4)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.calendar import BusinessCalendar
from domain.models import CaseView
from domain.policy import Policy
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    deadline_names,
    entry,
    finish,
    in_order,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    near,
    ops_mails_arrive,
    overdue,
    reach_deadline,
    reach_overdue,
    requests_for,
    skip_to_friday_afternoon,
    sleep_past,
    state,
    stop,
    webhooks_arrive,
)
from workflows.case import CaseInput

PHOTO = ["https://img.example/scratch.jpg"]
CHEAP_MUG = [{"sku": "MUG-1", "name": "Mug", "category": "kitchen", "unit_price": "150.00"}]


async def kept_with_a_fault(stack: Stack) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """A delivered item worth more than the returnless limit, faulty: an agent sets the offer."""
    case = case_input(now=await stack.now(), type="refund", reason="defective", evidence=PHOTO)
    decision = case.decision
    assert decision.eligible and decision.review == "manual" and not decision.returnless
    handle = await stack.start(case)
    view = await reach_deadline(handle, "review")
    assert view.status == "awaiting_review" and deadline_names(view) == {"review"}
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    assert near(
        deadline(view, "review").due_at, calendar.add(entry(view, "awaiting_review").at, "1bd")
    )
    return case, handle


async def offered(stack: Stack) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """The agent offers 30% back (297 of 990); the case waits for the customer's answer."""
    case, handle = await kept_with_a_fault(stack)
    view = await act(
        handle,
        "propose",
        actor="agent-bo",
        resolution="partial_refund",
        amount="297",
        message="Sorry about the scratch",
    )
    assert view.status == "awaiting_customer"
    view = await reach_deadline(handle, "offer_response")
    assert deadline_names(view) == {"offer_response"}
    made = entry(view, "offer_made")
    assert (made.actor, made.message) == ("agent-bo", "Offered TWD 297.")
    assert near(
        deadline(view, "offer_response").due_at, entry(view, "refund_offer").at + timedelta(days=3)
    )
    await mails_arrive(stack.mail, case, "refund_offer")
    assert "TWD 297" in mail_text(stack.mail, case, "refund_offer")
    assert stack.peers.refunds_for(case.case_id) == []
    return case, handle


async def test_partial_refund_offer_accepted_is_paid_once(stack: Stack) -> None:
    case, handle = await offered(stack)
    await customer(handle, "accept")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert in_order(view, "offer_made", "refund_offer", "offer_accepted", "refund_succeeded")
    assert view.refund is not None and view.refund.amount == Decimal("297")
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (Decimal(refund["amount"]), refund["reason"]) == (Decimal(297), "offer_accepted")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert stack.peers.pickups_for(case.case_id) == []  # the customer keeps the item
    await mails_arrive(stack.mail, case, "refund_sent")
    await stop(stack.client, handle)


async def test_partial_refund_offer_declined_closes_without_a_refund(stack: Stack) -> None:
    case, handle = await offered(stack)
    view = await customer(handle, "decline")
    assert view.status == "closed"
    result = await finish(stack.env, handle, "closed")
    assert kinds(result)[-2:] == ["offer_declined", "closed"]
    assert entry(result, "offer_declined").actor == "customer"
    assert result.refund is None and result.deadlines == []
    assert stack.peers.refunds_for(case.case_id) == []
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    assert mail_names(stack.mail, case) == ["case_received", "refund_offer", "offer_declined"]


async def test_partial_refund_offer_unanswered_closes_without_a_refund(stack: Stack) -> None:
    case, handle = await offered(stack)
    await sleep_past(stack.env, handle, "offer_response")
    result = await finish(stack.env, handle, "closed")
    assert kinds(result)[-2:] == ["offer_declined", "closed"]
    # Nobody answered: the timer declined it, not the customer.
    assert entry(result, "offer_declined").actor == "timer"
    assert entry(result, "closed").actor == "timer"
    assert not result.sla_breached
    assert stack.peers.refunds_for(case.case_id) == []
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    assert "offer_declined" in mail_names(stack.mail, case)


async def test_a_coupon_is_refused_and_an_agent_rejects(stack: Stack) -> None:
    # Inside business hours, so a review deadline restarted later would fall later.
    await skip_to_friday_afternoon(stack.env, Policy())
    case, handle = await kept_with_a_fault(stack)
    before = await state(handle)
    due = deadline(before, "review")
    await stack.env.sleep(timedelta(hours=2))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await act(handle, "propose", resolution="coupon", amount="100")
    assert "partial_refund" in str(refused.value.cause)
    view = await state(handle)
    assert view.status == "awaiting_review"
    # Still owed by the same deadline: a refused proposal doesn't buy the agent more time.
    assert view.deadlines == [due]
    assert "offer_made" not in kinds(view) and "refund_offer" not in mail_names(stack.mail, case)

    view = await act(handle, "reject", actor="agent-bo", reason="The scratch is cosmetic wear.")
    assert view.status == "rejected"
    result = await finish(stack.env, handle, "rejected")
    rejected = entry(result, "rejected")
    assert (rejected.actor, rejected.message) == ("agent-bo", "The scratch is cosmetic wear.")
    assert result.deadlines == [] and result.refund is None
    assert stack.peers.refunds_for(case.case_id) == []
    assert mail_names(stack.mail, case) == ["case_received", "case_rejected"]
    assert "cosmetic wear" in mail_text(stack.mail, case, "case_rejected")


async def test_review_deadline_escalates_and_still_takes_an_offer(stack: Stack) -> None:
    case, handle = await kept_with_a_fault(stack)
    due = await sleep_past(stack.env, handle, "review")
    view = await reach_overdue(handle, due)
    assert view.status == "awaiting_review"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "review"}
    assert overdue(view, "review")
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "review overdue" in str(ops["Subject"])
    await webhooks_arrive(stack.peers, case.case_id, "case.escalated")

    view = await act(handle, "propose", resolution="refund")
    assert view.status == "awaiting_customer"
    assert entry(view, "offer_made").message == "Offered TWD 990.00."
    await customer(handle, "accept")
    view = await reach_deadline(handle, "follow_up")
    [refund] = stack.peers.refunds_for(case.case_id)
    assert Decimal(refund["amount"]) == 990
    assert kinds(view).count("escalated") == 1
    await stop(stack.client, handle)


async def test_returnless_refund_only_pays_in_full_at_once(stack: Stack) -> None:
    case = case_input(
        now=await stack.now(), type="refund", reason="defective", evidence=PHOTO, items=CHEAP_MUG
    )
    assert case.decision.returnless and case.decision.review == "auto"
    handle = await stack.start(case)
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert kinds(view) == [
        "opened",
        "approved",
        "refund_pending",
        "refund_requested",
        "refund_succeeded",
        "resolved",
    ]
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("150.00", "returnless")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert stack.peers.pickups_for(case.case_id) == []
    assert "awaiting_review" not in kinds(view)
    await stop(stack.client, handle)


async def test_delivered_for_a_customer_reason_is_rejected_use_return(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="refund", reason="changed_mind")
    assert not case.decision.eligible
    assert [rule.id for rule in case.decision.rules] == ["use_return"]
    assert case.decision.alternatives == ["return"]
    handle = await stack.start(case)
    result = await finish(stack.env, handle, "rejected")
    assert kinds(result) == ["opened", "rejected"]
    rejected = entry(result, "rejected")
    assert rejected.actor == "policy" and "return case" in rejected.message
    assert result.refund is None and result.deadlines == []
    assert stack.peers.refunds_for(case.case_id) == []
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    assert mail_names(stack.mail, case) == ["case_received", "case_rejected"]
