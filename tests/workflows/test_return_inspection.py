"""Receipt, inspection and the refund that follows (or precedes) it (DESIGN 3.2 5-6)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from domain.calendar import BusinessCalendar
from domain.models import CaseView
from domain.policy import Policy, ReturnsPolicy
from tests.conftest import Stack, until
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    deadline_names,
    entry,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    near,
    ops_mails_arrive,
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

NO_FAST_REFUND = Policy(returns=ReturnsPolicy(fast_refund=False))


async def shipped_and_received(
    stack: Stack, handle: WorkflowHandle[Any, CaseView], *, scan: bool = True
) -> CaseView:
    """Drive a customer-shipped return to the warehouse: tracking, pickup scan, receipt."""
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC2024")
    if scan:
        await signal(handle, "carrier.picked_up")
        await reach_deadline(handle, "transit")
    await signal(handle, "warehouse.received")
    return await reach_deadline(handle, "inspection")


async def test_fast_refund_at_first_scan_and_no_second_refund_on_pass(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    assert case.decision.fast_refund
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC1001")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await until(lambda: len(stack.peers.refunds_for(case.case_id)) == 1)
    view = await reach_kind(handle, "refund_succeeded")
    assert view.status == "in_transit"  # paid while the parcel is on its way
    assert view.refund is not None and view.refund.status == "succeeded"
    await mails_arrive(stack.mail, case, "refund_sent")

    await signal(handle, "warehouse.received")
    await reach_deadline(handle, "inspection")
    await signal(handle, "inspection.completed", result="pass", grade="A")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    order = kinds(view)
    assert order.index("fast_refund") < order.index("refund_succeeded") < order.index("received")
    assert order.index("received") < order.index("inspection_passed")
    assert order.count("refund_requested") == 1
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "fast_refund")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert mail_names(stack.mail, case) == [
        "case_received",
        "case_approved",
        "picked_up",
        "refund_sent",
        "item_received",
        "inspection_passed",
    ]
    await stop(stack.client, handle)


async def test_warehouse_receipt_as_the_first_scan_refunds_fast_then_inspects(
    stack: Stack,
) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await shipped_and_received(stack, handle, scan=False)
    view = await reach_kind(handle, "refund_succeeded")
    assert view.status == "inspecting" and "in_transit" not in kinds(view)
    assert len(stack.peers.refunds_for(case.case_id)) == 1
    await signal(handle, "inspection.completed", result="pass")
    view = await reach_deadline(handle, "follow_up")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)


async def test_high_risk_customer_is_refunded_only_after_inspection(stack: Stack) -> None:
    case = case_input(now=await stack.now(), prior_cases=3)
    decision = case.decision
    assert decision.high_risk and not decision.fast_refund and decision.review == "manual"
    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    await act(handle, "approve")
    view = await shipped_and_received(stack, handle)
    assert view.refund is None and stack.peers.refunds_for(case.case_id) == []

    await signal(handle, "inspection.completed", result="pass")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert kinds(view)[-5:] == [
        "inspection_passed",
        "refund_pending",
        "refund_requested",
        "refund_succeeded",
        "resolved",
    ]
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "inspection_passed")
    assert refund["order_id"] == case.request.order.id and refund["currency"] == "TWD"
    await stop(stack.client, handle)


async def test_failed_inspection_with_a_partial_amount_refunds_it_once(stack: Stack) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND)
    handle = await stack.start(case)
    await shipped_and_received(stack, handle)
    await signal(
        handle,
        "inspection.completed",
        result="fail",
        refund_amount="300.00",
        notes="Stained collar",
    )
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert entry(view, "inspection_failed").message == "Stained collar"
    assert view.refund is not None and view.refund.amount == 300
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("300.00", "inspection_failed_partial")
    text = mail_text(stack.mail, case, "inspection_failed")
    assert "Stained collar" in text and "TWD 300.00" in text
    # Not kept: the item goes back to the customer.
    [shipment] = stack.peers.shipments_for(case.case_id)
    assert shipment["items"][0]["sku"] == "TEE-M-BLK"
    assert [s.direction for s in view.shipments] == ["inbound", "outbound"]
    await stop(stack.client, handle)


async def test_failed_inspection_without_an_amount_ships_the_item_back_unrefunded(
    stack: Stack,
) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND)
    handle = await stack.start(case)
    await shipped_and_received(stack, handle)
    await signal(handle, "inspection.completed", result="fail", notes="Not the item we sold")
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is None and stack.peers.refunds_for(case.case_id) == []
    assert "refund_requested" not in kinds(view)
    assert len(stack.peers.shipments_for(case.case_id)) == 1
    assert entry(view, "shipment_booked").actor == "carrier"
    assert "can't issue a refund" in mail_text(stack.mail, case, "inspection_failed")
    assert "refund_sent" not in mail_names(stack.mail, case)
    await stop(stack.client, handle)


async def test_failed_inspection_kept_by_the_shop_ships_nothing(stack: Stack) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND)
    handle = await stack.start(case)
    await shipped_and_received(stack, handle)
    await signal(
        handle, "inspection.completed", result="fail", keep_item=True, notes="Parts missing"
    )
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is None and stack.peers.refunds_for(case.case_id) == []
    assert stack.peers.shipments_for(case.case_id) == []
    assert [s.direction for s in view.shipments] == ["inbound"]
    await stop(stack.client, handle)


async def test_failed_inspection_after_a_fast_refund_escalates_the_loss(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await shipped_and_received(stack, handle)
    await reach_kind(handle, "refund_succeeded")
    await signal(handle, "inspection.completed", result="fail", refund_amount="100.00")
    view = await reach_deadline(handle, "follow_up")
    escalated = entry(view, "escalated")
    assert escalated.actor == "warehouse" and "fast refund" in escalated.message
    assert view.priority == "high" and not view.sla_breached
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    # The fast refund stands; the partial amount is not paid on top of it.
    [refund] = stack.peers.refunds_for(case.case_id)
    assert refund["amount"] == "990.00"
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert len(stack.peers.shipments_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_agent_records_the_inspection(stack: Stack) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND)
    handle = await stack.start(case)
    await shipped_and_received(stack, handle)
    view = await act(
        handle,
        "record_inspection",
        actor="agent-dee",
        result="fail",
        grade="C",
        refund_amount="5000.00",
        keep_item=True,
        notes="Heavily worn",
    )
    # The update answers once the case has acted on it.
    assert view.status == "resolved"
    recorded = entry(view, "inspection_recorded")
    assert recorded.actor == "agent-dee"
    assert recorded.data["result"] == "fail" and recorded.data["grade"] == "C"
    assert entry(view, "inspection_failed").message == "Heavily worn"
    # A partial amount above what the items cost is capped at the refund due.
    [refund] = stack.peers.refunds_for(case.case_id)
    assert refund["amount"] == "990.00"
    assert stack.peers.shipments_for(case.case_id) == []
    await stop(stack.client, handle)


async def test_inspection_deadline_escalates_and_the_result_still_counts(stack: Stack) -> None:
    case = case_input(now=await stack.now(), policy=NO_FAST_REFUND)
    handle = await stack.start(case)
    view = await shipped_and_received(stack, handle)
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    received_at = entry(view, "received").at
    assert deadline_names(view) == {"inspection"}
    assert near(deadline(view, "inspection").due_at, calendar.add(received_at, "1bd"))

    due = await sleep_past(stack.env, handle, "inspection")
    view = await reach_overdue(handle, due)
    assert view.status == "inspecting"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "inspection"}
    # The breached deadline stays listed, so lists and NextDeadline show the case overdue.
    assert deadline_names(view) == {"inspection"}
    assert deadline(view, "inspection").due_at < await stack.now()
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "inspection overdue" in str(ops["Subject"])

    await stack.env.sleep(timedelta(days=2))
    assert (await state(handle)).status == "inspecting"
    await signal(handle, "inspection.completed", result="pass")
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert len(stack.peers.refunds_for(case.case_id)) == 1
    await stop(stack.client, handle)
