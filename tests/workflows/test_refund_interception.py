"""Refund only while the parcel is on its way: intercept it, or take it back (DESIGN 3.4)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    deadline,
    deadline_names,
    entry,
    in_order,
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
    send_back,
    signal,
    sleep_past,
    state,
    stop,
)

ON_ITS_WAY = {"delivered_at": None, "tracking_number": "TRK1"}


async def test_intercepted_parcel_is_refunded_in_full(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="refund", order=ON_ITS_WAY)
    assert case.decision.review == "auto" and case.decision.refund_estimate.amount == 990
    handle = await stack.start(case)
    view = await reach_deadline(handle, "interception")
    assert view.status == "in_transit"
    assert deadline_names(view) == {"interception"}
    asked_at = entry(view, "interception_requested").at
    assert near(deadline(view, "interception").due_at, asked_at + timedelta(days=3))
    [interception] = stack.peers.interceptions_for(case.case_id)
    assert interception["tracking_number"] == "TRK1"
    [call] = requests_for(stack.peers, "/interceptions", case.case_id)
    assert call.idempotency_key == f"{case.case_id}:interception"
    await mails_arrive(stack.mail, case, "interception_requested")
    assert stack.peers.refunds_for(case.case_id) == []

    await signal(handle, "carrier.intercepted")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert kinds(view) == [
        "opened",
        "approved",
        "interception_requested",
        "carrier.intercepted",
        "refund_pending",
        "refund_requested",
        "refund_succeeded",
        "resolved",
    ]
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "intercepted")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert stack.peers.pickups_for(case.case_id) == []
    await mails_arrive(stack.mail, case, "refund_sent")
    await stop(stack.client, handle)


async def test_delivered_before_interception_continues_as_a_return(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="refund", order=ON_ITS_WAY)
    handle = await stack.start(case)
    await reach_deadline(handle, "interception")
    await signal(handle, "carrier.delivered")
    # Too late to stop: the shop books a pickup and the item comes back as a return.
    view = await reach_deadline(handle, "carrier_pickup")
    assert view.status == "awaiting_shipment"
    assert in_order(view, "carrier.delivered", "interception_failed", "awaiting_shipment")
    assert in_order(view, "awaiting_shipment", "pickup_booked")
    [pickup] = stack.peers.pickups_for(case.case_id)
    assert pickup["parcels"][0]["sku"] == "TEE-M-BLK"
    await mails_arrive(stack.mail, case, "interception_failed", "case_approved")
    assert stack.peers.refunds_for(case.case_id) == []

    # The carrier's late word that it stopped the parcel changes nothing now.
    await signal(handle, "carrier.intercepted")
    await reach_kind(handle, "carrier.intercepted")
    view = await state(handle)
    assert view.status == "awaiting_shipment" and deadline_names(view) == {"carrier_pickup"}
    assert stack.peers.refunds_for(case.case_id) == []

    await send_back(handle)
    assert stack.peers.refunds_for(case.case_id) == []  # no fast refund on this path
    await signal(handle, "inspection.completed", result="pass")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert in_order(view, "received", "inspection.completed", "refund_succeeded", "resolved")
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "returned_undelivered")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1

    await signal(handle, "carrier.intercepted")  # and once more, after the refund
    await reach_kind(handle, "carrier.intercepted", count=2)
    view = await state(handle)
    assert view.status == "resolved" and deadline_names(view) == {"follow_up"}
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert mail_names(stack.mail, case).count("refund_sent") == 1
    await stop(stack.client, handle)


async def test_delivered_before_interception_failing_inspection_refunds_the_partial(
    stack: Stack,
) -> None:
    case = case_input(now=await stack.now(), type="refund", order=ON_ITS_WAY)
    handle = await stack.start(case)
    await reach_deadline(handle, "interception")
    await signal(handle, "carrier.delivered")
    await send_back(handle)
    await signal(handle, "inspection.completed", result="fail", refund_amount="400", keep_item=True)
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert in_order(view, "inspection_failed", "refund_succeeded")
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (Decimal(refund["amount"]), refund["reason"]) == (
        Decimal(400),
        "inspection_failed_partial",
    )
    await mails_arrive(stack.mail, case, "inspection_failed", "refund_sent")
    await stop(stack.client, handle)


async def test_delivered_before_interception_failing_inspection_ships_the_item_back(
    stack: Stack,
) -> None:
    case = case_input(now=await stack.now(), type="refund", order=ON_ITS_WAY)
    handle = await stack.start(case)
    await reach_deadline(handle, "interception")
    await signal(handle, "carrier.delivered")
    await send_back(handle)
    await signal(handle, "inspection.completed", result="fail", notes="Not the item we sent")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved" and view.refund is None
    assert stack.peers.refunds_for(case.case_id) == []
    [shipment] = stack.peers.shipments_for(case.case_id)
    assert shipment["items"][0]["sku"] == "TEE-M-BLK"
    await stop(stack.client, handle)


async def test_interception_deadline_escalates_and_keeps_waiting(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="refund", order=ON_ITS_WAY)
    handle = await stack.start(case)
    await reach_deadline(handle, "interception")
    due = await sleep_past(stack.env, handle, "interception")
    view = await reach_overdue(handle, due)
    assert view.status == "in_transit"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "interception"}
    assert overdue(view, "interception")
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "interception overdue" in str(ops["Subject"])
    assert stack.peers.refunds_for(case.case_id) == []
    assert len(stack.peers.interceptions_for(case.case_id)) == 1  # asked once

    await signal(handle, "carrier.intercepted")
    await reach(handle, "resolved")
    [refund] = stack.peers.refunds_for(case.case_id)
    assert refund["amount"] == "990.00"
    await stop(stack.client, handle)
