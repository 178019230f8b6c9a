"""An exchange's replacement: inspection, dispatch, delivery and their deadlines (DESIGN 3.3)."""

from __future__ import annotations

from datetime import timedelta

from domain.calendar import BusinessCalendar
from domain.policy import Policy
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    deadline,
    deadline_names,
    entry,
    finish,
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
    shipment_keys,
    signal,
    skip_to_friday_afternoon,
    sleep_past,
    state,
    stop,
    webhooks_arrive,
)

SAME_PRICE = [{"sku": "TEE-L-BLK", "quantity": 1, "unit_price": "990.00"}]
CHEAPER = [{"sku": "TEE-S-GRY", "quantity": 1, "unit_price": "690.00"}]


async def test_same_price_exchange_ships_the_replacement_and_refunds_nothing(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="exchange", exchange_for=SAME_PRICE)
    decision = case.decision
    assert case.case_id.startswith("X-")
    assert decision.review == "auto" and decision.shipping_payer == "customer"
    assert decision.refund_estimate.amount == 0 and not decision.advanced_exchange
    handle = await stack.start(case)
    await send_back(handle)
    assert shipment_keys(stack.peers, case.case_id) == []  # nothing goes out before inspection

    await signal(handle, "inspection.completed", result="pass", grade="A")
    view = await reach_deadline(handle, "dispatch")
    assert deadline_names(view) == {"dispatch"}
    [shipment] = stack.peers.shipments_for(case.case_id)
    assert shipment["items"] == [{"sku": "TEE-L-BLK", "quantity": 1, "unit_price": "990.00"}]
    assert shipment["address"]["line1"] == "1 Main St"
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]

    await signal(handle, "replacement.shipped", tracking_number="TRK-OUT-1")
    await reach(handle, "replacement_shipped")
    view = await reach_deadline(handle, "transit")
    assert deadline_names(view) == {"transit"}
    assert near(
        deadline(view, "transit").due_at, entry(view, "replacement_shipped").at + timedelta(days=10)
    )
    outbound = [s for s in view.shipments if s.direction == "outbound"]
    assert [(s.booked_by, s.tracking_number) for s in outbound] == [("seller", "TRK-OUT-1")]
    await mails_arrive(stack.mail, case, "replacement_shipped")

    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    await sleep_past(stack.env, handle, "follow_up")
    await sleep_past(stack.env, handle, "survey")
    result = await finish(stack.env, handle, "closed")
    assert kinds(result) == [
        "opened",
        "approved",
        "awaiting_shipment",
        "tracking_provided",
        "carrier.picked_up",
        "in_transit",
        "warehouse.received",
        "received",
        "inspection.completed",
        "inspection_passed",
        "shipment_booked",
        "replacement.shipped",
        "replacement_shipped",
        "carrier.delivered",
        "delivered",
        "resolved",
        "survey_expired",
        "closed",
    ]
    assert result.refund is None and not result.sla_breached
    assert stack.peers.refunds_for(case.case_id) == []
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    assert mail_names(stack.mail, case) == [
        "case_received",
        "case_approved",
        "picked_up",
        "item_received",
        "inspection_passed",
        "replacement_shipped",
        "survey",
    ]
    assert await webhooks_arrive(stack.peers, case.case_id, "case.closed") == [
        "case.open",
        "case.awaiting_shipment",
        "case.in_transit",
        "case.inspecting",
        "case.replacement_shipped",
        "case.resolved",
        "case.closed",
    ]


async def test_cheaper_replacement_refunds_the_difference_once_after_dispatch(
    stack: Stack,
) -> None:
    case = case_input(now=await stack.now(), type="exchange", exchange_for=CHEAPER)
    assert case.decision.refund_estimate.amount == 300
    handle = await stack.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    await reach_deadline(handle, "dispatch")
    # Nothing is refunded until the replacement is on its way.
    assert requests_for(stack.peers, "/refunds", case.case_id) == []

    await signal(handle, "replacement.shipped", tracking_number="TRK-OUT-2")
    view = await reach_kind(handle, "refund_succeeded")
    assert view.status == "replacement_shipped"
    assert view.refund is not None and view.refund.amount == 300
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("300.00", "exchange_difference")
    assert in_order(view, "replacement_shipped", "refund_requested", "refund_succeeded")

    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    await mails_arrive(stack.mail, case, "refund_sent")
    assert len(stack.peers.refunds_for(case.case_id)) == 1
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)


