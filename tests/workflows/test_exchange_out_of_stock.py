"""A replacement out of stock: a refund offered, taken, left unanswered or declined (DESIGN 3.3)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.models import CaseView
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    deadline_names,
    entry,
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
)
from workflows.case import CaseInput

SAME_PRICE = [{"sku": "TEE-L-BLK", "quantity": 1, "unit_price": "990.00"}]


async def out_of_stock(stack: Stack) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """An exchange whose original passed inspection and whose replacement is out of stock."""
    case = case_input(now=await stack.now(), type="exchange", exchange_for=SAME_PRICE)
    handle = await stack.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.out_of_stock")
    view = await reach_deadline(handle, "offer_response")
    assert view.status == "awaiting_customer" and deadline_names(view) == {"offer_response"}
    offered_at = entry(view, "out_of_stock_offer").at
    assert near(deadline(view, "offer_response").due_at, offered_at + timedelta(days=3))
    await mails_arrive(stack.mail, case, "out_of_stock_offer")
    assert "TWD 990" in mail_text(stack.mail, case, "out_of_stock_offer")
    assert stack.peers.refunds_for(case.case_id) == []
    return case, handle


async def test_out_of_stock_offer_accepted_refunds_in_full(stack: Stack) -> None:
    case, handle = await out_of_stock(stack)
    view = await customer(handle, "accept")
    assert view.status in {"refund_pending", "resolved"}
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert in_order(view, "out_of_stock_offer", "out_of_stock_refund", "refund_pending", "resolved")
    assert "replacement_shipped" not in kinds(view)
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "out_of_stock")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]
    await mails_arrive(stack.mail, case, "refund_sent")
    assert mail_names(stack.mail, case)[-2:] == ["out_of_stock_offer", "refund_sent"]
    assert "TWD 990.00" in mail_text(stack.mail, case, "refund_sent")
    await stop(stack.client, handle)


async def test_out_of_stock_offer_unanswered_refunds(stack: Stack) -> None:
    case, handle = await out_of_stock(stack)
    await sleep_past(stack.env, handle, "offer_response")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert entry(view, "out_of_stock_refund").actor == "system"
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "out_of_stock")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert not view.sla_breached  # the customer's silence is not the shop's breach
    offer = mail_text(stack.mail, case, "out_of_stock_offer")
    assert "Take a refund" in offer and "Wait:" in offer
    assert "we'll refund TWD 990.00 automatically" in offer
    await mails_arrive(stack.mail, case, "refund_sent")
    assert mail_names(stack.mail, case)[-2:] == ["out_of_stock_offer", "refund_sent"]
    assert "TWD 990.00" in mail_text(stack.mail, case, "refund_sent")
    await stop(stack.client, handle)


async def test_out_of_stock_offer_declined_dispatches_again(stack: Stack) -> None:
    case, handle = await out_of_stock(stack)
    view = await customer(handle, "decline")
    # The warehouse's turn again, not the customer's: back where the case waited before.
    assert view.status == "inspecting"
    assert entry(view, "offer_declined").actor == "customer"
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "cancel")  # the original is back with the shop
    # Waiting with no restock date named: the `restock` timer (14 days) from the choice.
    view = await reach_deadline(handle, "restock")
    assert deadline_names(view) == {"restock"}
    waited_at = entry(view, "waiting_for_stock").at
    assert near(deadline(view, "restock").due_at, waited_at + timedelta(days=14))
    await mails_arrive(stack.mail, case, "waiting_for_stock")
    assert "hasn't given us a restock date" in mail_text(stack.mail, case, "waiting_for_stock")
    assert kinds(view).count("shipment_booked") == 2
    assert shipment_keys(stack.peers, case.case_id) == [
        f"{case.case_id}:replacement.1",
        f"{case.case_id}:replacement.2",
    ]
    assert len(stack.peers.shipments_for(case.case_id)) == 2
    assert stack.peers.refunds_for(case.case_id) == []

    await signal(handle, "replacement.shipped", tracking_number="TRK-RESTOCK")
    await reach(handle, "replacement_shipped")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert "out_of_stock_refund" not in kinds(view)
    assert stack.peers.refunds_for(case.case_id) == []
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    await stop(stack.client, handle)


async def test_no_cancel_while_the_out_of_stock_offer_waits(stack: Stack) -> None:
    # The shop holds the original: a cancel would end the case with the item kept and nothing
    # refunded. The customer who wants out takes the refund (accept) instead.
    case, handle = await out_of_stock(stack)
    view = await state(handle)
    assert "cancel" not in view.customer_actions and "cancel" not in view.agent_actions
    assert {"accept", "decline"} <= set(view.customer_actions)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await customer(handle, "cancel")
    assert "can't take 'cancel'" in str(refused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await act(handle, "cancel", actor="agent-bo")
    view = await state(handle)
    assert view.status == "awaiting_customer" and deadline_names(view) == {"offer_response"}
    assert "cancelled" not in kinds(view)

    await customer(handle, "accept")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "out_of_stock")
    await mails_arrive(stack.mail, case, "refund_sent")
    assert "case_cancelled" not in mail_names(stack.mail, case)
    await stop(stack.client, handle)
