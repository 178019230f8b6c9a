"""A return's decision: refused at open, returnless, agent review and its timers (DESIGN 3.2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.calendar import BusinessCalendar
from domain.policy import Policy, ReturnsPolicy
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    deadline_names,
    entry,
    finish,
    finish_rejected,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    near,
    ops_mails_arrive,
    overdue,
    reach,
    reach_deadline,
    reach_overdue,
    sleep_past,
    state,
    stop,
)

# Opened, for a customer reason: an agent must look (DESIGN 5.2 rule 7).
OPENED_TEE = [
    {
        "sku": "TEE-M-BLK",
        "name": "T-shirt",
        "category": "apparel",
        "quantity": 1,
        "unit_price": "990.00",
        "opened": True,
    }
]
CHEAP_MUG = [{"sku": "MUG-1", "name": "Mug", "category": "kitchen", "unit_price": "150.00"}]
PHOTO = ["https://img.example/broken.jpg"]


async def test_outside_the_window_is_rejected_at_once_with_the_rule(stack: Stack) -> None:
    now = await stack.now()
    delivered = (now - timedelta(days=10)).isoformat()
    case = case_input(now=now, reason="changed_mind", order={"delivered_at": delivered})
    assert not case.decision.eligible
    handle = await stack.start(case)
    result = await finish_rejected(stack.env, handle)
    # Nobody approved an exception within the window: the case ended as it was rejected.
    assert kinds(result) == ["opened", "rejected"]
    rejected = entry(result, "rejected")
    assert rejected.actor == "policy"
    assert "accepted for only 7 days" in rejected.message
    assert [rule.id for rule in result.decision.rules] == ["outside_return_window"]
    assert result.deadlines == []
    assert mail_names(stack.mail, case) == ["case_received", "case_rejected"]
    text = mail_text(stack.mail, case, "case_rejected")
    assert text.count(result.decision.rules[0].message) == 1
    assert stack.peers.refunds_for(case.case_id) == []
    assert stack.peers.pickups_for(case.case_id) == []


async def test_defect_outside_the_window_is_pointed_to_a_warranty_repair(stack: Stack) -> None:
    now = await stack.now()
    delivered = (now - timedelta(days=20)).isoformat()
    case = case_input(
        now=now, reason="defective", evidence=PHOTO, order={"delivered_at": delivered}
    )
    handle = await stack.start(case)
    result = await finish_rejected(stack.env, handle)
    assert [r.id for r in result.decision.rules] == [
        "outside_return_window",
        "warranty_repair_suggested",
    ]
    assert result.decision.alternatives == ["repair"]
    assert "free repair" in entry(result, "rejected").message
    assert "Send it in for repair under warranty" in mail_text(stack.mail, case, "case_rejected")
    assert stack.peers.refunds_for(case.case_id) == []


async def test_returnless_refunds_without_a_shipment_then_surveys_and_closes(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO, items=CHEAP_MUG)
    assert case.decision.returnless and case.decision.shipping_payer is None
    handle = await stack.start(case)
    await reach(handle, "resolved")
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert view.refund.amount == 150
    assert kinds(view) == [
        "opened",
        "approved",
        "refund_pending",
        "refund_requested",
        "refund_succeeded",
        "resolved",
    ]
    assert "awaiting_shipment" not in kinds(view) and view.shipments == []
    resolved_at = entry(view, "resolved").at
    assert near(deadline(view, "follow_up").due_at, resolved_at + timedelta(days=3))
    [refund] = stack.peers.refunds_for(case.case_id)
    assert refund["amount"] == "150.00" and refund["reason"] == "returnless"
    assert refund["refund_id"] == view.refund.refund_id
    assert stack.peers.pickups_for(case.case_id) == []

    await sleep_past(stack.env, handle, "follow_up")
    await mails_arrive(stack.mail, case, "survey")
    view = await state(handle)
    assert view.status == "resolved" and deadline_names(view) == {"survey"}
    assert near(deadline(view, "survey").due_at, resolved_at + timedelta(days=10))

    await sleep_past(stack.env, handle, "survey")
    result = await finish(stack.env, handle, "closed")
    assert result.rating is None
    assert kinds(result)[-2:] == ["survey_expired", "closed"]
    assert mail_names(stack.mail, case) == [
        "case_received",
        "case_approved",
        "refund_sent",
        "survey",
    ]
    assert len(stack.peers.refunds_for(case.case_id)) == 1


async def test_manual_review_approved_by_an_agent(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    assert case.decision.review == "manual"
    handle = await stack.start(case)
    view = await reach(handle, "awaiting_review")
    assert "approved" not in kinds(view)
    view = await act(handle, "approve", actor="agent-ann", notes="Looks fine")
    assert view.status == "awaiting_shipment"
    approved = entry(view, "approved")
    assert (approved.actor, approved.message) == ("agent-ann", "Looks fine")
    assert deadline_names(view) == {"customer_shipment", "customer_shipment_reminder"}
    assert "review" not in deadline_names(view)
    assert mail_names(stack.mail, case) == ["case_received", "case_approved"]
    # The restocking fee for an opened item comes off the refund the case will pay.
    assert view.decision.refund_estimate.amount == 891
    await stop(stack.client, handle)


async def test_manual_review_rejected_by_an_agent(stack: Stack) -> None:
    case = case_input(
        now=await stack.now(), items=[{"sku": "TV-55", "name": "TV", "unit_price": "3500.00"}]
    )
    assert case.decision.review == "manual"
    handle = await stack.start(case)
    await reach(handle, "awaiting_review")
    await act(handle, "reject", actor="agent-bo", reason="Used beyond testing")
    result = await finish_rejected(stack.env, handle)
    rejected = entry(result, "rejected")
    assert (rejected.actor, rejected.message) == ("agent-bo", "Used beyond testing")
    assert result.deadlines == []
    assert mail_names(stack.mail, case) == ["case_received", "case_rejected"]
    assert stack.peers.refunds_for(case.case_id) == []


async def test_request_info_waits_for_the_customer_then_back_to_review(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    handle = await stack.start(case)
    await reach(handle, "awaiting_review")
    view = await act(handle, "request_info", question="Could you send a photo of the label?")
    assert view.status == "awaiting_customer"
    asked_at = entry(view, "info_requested").at
    assert deadline_names(view) == {"customer_info", "customer_info_reminder"}
    assert near(deadline(view, "customer_info").due_at, asked_at + timedelta(days=7))
    assert near(deadline(view, "customer_info_reminder").due_at, asked_at + timedelta(days=3))
    assert mail_names(stack.mail, case) == ["case_received", "info_needed"]
    # The agent can't decide while the customer is being asked.
    with pytest.raises(WorkflowUpdateFailedError):
        await act(handle, "approve")
    view = await customer(
        handle, "reply", message="Here it is", evidence=["https://img.example/l.jpg"]
    )
    assert view.status == "awaiting_review"
    assert deadline_names(view) == {"review"}
    assert view.evidence == ["https://img.example/l.jpg"]
    assert kinds(view)[-3:] == ["info_requested", "customer_replied", "awaiting_review"]
    view = await act(handle, "approve")
    assert view.status == "awaiting_shipment"
    assert kinds(view).count("awaiting_review") == 2
    await stop(stack.client, handle)


async def test_review_deadline_escalates_and_an_agent_can_still_approve(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    handle = await stack.start(case)
    view = await reach_deadline(handle, "review")
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    waiting_since = entry(view, "awaiting_review").at
    assert near(deadline(view, "review").due_at, calendar.add(waiting_since, "1bd"))
    assert not view.sla_breached and view.priority == "normal"

    due = await sleep_past(stack.env, handle, "review")
    view = await reach_overdue(handle, due)
    assert view.status == "awaiting_review"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "review"}
    assert overdue(view, "review")  # still owed: listed past its due time
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "review overdue" in str(ops["Subject"])

    # A day later still nothing has happened by itself, and an agent can approve.
    await stack.env.sleep(timedelta(days=1))
    assert (await state(handle)).status == "awaiting_review"
    view = await act(handle, "approve")
    assert view.status == "awaiting_shipment" and view.sla_breached
    assert kinds(view).count("escalated") == 1
    await stop(stack.client, handle)


async def test_review_deadline_approves_when_the_policy_says_so(stack: Stack) -> None:
    policy = Policy(returns=ReturnsPolicy(auto_approve_on_review_timeout=True))
    case = case_input(now=await stack.now(), policy=policy, items=OPENED_TEE)
    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    await sleep_past(stack.env, handle, "review")
    view = await reach(handle, "awaiting_shipment")
    assert kinds(view)[-4:] == ["awaiting_review", "escalated", "approved", "awaiting_shipment"]
    assert entry(view, "approved").actor == "policy"
    assert view.sla_breached and view.priority == "high"
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    await mails_arrive(stack.mail, case, "case_approved")
    await stop(stack.client, handle)


async def test_customer_info_reminds_then_expires(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    handle = await stack.start(case)
    await reach(handle, "awaiting_review")
    await act(handle, "request_info", question="Which size did you order?")

    await sleep_past(stack.env, handle, "customer_info_reminder")
    await mails_arrive(stack.mail, case, "info_reminder")
    view = await state(handle)
    assert view.status == "awaiting_customer"
    assert deadline_names(view) == {"customer_info"}

    await sleep_past(stack.env, handle, "customer_info")
    result = await finish(stack.env, handle, "expired")
    assert kinds(result)[-2:] == ["info_requested", "expired"]
    assert result.deadlines == []
    assert mail_names(stack.mail, case) == [
        "case_received",
        "info_needed",
        "info_reminder",
        "case_expired",
    ]
    assert stack.peers.refunds_for(case.case_id) == []
