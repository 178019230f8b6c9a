"""An exchange's price difference: a dearer replacement is paid for first (DESIGN 3.3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    customer,
    deadline,
    deadline_names,
    entry,
    finish,
    in_order,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    near,
    reach,
    reach_deadline,
    requests_for,
    send_back,
    shipment_keys,
    signal,
    sleep_past,
    state,
    stop,
    webhooks_arrive,
)

DEARER = [{"sku": "TEE-XL-RED", "quantity": 1, "unit_price": "1290.00"}]


async def test_dearer_replacement_waits_for_the_difference_then_exchanges(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="exchange", exchange_for=DEARER)
    assert case.decision.refund_estimate.amount == 0
    handle = await stack.start(case)
    view = await reach_deadline(handle, "offer_response")
    assert view.status == "awaiting_customer"
    assert deadline_names(view) == {"offer_response"}
    asked_at = entry(view, "difference_due").at
    assert near(deadline(view, "offer_response").due_at, asked_at + timedelta(days=3))
    await mails_arrive(stack.mail, case, "difference_due")
    assert "TWD 300" in mail_text(stack.mail, case, "difference_due")
    # The customer pays at the storefront, which reports it; an "accept" is no payment.
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "accept")
    assert stack.peers.shipments_for(case.case_id) == []

    await stack.env.sleep(timedelta(days=1))
    await signal(handle, "customer.paid_difference", amount="300.00")
    view = await reach_deadline(handle, "customer_shipment_reminder")
    assert view.status == "awaiting_shipment"
    assert in_order(view, "difference_due", "customer.paid_difference", "difference_paid")
    assert entry(view, "difference_paid").message == "Paid TWD 300.00."

    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    await reach_deadline(handle, "dispatch")
    [shipment] = stack.peers.shipments_for(case.case_id)
    assert shipment["items"][0]["sku"] == "TEE-XL-RED"
    await signal(handle, "replacement.shipped", tracking_number="TRK-XL")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert view.refund is None and stack.peers.refunds_for(case.case_id) == []
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    await stop(stack.client, handle)


async def test_unpaid_difference_cancels_the_exchange(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="exchange", exchange_for=DEARER)
    handle = await stack.start(case)
    await reach_deadline(handle, "offer_response")
    await stack.env.sleep(timedelta(days=2))
    assert (await state(handle)).status == "awaiting_customer"

    await sleep_past(stack.env, handle, "offer_response")
    result = await finish(stack.env, handle, "cancelled")
    assert kinds(result) == ["opened", "approved", "difference_due", "cancelled"]
    cancelled = entry(result, "cancelled")
    assert (cancelled.actor, cancelled.message) == (
        "timer",
        "The price difference was not paid in time.",
    )
    assert result.deadlines == [] and result.refund is None
    assert stack.peers.refunds_for(case.case_id) == []
    assert stack.peers.shipments_for(case.case_id) == []
    assert stack.peers.pickups_for(case.case_id) == []
    assert mail_names(stack.mail, case) == ["case_received", "difference_due", "case_cancelled"]
    assert await webhooks_arrive(stack.peers, case.case_id, "case.cancelled") == [
        "case.open",
        "case.awaiting_customer",
        "case.cancelled",
    ]


async def test_paid_difference_is_refunded_when_the_original_fails_inspection(
    stack: Stack,
) -> None:
    case = case_input(now=await stack.now(), type="exchange", exchange_for=DEARER)
    handle = await stack.start(case)
    await reach_deadline(handle, "offer_response")
    await signal(handle, "customer.paid_difference")
    await send_back(handle)
    await signal(
        handle, "inspection.completed", result="fail", notes="Not the item sold", keep_item=True
    )
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert in_order(view, "inspection_failed", "refund_pending", "refund_succeeded", "resolved")
    # Only what the customer paid on top comes back; no replacement, and the shop keeps the item.
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("300.00", "exchange_refused")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert shipment_keys(stack.peers, case.case_id) == []
    await mails_arrive(stack.mail, case, "inspection_failed", "refund_sent")
    await stop(stack.client, handle)


async def test_returnless_dearer_replacement_still_needs_the_difference(stack: Stack) -> None:
    case = case_input(
        now=await stack.now(),
        type="exchange",
        reason="defective",
        evidence=["https://img.example/chip.jpg"],
        items=[{"sku": "MUG-1", "name": "Mug", "category": "kitchen", "unit_price": "150.00"}],
        exchange_for=[{"sku": "MUG-XL", "quantity": 1, "unit_price": "180.00"}],
    )
    assert case.decision.returnless
    handle = await stack.start(case)
    view = await reach_deadline(handle, "offer_response")
    assert view.status == "awaiting_customer"
    assert stack.peers.shipments_for(case.case_id) == []
    await mails_arrive(stack.mail, case, "difference_due")
    assert "TWD 30" in mail_text(stack.mail, case, "difference_due")

    await signal(handle, "customer.paid_difference")
    await reach_deadline(handle, "dispatch")
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]
    await signal(handle, "replacement.shipped", tracking_number="TRK-MUG-XL")
    await reach(handle, "replacement_shipped")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert "awaiting_shipment" not in kinds(view)
    assert stack.peers.pickups_for(case.case_id) == []
    assert stack.peers.refunds_for(case.case_id) == []
    await stop(stack.client, handle)
