"""Getting the item back: the customer's shipment, the shop's pickup, transit (DESIGN 3.2 4-5)."""

from __future__ import annotations

from datetime import timedelta

from domain.policy import Policy, ReturnsPolicy
from tests.conftest import Stack, until
from tests.support.factory import case_input
from tests.workflows.helpers import (
    customer,
    deadline,
    deadline_names,
    entry,
    finish,
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
    state,
    stop,
)

PHOTO = ["https://img.example/defect.jpg"]
NO_FAST_REFUND = Policy(returns=ReturnsPolicy(fast_refund=False))


async def test_customer_shipment_reminds_then_expires(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    assert case.decision.review == "auto" and case.decision.shipping_payer == "customer"
    handle = await stack.start(case)
    view = await reach_deadline(handle, "customer_shipment_reminder")
    assert view.status == "awaiting_shipment"
    approved_at = entry(view, "awaiting_shipment").at
    assert deadline_names(view) == {"customer_shipment", "customer_shipment_reminder"}
    assert near(deadline(view, "customer_shipment").due_at, approved_at + timedelta(days=7))
    assert near(
        deadline(view, "customer_shipment_reminder").due_at, approved_at + timedelta(days=3)
    )
    assert mail_names(stack.mail, case) == ["case_received", "case_approved"]

    await sleep_past(stack.env, handle, "customer_shipment_reminder")
    await mails_arrive(stack.mail, case, "shipment_reminder")
    view = await state(handle)
    assert view.status == "awaiting_shipment"
    assert deadline_names(view) == {"customer_shipment"}

    await sleep_past(stack.env, handle, "customer_shipment")
    result = await finish(stack.env, handle, "expired")
    assert kinds(result)[-2:] == ["awaiting_shipment", "expired"]
    assert mail_names(stack.mail, case) == [
        "case_received",
        "case_approved",
        "shipment_reminder",
        "case_expired",
    ]
    assert stack.peers.refunds_for(case.case_id) == []
    assert not result.sla_breached  # the customer's lateness is not the shop's breach


async def test_tracking_number_then_scan_moves_the_parcel_in_transit(stack: Stack) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND)
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    view = await customer(
        handle, "provide_tracking", carrier="Black Cat", tracking_number="BC12345"
    )
    assert view.status == "awaiting_shipment"
    [parcel] = view.shipments
    assert (parcel.direction, parcel.carrier, parcel.tracking_number) == (
        "inbound",
        "Black Cat",
        "BC12345",
    )
    # The customer has done their part: now the carrier's first scan is awaited.
    assert deadline_names(view) == {"transit"}
    assert near(
        deadline(view, "transit").due_at, entry(view, "tracking_provided").at + timedelta(days=10)
    )

    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    view = await reach_deadline(handle, "transit")
    assert near(deadline(view, "transit").due_at, entry(view, "in_transit").at + timedelta(days=10))
    await mails_arrive(stack.mail, case, "picked_up")
    assert stack.peers.refunds_for(case.case_id) == []  # no fast refund under this policy
    await stop(stack.client, handle)


async def test_no_scan_after_the_tracking_number_escalates_on_transit(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC777")
    due = await sleep_past(stack.env, handle, "transit")
    view = await reach_overdue(handle, due)
    assert view.status == "awaiting_shipment"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "transit"}
    assert overdue(view, "transit")  # still owed: listed past its due time
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    # A late scan still moves the case on.
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await stop(stack.client, handle)


async def test_transit_deadline_without_warehouse_receipt_escalates(stack: Stack) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND)
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC888")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await reach_deadline(handle, "transit")

    due = await sleep_past(stack.env, handle, "transit")
    view = await reach_overdue(handle, due)
    assert view.status == "in_transit"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "transit"}
    assert overdue(view, "transit")  # still owed: listed past its due time
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "transit overdue" in str(ops["Subject"])

    await signal(handle, "warehouse.received")
    view = await reach_deadline(handle, "inspection")
    assert view.status == "inspecting"
    assert kinds(view).count("escalated") == 1
    await stop(stack.client, handle)


