"""A proposal the customer declines, leaves unanswered or cancels (DESIGN 3.6 step 2)."""

from __future__ import annotations

from datetime import timedelta

from domain.calendar import BusinessCalendar
from tests.conftest import Stack
from tests.workflows.complaints import proposed
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    deadline_names,
    entry,
    finish,
    kinds,
    mail_names,
    mail_text,
    near,
    reach,
    reach_deadline,
    requests_for,
    sleep_past,
    state,
    stop,
)


async def test_declined_goes_back_to_investigation_at_higher_priority(stack: Stack) -> None:
    case, handle = await proposed(stack, "partial_refund", "200")
    assert "TWD 200.00" in mail_text(stack.mail, case, "resolution_proposed")
    view = await customer(handle, "decline")
    assert view.status == "awaiting_review"
    view = await reach_deadline(handle, "review")
    assert deadline_names(view) == {"review"}
    assert view.priority == "high"
    declined = entry(view, "offer_declined")
    assert declined.actor == "customer" and declined.data == {"priority": "high"}
    # Not an SLA breach, and nothing was paid.
    assert not view.sla_breached and "escalated" not in kinds(view)
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    back = [e for e in view.timeline if e.kind == "awaiting_review"][-1]
    assert back.message == "Back to investigation."
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    assert near(deadline(view, "review").due_at, calendar.add(back.at, "1bd"))

    # The agent tries again; this time the customer takes it.
    await act(handle, "propose", resolution="coupon", amount="250")
    await reach_deadline(handle, "offer_response")
    await customer(handle, "accept")
    view = await reach_deadline(handle, "complaint_follow_up")
    assert kinds(view).count("offer_made") == 2
    assert view.priority == "high"
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    await stop(stack.client, handle)


async def test_unanswered_proposal_goes_back_to_investigation(stack: Stack) -> None:
    case, handle = await proposed(stack, "refund")
    view = await state(handle)
    due = deadline(view, "offer_response")
    assert near(due.due_at, entry(view, "resolution_proposed").at + timedelta(days=3))
    await sleep_past(stack.env, handle, "offer_response")
    view = await reach_deadline(handle, "review")
    assert view.status == "awaiting_review"
    declined = entry(view, "offer_declined")
    assert declined.actor == "timer" and "didn't answer" in declined.message
    assert view.priority == "high" and not view.sla_breached
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    assert mail_names(stack.mail, case).count("resolution_proposed") == 1
    await stop(stack.client, handle)


async def test_customer_withdraws_the_complaint(stack: Stack) -> None:
    case, handle = await proposed(stack, "apology")
    view = await customer(handle, "cancel")
    assert view.status == "cancelled"
    result = await finish(stack.env, handle, "cancelled")
    assert kinds(result)[-1] == "cancelled" and result.deadlines == []
    await reach(handle, "cancelled")
    assert mail_names(stack.mail, case)[-1] == "case_cancelled"
    assert "without further action" in mail_text(stack.mail, case, "case_cancelled")
