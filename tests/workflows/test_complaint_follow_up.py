"""A day after the resolution: is the customer satisfied? (DESIGN 3.6 step 4)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.conftest import Stack
from tests.workflows.complaints import accepted
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
    mails_arrive,
    near,
    ops_mails_arrive,
    reach_deadline,
    requests_for,
    sleep_past,
    state,
    stop,
)


async def test_satisfied_customer_is_surveyed_and_the_complaint_closes(stack: Stack) -> None:
    case, handle = await accepted(stack, "apology")
    view = await reach_deadline(handle, "complaint_follow_up")
    assert view.status == "resolved" and deadline_names(view) == {"complaint_follow_up"}
    # Nothing is asked before the follow-up is due.
    await stack.env.sleep(timedelta(hours=23))
    assert "satisfaction_check" not in mail_names(stack.mail, case)

    await sleep_past(stack.env, handle, "complaint_follow_up")
    view = await reach_deadline(handle, "offer_response")
    assert view.status == "resolved" and deadline_names(view) == {"offer_response"}
    asked = entry(view, "satisfaction_check").at
    assert near(asked, entry(view, "resolved").at + timedelta(hours=24))
    assert near(deadline(view, "offer_response").due_at, asked + timedelta(days=3))
    await mails_arrive(stack.mail, case, "satisfaction_check")
    assert "satisfied" in mail_text(stack.mail, case, "satisfaction_check")

    await customer(handle, "accept")
    view = await reach_deadline(handle, "survey")
    assert entry(view, "satisfied").actor == "customer"
    assert near(deadline(view, "survey").due_at, entry(view, "survey_sent").at + timedelta(days=7))
    await mails_arrive(stack.mail, case, "survey")

    view = await customer(handle, "rate", score=5, comment="Handled well")
    assert view.status == "closed" and view.rating == 5
    result = await finish(stack.env, handle, "closed")
    assert kinds(result)[-6:] == [
        "resolved",
        "satisfaction_check",
        "satisfied",
        "survey_sent",
        "rated",
        "closed",
    ]
    assert result.deadlines == []
    assert mail_names(stack.mail, case)[-3:] == ["resolution_done", "satisfaction_check", "survey"]


async def test_no_answer_counts_as_satisfied_and_the_survey_may_lapse(stack: Stack) -> None:
    _case, handle = await accepted(stack, "coupon", "100")
    await reach_deadline(handle, "complaint_follow_up")
    await sleep_past(stack.env, handle, "complaint_follow_up")
    await sleep_past(stack.env, handle, "offer_response")
    view = await reach_deadline(handle, "survey")
    satisfied = entry(view, "satisfied")
    assert satisfied.actor == "timer" and "taken as satisfied" in satisfied.message
    assert "escalated" not in kinds(view)
    await sleep_past(stack.env, handle, "survey")
    result = await finish(stack.env, handle, "closed")
    assert kinds(result)[-2:] == ["survey_expired", "closed"]
    assert result.rating is None


async def test_dissatisfied_customer_reopens_it_escalated(stack: Stack) -> None:
    case, handle = await accepted(stack, "partial_refund", "300")
    await reach_deadline(handle, "complaint_follow_up")
    await sleep_past(stack.env, handle, "complaint_follow_up")
    await reach_deadline(handle, "offer_response")
    assert (await state(handle)).priority == "normal"

    view = await customer(handle, "decline")
    assert view.status == "awaiting_review"
    view = await reach_deadline(handle, "review")
    assert kinds(view)[-4:] == [
        "satisfaction_check",
        "dissatisfied",
        "escalated",
        "awaiting_review",
    ]
    assert entry(view, "escalated").actor == "customer"
    assert view.priority == "high"
    # The customer's word, not a missed deadline.
    assert not view.sla_breached
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert case.case_id in str(ops["Subject"])
    assert "survey" not in mail_names(stack.mail, case)

    # Exactly one refund per case: a second one, or a return that would refund, is refused.
    for resolution, amount in (("partial_refund", "100"), ("refund", None), ("return", None)):
        fields = {"amount": amount} if amount else {}
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await act(handle, "propose", resolution=resolution, **fields)
        assert "already refunded TWD 300.00" in str(refused.value.cause)

    await act(handle, "propose", resolution="coupon", amount="200")
    await customer(handle, "accept")
    view = await reach_deadline(handle, "complaint_follow_up")
    assert kinds(view).count("resolved") == 2
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)
