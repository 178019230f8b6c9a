"""Advanced and returnless exchanges: the replacement goes out first, or alone (DESIGN 3.3)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.policy import Policy, ReturnsPolicy
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    customer,
    deadline_names,
    entry,
    finish,
    in_order,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    ops_mails_arrive,
    reach,
    reach_deadline,
    reach_kind,
    requests_for,
    send_back,
    shipment_keys,
    signal,
    sleep_past,
    stop,
    webhooks_arrive,
)

ADVANCED = Policy(returns=ReturnsPolicy(advanced_exchange=True))
SAME_PRICE = [{"sku": "TEE-L-BLK", "quantity": 1, "unit_price": "990.00"}]
CHEAP_MUG = [{"sku": "MUG-1", "name": "Mug", "category": "kitchen", "unit_price": "150.00"}]
PHOTO = ["https://img.example/crack.jpg"]


async def test_advanced_exchange_ships_first_then_takes_the_original_back(stack: Stack) -> None:
    case = case_input(
        now=await stack.now(), policy=ADVANCED, type="exchange", exchange_for=SAME_PRICE
    )
    assert case.decision.advanced_exchange and case.decision.fired("advanced_exchange")
    handle = await stack.start(case)
    # Right after approval, before anything comes back.
    view = await reach_deadline(handle, "dispatch")
    assert deadline_names(view) == {"dispatch"}
    assert in_order(view, "approved", "advanced_exchange", "shipment_booked")
    assert "awaiting_shipment" not in kinds(view)
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]
    [shipment] = stack.peers.shipments_for(case.case_id)
    assert shipment["items"][0]["sku"] == "TEE-L-BLK"

    await signal(handle, "replacement.shipped", tracking_number="TRK-ADV")
    await reach(handle, "replacement_shipped")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    # Now the original comes back, the customer shipping it as in any exchange.
    view = await reach_deadline(handle, "customer_shipment_reminder")
    assert view.status == "awaiting_shipment"
    assert in_order(view, "replacement_shipped", "delivered", "awaiting_shipment")
    # The customer has the replacement: a cancel now would keep both items, unpaid.
    assert view.customer_actions == ["provide_tracking"] and "cancel" not in view.agent_actions
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await customer(handle, "cancel")
    assert "can't take 'cancel'" in str(refused.value.cause)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert len(stack.peers.shipments_for(case.case_id)) == 1  # no second replacement
    assert stack.peers.refunds_for(case.case_id) == []
    assert "case.charge_customer" not in await webhooks_arrive(
        stack.peers, case.case_id, "case.resolved"
    )
    assert not view.sla_breached
    await stop(stack.client, handle)


async def test_advanced_exchange_original_never_returned_charges_the_customer(
    stack: Stack,
) -> None:
    case = case_input(
        now=await stack.now(), policy=ADVANCED, type="exchange", exchange_for=SAME_PRICE
    )
    handle = await stack.start(case)
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.shipped", tracking_number="TRK-ADV2")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    await reach_deadline(handle, "customer_shipment_reminder")
    await sleep_past(stack.env, handle, "customer_shipment_reminder")
    await mails_arrive(stack.mail, case, "shipment_reminder")

    await sleep_past(stack.env, handle, "customer_shipment")
    view = await reach_kind(handle, "escalated")
    assert entry(view, "escalated").data == {"timer": "customer_shipment"}
    assert view.sla_breached and view.priority == "high"
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"  # the customer keeps the item and pays for it
    assert "expired" not in kinds(view)
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    await mails_arrive(stack.mail, case, "original_not_returned")
    assert "TWD 990" in mail_text(stack.mail, case, "original_not_returned")
    assert "case_expired" not in mail_names(stack.mail, case)
    await webhooks_arrive(stack.peers, case.case_id, "case.charge_customer")
    [charge] = [
        e for e in stack.peers.webhook_events(case.case_id) if e["type"] == "case.charge_customer"
    ]
    assert (charge["data"]["amount"], charge["data"]["currency"]) == ("990.00", "TWD")
    assert stack.peers.refunds_for(case.case_id) == []
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    await stop(stack.client, handle)


async def test_high_risk_customer_never_gets_an_advanced_exchange(stack: Stack) -> None:
    case = case_input(
        now=await stack.now(),
        policy=ADVANCED,
        prior_cases=3,
        type="exchange",
        exchange_for=SAME_PRICE,
    )
    decision = case.decision
    assert decision.high_risk and not decision.advanced_exchange
    assert decision.review == "manual"
    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    view = await act(handle, "approve", actor="agent-ann")
    assert view.status == "awaiting_shipment"
    await reach_deadline(handle, "customer_shipment_reminder")
    assert "advanced_exchange" not in kinds(view)
    assert stack.peers.shipments_for(case.case_id) == []  # nothing goes out first
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    await reach_deadline(handle, "dispatch")
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]
    await stop(stack.client, handle)


async def test_returnless_exchange_ships_without_taking_the_item_back(stack: Stack) -> None:
    case = case_input(
        now=await stack.now(),
        type="exchange",
        reason="defective",
        evidence=PHOTO,
        items=CHEAP_MUG,
        exchange_for=[{"sku": "MUG-1", "quantity": 1, "unit_price": "150.00"}],
    )
    decision = case.decision
    assert decision.returnless and decision.review == "auto"
    assert decision.shipping_payer is None and not decision.advanced_exchange
    handle = await stack.start(case)
    view = await reach_deadline(handle, "dispatch")
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]
    await signal(handle, "replacement.shipped", tracking_number="TRK-MUG")
    await reach(handle, "replacement_shipped")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert kinds(view) == [
        "opened",
        "approved",
        "shipment_booked",
        "replacement.shipped",
        "replacement_shipped",
        "carrier.delivered",
        "delivered",
        "resolved",
    ]
    assert [s.direction for s in view.shipments] == ["outbound"]
    assert stack.peers.pickups_for(case.case_id) == []
    assert stack.peers.refunds_for(case.case_id) == []
    assert mail_names(stack.mail, case) == ["case_received", "case_approved", "replacement_shipped"]
    await stack.env.sleep(timedelta(minutes=1))
    await stop(stack.client, handle)


async def test_advanced_original_failing_inspection_escalates_without_a_refund(
    stack: Stack,
) -> None:
    case = case_input(
        now=await stack.now(), policy=ADVANCED, type="exchange", exchange_for=SAME_PRICE
    )
    handle = await stack.start(case)
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.shipped", tracking_number="TRK-ADV3")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    await send_back(handle)
    await signal(handle, "inspection.completed", result="fail", notes="Not our item")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    escalated = entry(view, "escalated")
    assert escalated.actor == "warehouse" and "failed inspection" in escalated.message
    assert in_order(view, "inspection_failed", "escalated", "resolved")
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    assert stack.peers.refunds_for(case.case_id) == []
    assert len(stack.peers.shipments_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_advanced_out_of_stock_refunds_only_once_the_original_is_back(
    stack: Stack,
) -> None:
    case = case_input(
        now=await stack.now(), policy=ADVANCED, type="exchange", exchange_for=SAME_PRICE
    )
    handle = await stack.start(case)
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.out_of_stock")
    await reach_deadline(handle, "offer_response")
    await customer(handle, "accept")
    # Nothing went out, so nothing is paid until the original comes back: as a return.
    view = await reach_deadline(handle, "customer_shipment_reminder")
    assert view.status == "awaiting_shipment"
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    await send_back(handle)
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    await signal(handle, "inspection.completed", result="pass")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert in_order(view, "out_of_stock_refund", "inspection_passed", "refund_succeeded")
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "out_of_stock")
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]
    await stop(stack.client, handle)


async def test_advanced_out_of_stock_original_never_returned_expires_unpaid(
    stack: Stack,
) -> None:
    case = case_input(
        now=await stack.now(), policy=ADVANCED, type="exchange", exchange_for=SAME_PRICE
    )
    handle = await stack.start(case)
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.out_of_stock")
    await reach_deadline(handle, "offer_response")
    await sleep_past(stack.env, handle, "offer_response")  # no answer: a refund, once it's back
    await reach_deadline(handle, "customer_shipment_reminder")
    await sleep_past(stack.env, handle, "customer_shipment_reminder")
    await sleep_past(stack.env, handle, "customer_shipment")
    result = await finish(stack.env, handle, "expired")
    assert kinds(result)[-2:] == ["awaiting_shipment", "expired"]
    assert stack.peers.refunds_for(case.case_id) == []
    assert "case.charge_customer" not in await webhooks_arrive(
        stack.peers, case.case_id, "case.expired"
    )