async def test_seller_books_the_pickup_rebooks_once_then_escalates(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO)
    decision = case.decision
    assert decision.shipping_payer == "seller" and decision.review == "auto"
    assert not decision.returnless  # 990 is above the returnless limit
    handle = await stack.start(case)
    view = await reach_deadline(handle, "carrier_pickup")
    assert view.status == "awaiting_shipment"
    assert deadline_names(view) == {"carrier_pickup"}
    booked_at = entry(view, "pickup_booked").at
    assert near(deadline(view, "carrier_pickup").due_at, booked_at + timedelta(days=3))
    [pickup] = stack.peers.pickups_for(case.case_id)
    assert pickup["parcels"][0]["sku"] == "TEE-M-BLK"
    assert pickup["address"]["line1"] == "1 Main St"
    [parcel] = view.shipments
    first_tracking = parcel.tracking_number
    assert parcel.booked_by == "seller" and first_tracking
    await until(lambda: mail_names(stack.mail, case) == ["case_received", "case_approved"])

    await sleep_past(stack.env, handle, "carrier_pickup")
    await reach_kind(handle, "pickup_booked", count=2)
    view = await reach_deadline(handle, "carrier_pickup")
    keys = [r.idempotency_key for r in requests_for(stack.peers, "/pickups", case.case_id)]
    assert keys == [f"{case.case_id}:pickup.1", f"{case.case_id}:pickup.2"]
    assert len(stack.peers.pickups_for(case.case_id)) == 2
    [parcel] = view.shipments
    assert parcel.tracking_number and parcel.tracking_number != first_tracking
    rebooked_at = [e.at for e in view.timeline if e.kind == "pickup_booked"][-1]
    assert near(deadline(view, "carrier_pickup").due_at, rebooked_at + timedelta(days=3))
    await mails_arrive(stack.mail, case, "pickup_rebooked")
    assert not view.sla_breached and "escalated" not in kinds(view)

    due = await sleep_past(stack.env, handle, "carrier_pickup")
    view = await reach_overdue(handle, due)
    assert view.status == "awaiting_shipment" and view.deadlines == [due]
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "carrier_pickup"}
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    assert len(stack.peers.pickups_for(case.case_id)) == 2  # rebooked once only

    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await stop(stack.client, handle)


async def test_lost_parcel_after_pickup_is_refunded_and_escalated(stack: Stack) -> None:
    case = case_input(
        now=await stack.now(), policy=NO_FAST_REFUND, reason="defective", evidence=PHOTO
    )
    handle = await stack.start(case)
    await reach_deadline(handle, "carrier_pickup")
    await signal(handle, "carrier.picked_up")
    await reach_deadline(handle, "transit")
    assert stack.peers.refunds_for(case.case_id) == []

    await signal(handle, "carrier.exception", kind="lost")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    escalated = entry(view, "escalated")
    assert escalated.actor == "carrier" and "carrier claim" in escalated.message
    assert view.priority == "high"
    assert view.refund is not None and view.refund.status == "succeeded"
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "lost_in_transit")
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    assert "received" not in kinds(view)  # never inspected
    await stop(stack.client, handle)


async def test_lost_parcel_after_a_fast_refund_is_not_refunded_twice(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    assert case.decision.fast_refund
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC999")
    await signal(handle, "carrier.picked_up")
    await reach_kind(handle, "refund_succeeded")
    await signal(handle, "carrier.exception", kind="lost")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert entry(view, "escalated").actor == "carrier"
    [refund] = stack.peers.refunds_for(case.case_id)
    assert refund["reason"] == "fast_refund"
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)


async def test_parcel_damaged_in_transit_keeps_its_transit_deadline(stack: Stack) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND)
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC555")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    due = deadline(await reach_deadline(handle, "transit"), "transit").due_at

    await stack.env.sleep(timedelta(days=2))
    await signal(handle, "carrier.exception", kind="damaged")
    await reach_kind(handle, "parcel_damaged")
    view = await reach_deadline(handle, "transit")
    assert view.status == "in_transit"
    # The deadline runs from the pickup; a damage report doesn't move it.
    assert deadline(view, "transit").due_at == due
    assert "escalated" not in kinds(view) and stack.peers.refunds_for(case.case_id) == []

    await signal(handle, "warehouse.received")
    await reach(handle, "inspecting")
    await stop(stack.client, handle)


async def test_damage_reported_after_the_transit_breach_escalates_only_once(stack: Stack) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND)
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC556")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await reach_deadline(handle, "transit")
    due = await sleep_past(stack.env, handle, "transit")
    await reach_overdue(handle, due)

    await signal(handle, "carrier.exception", kind="damaged")
    await reach_kind(handle, "parcel_damaged")
    await stack.env.sleep(timedelta(days=1))
    view = await state(handle)
    assert view.status == "in_transit" and view.deadlines == [due]
    assert kinds(view).count("escalated") == 1
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    await signal(handle, "warehouse.received")
    await reach(handle, "inspecting")
    await stop(stack.client, handle)