async def test_dispatch_deadline_runs_over_the_weekend_then_escalates(stack: Stack) -> None:
    friday = await skip_to_friday_afternoon(stack.env, Policy())
    case = case_input(now=await stack.now(), type="exchange", exchange_for=SAME_PRICE)
    handle = await stack.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    view = await reach_deadline(handle, "dispatch")
    requested_at = entry(view, "shipment_booked").at
    due = deadline(view, "dispatch")
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    assert near(due.due_at, calendar.add(requested_at, "1bd"))
    # Friday + 1bd = the next business day after the weekend (Monday, unless a holiday).
    due_day = due.due_at.astimezone(calendar.zone).date()
    assert due_day >= friday.date() + timedelta(days=3) and calendar.is_business_day(due_day)

    # Sunday evening: a calendar day has long passed, but not a business day.
    await stack.env.sleep(timedelta(days=2, hours=4))
    view = await state(handle)
    assert "escalated" not in kinds(view) and deadline_names(view) == {"dispatch"}

    await sleep_past(stack.env, handle, "dispatch")
    view = await reach_overdue(handle, due)
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "dispatch"}
    assert overdue(view, "dispatch")
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "dispatch overdue" in str(ops["Subject"])
    await webhooks_arrive(stack.peers, case.case_id, "case.escalated")
    # Still waiting for the warehouse: a late shipment moves the case on.
    await signal(handle, "replacement.shipped", tracking_number="TRK-LATE")
    view = await reach_deadline(handle, "transit")
    assert view.status == "replacement_shipped" and kinds(view).count("escalated") == 1
    assert len(stack.peers.shipments_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_repeated_replacement_shipped_moves_the_case_once(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="exchange", exchange_for=SAME_PRICE)
    handle = await stack.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    await reach_deadline(handle, "dispatch")

    first = await signal(handle, "replacement.shipped", tracking_number="TRK-ONCE")
    await handle.signal("event", first)  # the same report delivered twice
    await reach_deadline(handle, "transit")
    # The warehouse reports it again under a new event_id.
    await signal(handle, "replacement.shipped", tracking_number="TRK-ONCE")
    view = await reach_kind(handle, "replacement.shipped", count=2)
    assert view.status == "replacement_shipped"
    assert kinds(view).count("replacement_shipped") == 1
    assert deadline_names(view) == {"transit"}
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert kinds(view).count("replacement_shipped") == 1
    assert kinds(view).count("replacement.shipped") == 2  # each distinct report is on record
    assert mail_names(stack.mail, case).count("replacement_shipped") == 1
    types = await webhooks_arrive(stack.peers, case.case_id, "case.resolved")
    assert types.count("case.replacement_shipped") == 1
    assert len(stack.peers.shipments_for(case.case_id)) == 1
    assert stack.peers.refunds_for(case.case_id) == []
    await stop(stack.client, handle)


async def test_replacement_transit_deadline_escalates(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="exchange", exchange_for=SAME_PRICE)
    handle = await stack.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.shipped", tracking_number="TRK-SLOW")
    await reach_deadline(handle, "transit")

    due = await sleep_past(stack.env, handle, "transit")
    view = await reach_overdue(handle, due)
    assert view.status == "replacement_shipped"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "transit"}
    assert overdue(view, "transit")
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved" and kinds(view).count("escalated") == 1
    await stop(stack.client, handle)


async def test_failed_inspection_sends_no_replacement_and_ships_the_item_back(
    stack: Stack,
) -> None:
    case = case_input(now=await stack.now(), type="exchange", exchange_for=SAME_PRICE)
    handle = await stack.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="fail", notes="Worn and washed")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert "inspection_failed" in kinds(view) and "inspection_passed" not in kinds(view)
    assert "replacement_shipped" not in kinds(view)
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:ship_back"]
    [back] = stack.peers.shipments_for(case.case_id)
    assert back["items"][0]["sku"] == "TEE-M-BLK"  # the customer's own item, not the replacement
    assert stack.peers.refunds_for(case.case_id) == []
    got = await mails_arrive(stack.mail, case, "inspection_failed")
    assert "replacement_shipped" not in got
    await stop(stack.client, handle)
