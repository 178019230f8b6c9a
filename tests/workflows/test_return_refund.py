"""The refund: pending until settled, its deadline, and a payment provider that fails (3.2 6, 7)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import Stack, until
from tests.support.factory import case_input
from tests.workflows.helpers import (
    customer,
    deadline,
    deadline_names,
    entry,
    kinds,
    mail_names,
    mails_arrive,
    near,
    ops_mails_arrive,
    overdue,
    reach,
    reach_deadline,
    reach_kind,
    reach_overdue,
    requests_for,
    signal,
    sleep_past,
    stop,
)

PHOTO = ["https://img.example/cracked.jpg"]
# Seller fault, low value, evidence: refunded at once without a shipment (returnless).
CHEAP_MUG = [{"sku": "MUG-1", "name": "Mug", "category": "kitchen", "unit_price": "150.00"}]
# `pending_refunds` (tests/workflows/conftest.py) makes the provider answer "pending".


@pytest.mark.usefixtures("pending_refunds")
async def test_pending_refund_waits_for_settlement(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO, items=CHEAP_MUG)
    handle = await stack.start(case)
    view = await reach_deadline(handle, "refund")
    assert view.status == "refund_pending"
    assert deadline_names(view) == {"refund"}
    requested_at = entry(view, "refund_requested").at
    assert near(deadline(view, "refund").due_at, requested_at + timedelta(hours=24))
    [refund] = stack.peers.refunds_for(case.case_id)
    assert refund["refund_status"] == "pending"
    assert view.refund is not None and view.refund.status == "pending"
    assert view.refund.refund_id == refund["refund_id"]
    assert "refund_sent" not in mail_names(stack.mail, case)

    await signal(handle, "refund.settled", refund_id=refund["refund_id"])
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert view.refund is not None and view.refund.status == "succeeded"
    assert kinds(view)[-4:] == [
        "refund_requested",
        "refund.settled",
        "refund_succeeded",
        "resolved",
    ]
    assert not view.sla_breached and "escalated" not in kinds(view)
    await mails_arrive(stack.mail, case, "refund_sent")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)


@pytest.mark.usefixtures("pending_refunds")
async def test_refund_deadline_escalates_while_pending(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO, items=CHEAP_MUG)
    handle = await stack.start(case)
    await reach_deadline(handle, "refund")
    due = await sleep_past(stack.env, handle, "refund")
    view = await reach_overdue(handle, due)
    assert view.status == "refund_pending"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "refund"}
    assert overdue(view, "refund")  # still owed: listed past its due time
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "refund overdue" in str(ops["Subject"])

    await signal(handle, "refund.settled")
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)


@pytest.mark.usefixtures("pending_refunds")
async def test_refund_reported_failed_escalates_and_is_never_retried(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO, items=CHEAP_MUG)
    handle = await stack.start(case)
    await reach_deadline(handle, "refund")
    await signal(handle, "refund.failed", reason="card closed")
    view = await reach_kind(handle, "escalated")
    assert view.status == "refund_pending"
    assert view.refund is not None and view.refund.status == "failed"
    assert entry(view, "escalated").actor == "payment"
    assert view.priority == "high"
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1

    await signal(handle, "refund.settled", refund_id="re_manual_1")
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None
    assert (view.refund.status, view.refund.refund_id) == ("succeeded", "re_manual_1")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)


@pytest.mark.usefixtures("pending_refunds")
async def test_pending_fast_refund_settles_alongside_the_return(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC6060")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    view = await reach_deadline(handle, "refund")
    await reach_deadline(handle, "transit")
    assert view.refund is not None and view.refund.status == "pending"

    await signal(handle, "warehouse.received")
    view = await reach_deadline(handle, "inspection")
    assert view.status == "inspecting" and deadline_names(view) == {"inspection", "refund"}
    await signal(handle, "inspection.completed", result="pass")
    # Inspection is done; the case now waits on the refund alone.
    view = await reach(handle, "refund_pending")
    assert deadline_names(view) == {"refund"}
    await signal(handle, "refund.settled")
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)


async def test_refund_refused_by_the_provider_escalates_until_settled(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO, items=CHEAP_MUG)
    stack.peers.fail_next("/refunds", 422, detail="amount exceeds capture")
    handle = await stack.start(case)
    view = await reach_kind(handle, "escalated")
    assert view.status == "refund_pending"
    assert view.refund is not None and view.refund.status == "failed"
    escalated = entry(view, "escalated")
    assert escalated.actor == "payment" and "amount exceeds capture" in escalated.message
    assert view.priority == "high"
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    # A 4xx is final: one call, no refund recorded by the provider, no retry.
    [call] = requests_for(stack.peers, "/refunds", case.case_id)
    assert call.status == 422 and call.idempotency_key == f"{case.case_id}:refund"
    assert stack.peers.refunds_for(case.case_id) == []

    await signal(handle, "refund.settled", refund_id="re_by_hand")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert view.refund is not None
    assert (view.refund.status, view.refund.refund_id) == ("succeeded", "re_by_hand")
    await mails_arrive(stack.mail, case, "refund_sent")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)


async def test_refund_retried_after_a_5xx_is_paid_once(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO, items=CHEAP_MUG)
    stack.peers.fail_next("/refunds", 503)
    handle = await stack.start(case)
    await until(lambda: len(requests_for(stack.peers, "/refunds", case.case_id)) == 1)
    await stack.env.sleep(timedelta(seconds=10))  # past the retry backoff
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert "escalated" not in kinds(view)
    calls = requests_for(stack.peers, "/refunds", case.case_id)
    assert [c.status for c in calls] == [503, 200]
    assert {c.idempotency_key for c in calls} == {f"{case.case_id}:refund"}
    [refund] = stack.peers.refunds_for(case.case_id)
    assert refund["amount"] == "150.00"
    await stop(stack.client, handle)
