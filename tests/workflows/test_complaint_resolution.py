"""A complaint's resolution proposed, accepted and carried out (DESIGN 3.6 steps 2-3)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.conftest import Stack, until
from tests.workflows.complaints import accepted, answered
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    entry,
    in_order,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    near,
    reach_deadline,
    requests_for,
    state,
    stop,
    webhook_types,
)


async def test_apology_accepted_resolves_without_paying(stack: Stack) -> None:
    case, handle = await accepted(stack, "apology")
    view = await reach_deadline(handle, "complaint_follow_up")
    assert view.status == "resolved"
    assert in_order(
        view,
        "responded",
        "offer_made",
        "resolution_proposed",
        "offer_accepted",
        "apology_accepted",
        "resolved",
    )
    made = entry(view, "offer_made")
    assert (made.actor, made.message) == ("agent-mei", "Proposed an apology.")
    assert near(
        deadline(view, "complaint_follow_up").due_at,
        entry(view, "resolved").at + timedelta(hours=24),
    )
    await mails_arrive(stack.mail, case, "resolution_done")
    assert mail_names(stack.mail, case) == [
        "complaint_acknowledged",
        "complaint_response",
        "resolution_proposed",
        "resolution_done",
    ]
    assert "apology" in mail_text(stack.mail, case, "resolution_proposed")
    assert view.refund is None and requests_for(stack.peers, "/refunds", case.case_id) == []
    await stop(stack.client, handle)


async def test_coupon_goes_to_the_storefront_webhook(stack: Stack) -> None:
    case, handle = await accepted(stack, "coupon", "150")
    view = await reach_deadline(handle, "complaint_follow_up")
    assert in_order(view, "offer_accepted", "coupon_issued", "resolved")
    await until(lambda: "case.coupon_issued" in webhook_types(stack.peers, case.case_id))
    [coupon] = [
        e for e in stack.peers.webhook_events(case.case_id) if e["type"] == "case.coupon_issued"
    ]
    assert (coupon["data"]["amount"], coupon["data"]["currency"]) == ("150.00", "TWD")
    assert "TWD 150.00" in mail_text(stack.mail, case, "resolution_proposed")
    await mails_arrive(stack.mail, case, "resolution_done")
    assert "TWD 150.00" in mail_text(stack.mail, case, "resolution_done")
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    await stop(stack.client, handle)


@pytest.mark.parametrize(
    ("resolution", "amount", "paid"),
    [("partial_refund", "300", "300.00"), ("refund", None, "990.00")],
)
async def test_refund_resolutions_pay_exactly_once(
    stack: Stack, resolution: str, amount: str | None, paid: str
) -> None:
    case, handle = await accepted(stack, resolution, amount)
    view = await reach_deadline(handle, "complaint_follow_up")
    assert view.status == "resolved"
    assert in_order(
        view, "offer_accepted", "refund_pending", "refund_requested", "refund_succeeded", "resolved"
    )
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == (paid, f"complaint_{resolution}")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert view.refund is not None and view.refund.amount == Decimal(paid)
    assert view.refund.status == "succeeded"
    await mails_arrive(stack.mail, case, "refund_sent", "resolution_done")
    assert f"TWD {paid}" in mail_text(stack.mail, case, "resolution_done")
    await stop(stack.client, handle)


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"resolution": "partial_refund"}, "needs an amount"),
        ({"resolution": "coupon", "amount": "0"}, "needs an amount"),
        ({"resolution": "partial_refund", "amount": "991"}, "can't exceed"),
    ],
)
async def test_unworkable_proposals_are_refused_under_the_same_deadline(
    stack: Stack, fields: dict[str, Any], why: str
) -> None:
    case, handle = await answered(stack)
    before = deadline(await state(handle), "review")
    await stack.env.sleep(timedelta(minutes=30))
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await act(handle, "propose", **fields)
    assert why in str(refused.value.cause)
    view = await state(handle)
    assert view.status == "awaiting_review" and view.deadlines == [before]
    assert "offer_made" not in kinds(view)
    assert "resolution_proposed" not in mail_names(stack.mail, case)
    await stop(stack.client, handle)


async def test_nothing_to_send_back_before_delivery(stack: Stack) -> None:
    case, handle = await answered(stack, order={"delivered_at": None})
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await act(handle, "propose", resolution="return")
    assert "hasn't been delivered" in str(refused.value.cause)
    # A refund needs no parcel.
    view = await act(handle, "propose", resolution="refund")
    assert view.status == "awaiting_customer"
    await customer(handle, "accept")
    await reach_deadline(handle, "complaint_follow_up")
    assert len(stack.peers.refunds_for(case.case_id)) == 1
    await stop(stack.client, handle)
