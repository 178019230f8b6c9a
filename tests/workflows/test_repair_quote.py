"""A repair out of warranty: the customer ships, a repair that costs something is quoted,
and the quote is accepted, declined or left unanswered (DESIGN 3.5 step 4)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.models import CaseView
from tests.conftest import Stack
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
    shipment_keys,
    signal,
    sleep_past,
    stop,
    webhooks_arrive,
)
from tests.workflows.repairs import PARTS, complete, diagnose, repair_input, send_in
from workflows.case import CaseInput


async def quoted(
    stack: Stack, *, sms_nudge: bool = False
) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """An out-of-warranty repair waiting for the customer's answer to a TWD 1,500 quote."""
    case = repair_input(await stack.now(), in_warranty=False)
    assert case.decision.shipping_payer == "customer" and case.decision.review == "auto"
    handle = await stack.start(case, sms_nudge=sms_nudge)
    await send_in(handle)
    await diagnose(handle, cost="1500", parts=PARTS, notes="Burnt-out driver after a drop.")
    await reach_deadline(handle, "quote_response")
    return case, handle


async def test_accepted_quote_is_charged_then_repaired_and_sent_back(stack: Stack) -> None:
    case, handle = await quoted(stack)
    assert stack.peers.pickups_for(case.case_id) == []  # out of warranty, the customer ships
    view = await reach(handle, "awaiting_customer")
    assert deadline_names(view) == {"quote_response"}
    sent_at = entry(view, "repair_quote").at
    assert near(deadline(view, "quote_response").due_at, sent_at + timedelta(days=7))
    assert view.repair is not None and view.repair.quote_status == "sent"
    assert view.repair.diagnosis is not None and view.repair.diagnosis.cost == Decimal(1500)
    await mails_arrive(stack.mail, case, "repair_quote")
    quote = mail_text(stack.mail, case, "repair_quote")
    assert "TWD 1,500.00" in quote and "Ear cushion" in quote and "Burnt-out driver" in quote
    assert "no longer under warranty" in quote
    # The shop holds the item: the customer answers the quote, a cancel would strand it.
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "cancel")

    view = await customer(handle, "accept")
    assert view.status == "repairing"
    assert view.repair is not None and view.repair.quote_status == "accepted"
    assert in_order(view, "repair_quote", "quote_accepted", "repairing")
    await webhooks_arrive(stack.peers, case.case_id, "case.charge_customer")
    [charge] = [
        e for e in stack.peers.webhook_events(case.case_id) if e["type"] == "case.charge_customer"
    ]
    data = charge["data"]
    assert (data["amount"], data["currency"], data["reason"]) == ("1500.00", "TWD", "repair_quote")
    await mails_arrive(stack.mail, case, "repair_started")
    assert "TWD 1,500.00, as you accepted" in mail_text(stack.mail, case, "repair_started")

    await complete(handle)
    await reach_deadline(handle, "dispatch")
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:return_repaired.1"]
    await signal(handle, "replacement.shipped", tracking_number="TRK-PAID")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert view.repair is not None and view.repair.warranty_until is not None
    await customer(handle, "rate", score=5, comment="Works again.")
    result = await finish(stack.env, handle, "closed")
    assert result.rating == 5
    assert result.refund is None and stack.peers.refunds_for(case.case_id) == []
    assert mail_names(stack.mail, case) == [
        "case_received",
        "case_approved",
        "picked_up",
        "item_received",
        "repair_quote",
        "repair_started",
        "replacement_shipped",
        "repair_done",
    ]
    assert await webhooks_arrive(stack.peers, case.case_id, "case.closed") == [
        "case.open",
        "case.awaiting_shipment",
        "case.in_transit",
        "case.inspecting",
        "case.awaiting_customer",
        "case.charge_customer",
        "case.repairing",
        "case.replacement_shipped",
        "case.resolved",
        "case.closed",
    ]


async def test_declined_quote_ships_the_item_back_unrepaired(stack: Stack) -> None:
    case, handle = await quoted(stack)
    view = await customer(handle, "decline")
    assert view.status == "inspecting"
    assert deadline_names(view) == {"dispatch"}
    assert view.repair is not None and view.repair.quote_status == "declined"
    assert view.repair.outcome == "returned_unrepaired"
    assert entry(view, "quote_declined").actor == "customer"
    [back] = stack.peers.shipments_for(case.case_id)
    assert back["items"][0]["sku"] == "HP-200-BLK"
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:return_unrepaired.1"]
    await mails_arrive(stack.mail, case, "repair_declined")
    assert "You've declined the quote" in mail_text(stack.mail, case, "repair_declined")

    await signal(handle, "replacement.shipped", tracking_number="TRK-ASIS")
    await reach_deadline(handle, "transit")
    await mails_arrive(stack.mail, case, "replacement_shipped")
    assert "on its way back to you, unrepaired" in mail_text(
        stack.mail, case, "replacement_shipped"
    )
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert view.repair is not None and view.repair.report is None
    assert view.repair.warranty_until is None  # nothing was repaired, so nothing is guaranteed
    assert "repairing" not in kinds(view) and "repair_warranty" not in kinds(view)
    assert "case.charge_customer" not in await webhooks_arrive(
        stack.peers, case.case_id, "case.resolved"
    )
    assert stack.peers.refunds_for(case.case_id) == []
    assert "repair_done" not in mail_names(stack.mail, case)
    await stop(stack.client, handle)


async def test_unanswered_quote_expires_into_the_declined_path(stack: Stack) -> None:
    case, handle = await quoted(stack)
    due = await sleep_past(stack.env, handle, "quote_response")
    view = await reach_deadline(handle, "dispatch")
    assert view.status == "inspecting"
    assert view.repair is not None and view.repair.quote_status == "expired"
    declined = entry(view, "quote_declined")
    assert declined.actor == "timer" and declined.at >= due.due_at
    assert "escalated" not in kinds(view) and not view.sla_breached  # the customer's deadline
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:return_unrepaired.1"]
    await mails_arrive(stack.mail, case, "repair_declined")
    assert "We didn't hear from you" in mail_text(stack.mail, case, "repair_declined")
    # Too late to accept now.
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "accept")

    await signal(handle, "replacement.shipped", tracking_number="TRK-LATE")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert "case.charge_customer" not in await webhooks_arrive(
        stack.peers, case.case_id, "case.resolved"
    )
    await stop(stack.client, handle)


async def test_a_repair_that_costs_nothing_out_of_warranty_is_not_quoted(stack: Stack) -> None:
    case = repair_input(await stack.now(), in_warranty=False)
    handle = await stack.start(case)
    await send_in(handle)
    await diagnose(handle, cost="0")
    view = await reach_deadline(handle, "repair")
    assert view.status == "repairing"
    assert view.repair is not None and view.repair.quote_status is None
    assert "repair_quote" not in mail_names(stack.mail, case)
    await mails_arrive(stack.mail, case, "repair_started")
    assert "free of charge" in mail_text(stack.mail, case, "repair_started")
    await stop(stack.client, handle)
