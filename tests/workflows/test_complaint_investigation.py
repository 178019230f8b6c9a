"""While a complaint is investigated: the agent asks, the customer replies (issue 11)."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.conftest import Stack
from tests.workflows.complaints import answered, open_complaint
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    entry,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    reach_deadline,
    stop,
)

PHOTO = "https://img.example/parcel-label.jpg"


async def test_the_agent_asks_the_customer_replies_and_the_review_deadline_holds(
    stack: Stack,
) -> None:
    case, handle = await answered(stack)
    due = deadline(await reach_deadline(handle, "review"), "review")
    view = await act(handle, "request_info", actor="agent-mei", question="Which courier was it?")
    assert view.status == "awaiting_review"
    # A question is not a proposal: the agent owes one by the same deadline.
    assert view.deadlines == [due]
    assert "reply" in view.customer_actions
    asked = entry(view, "info_requested")
    assert (asked.actor, asked.message) == ("agent-mei", "Which courier was it?")
    await mails_arrive(stack.mail, case, "info_needed")
    assert "Which courier was it?" in mail_text(stack.mail, case, "info_needed")

    view = await customer(
        handle, "reply", actor="mallory", message="Black Cat, the label is attached.",
        evidence=[PHOTO],
    )  # fmt: skip
    replied = entry(view, "customer_replied")
    # Recorded as the customer, whatever the body says.
    assert (replied.actor, replied.message) == ("customer", "Black Cat, the label is attached.")
    assert replied.data == {"evidence": [PHOTO]}
    assert view.evidence[-1] == PHOTO
    assert view.status == "awaiting_review" and view.deadlines == [due]
    # The customer's reply is theirs: nothing is sent back for it.
    assert mail_names(stack.mail, case) == [
        "complaint_acknowledged",
        "complaint_response",
        "info_needed",
    ]

    # The agent proposes once they know enough, as before.
    await act(handle, "propose", actor="agent-mei", resolution="coupon", amount="100")
    view = await reach_deadline(handle, "offer_response")
    assert kinds(view).index("customer_replied") < kinds(view).index("offer_made")
    await mails_arrive(stack.mail, case, "resolution_proposed")
    assert mail_names(stack.mail, case)[3:] == ["resolution_proposed"]
    await stop(stack.client, handle)


async def test_a_customer_reply_is_no_first_response(stack: Stack) -> None:
    _, handle = await open_complaint(stack)
    # Before an agent has answered, the first-response clocks wait for the agent alone.
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "reply", message="Hello? Anyone there?")
    await act(handle, "request_info", question="Could you send the order's photo?")
    # A question counts as the first response: the first-response clocks stop.
    view = await reach_deadline(handle, "review")
    assert "first_response" not in {d.name for d in view.deadlines}
    assert "info_requested" in kinds(view)
    await stop(stack.client, handle)


async def test_a_partial_refund_plus_a_coupon_pays_each_once(stack: Stack) -> None:
    case, handle = await answered(stack)
    view = await act(
        handle, "propose", actor="agent-mei", resolution="partial_refund", amount="200",
        coupon="100", message="Sorry for the trouble.",
    )  # fmt: skip
    offered = entry(view, "offer_made")
    assert offered.message == "Proposed a partial refund of TWD 200.00 and a coupon of TWD 100.00."
    assert offered.data["coupon"] == {"amount": "100.00", "currency": "TWD"}
    await reach_deadline(handle, "offer_response")
    await mails_arrive(stack.mail, case, "resolution_proposed")
    text = mail_text(stack.mail, case, "resolution_proposed")
    assert "A partial refund of TWD 200.00" in text and "a coupon worth TWD 100.00" in text

    await customer(handle, "accept")
    view = await reach_deadline(handle, "complaint_follow_up")
    assert kinds(view).index("coupon_issued") < kinds(view).index("refund_succeeded")
    [refund] = stack.peers.refunds_for(case.case_id)
    assert refund["amount"] == "200.00"
    [coupon] = stack.peers.store_credits_for(case.case_id)
    assert (coupon["amount"], coupon["bonus"]) == ("100.00", "0.00")
    # Each part is announced once, in the order carried out, then the resolution as a whole.
    await mails_arrive(stack.mail, case, "store_credit_issued", "refund_sent", "resolution_done")
    assert mail_names(stack.mail, case) == [
        "complaint_acknowledged",
        "complaint_response",
        "resolution_proposed",
        "store_credit_issued",
        "refund_sent",
        "resolution_done",
    ]
    issued = mail_text(stack.mail, case, "store_credit_issued")
    assert "Your coupon of TWD 100.00" in issued and f"Your code: {coupon['code']}" in issued
    assert "TWD 200.00" in mail_text(stack.mail, case, "refund_sent")
    done = mail_text(stack.mail, case, "resolution_done")
    assert "Your refund of TWD 200.00" in done
    assert "Your coupon worth TWD 100.00 has also been issued" in done
    await stop(stack.client, handle)


async def test_a_coupon_on_top_of_a_coupon_is_refused(stack: Stack) -> None:
    _, handle = await answered(stack)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await act(handle, "propose", resolution="coupon", amount="100", coupon="50")
    assert "a resolution other than a coupon" in str(refused.value.cause)
    await stop(stack.client, handle)
