"""An item that can't be repaired (or was lost on its way in): an agent chooses a replacement
or a refund and the case carries it out (DESIGN 3.5 step 6)."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.models import CaseView
from tests.conftest import Stack
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    deadline_names,
    entry,
    finish,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    ops_mails_arrive,
    reach,
    reach_deadline,
    reach_kind,
    reach_overdue,
    requests_for,
    shipment_keys,
    signal,
    sleep_past,
    state,
    stop,
)
from tests.workflows.repairs import diagnose, repair_input, send_in
from workflows.case import CaseInput

NOTES = "The main board is cracked; no spare boards are made any more."


async def unrepairable(stack: Stack) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """A warranty repair whose item the repair centre can't fix, waiting for the agent."""
    case = repair_input(await stack.now())
    handle = await stack.start(case)
    await send_in(handle)
    await diagnose(handle, repairable=False, parts=[], notes=NOTES)
    await reach_deadline(handle, "review")
    return case, handle


async def test_unrepairable_item_is_refunded_once_in_full(stack: Stack) -> None:
    case, handle = await unrepairable(stack)
    view = await reach(handle, "awaiting_review")
    assert deadline_names(view) == {"review"}
    assert view.repair is not None and view.repair.diagnosis is not None
    assert not view.repair.diagnosis.repairable
    assert entry(view, "unrepairable").message == "The item can't be repaired."
    await mails_arrive(stack.mail, case, "unrepairable")
    told = mail_text(stack.mail, case, "unrepairable")
    assert NOTES in told and "refund what you paid" in told
    # The shop holds the item: no cancel now.
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "cancel")

    # Only a replacement or a refund settles it; anything else is refused and the case waits on.
    due = deadline(view, "review")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await act(handle, "propose", resolution="coupon", amount="100")
    assert "exchange" in str(refused.value.cause) and "refund" in str(refused.value.cause)
    view = await state(handle)
    assert view.status == "awaiting_review" and deadline(view, "review") == due

    view = await act(handle, "propose", resolution="refund", message="Sorry, refunding you.")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert view.repair is not None and view.repair.outcome == "refunded"
    assert view.refund is not None and view.refund.amount == 2490
    assert view.refund.status == "succeeded"
    chosen = entry(view, "resolution_chosen")
    assert (chosen.actor, chosen.message) == ("agent", "Sorry, refunding you.")
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("2490.00", "unrepairable")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert stack.peers.shipments_for(case.case_id) == []  # nothing goes back
    await mails_arrive(stack.mail, case, "refund_sent")
    assert "TWD 2,490.00" in mail_text(stack.mail, case, "refund_sent")
    assert "repairing" not in kinds(view) and "repair_warranty" not in kinds(view)

    await sleep_past(stack.env, handle, "follow_up")
    await sleep_past(stack.env, handle, "survey")
    result = await finish(stack.env, handle, "closed")
    assert kinds(result)[-9:] == [
        "repair.diagnosed",
        "unrepairable",
        "resolution_chosen",
        "refund_pending",
        "refund_requested",
        "refund_succeeded",
        "resolved",
        "survey_expired",
        "closed",
    ]
    assert len(stack.peers.refunds_for(case.case_id)) == 1
    assert mail_names(stack.mail, case) == [
        "case_received",
        "case_approved",
        "picked_up",
        "item_received",
        "unrepairable",
        "refund_sent",
        "survey",
    ]


async def test_unrepairable_item_is_replaced(stack: Stack) -> None:
    case, handle = await unrepairable(stack)
    view = await act(handle, "propose", resolution="exchange")
    view = await reach_deadline(handle, "dispatch")
    assert view.status == "inspecting"  # the warehouse's turn, out of the agents' queue
    assert view.repair is not None and view.repair.outcome == "replaced"
    [replacement] = stack.peers.shipments_for(case.case_id)
    assert replacement["items"][0]["sku"] == "HP-200-BLK"
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]

    await signal(handle, "replacement.shipped", tracking_number="TRK-NEW")
    await reach_deadline(handle, "transit")
    await mails_arrive(stack.mail, case, "replacement_shipped")
    assert "sent you a new one in its place" in mail_text(stack.mail, case, "replacement_shipped")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert view.refund is None and stack.peers.refunds_for(case.case_id) == []
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    assert view.repair is not None and view.repair.warranty_until is None
    assert "repair_done" not in mail_names(stack.mail, case)
    await stop(stack.client, handle)


async def test_replacement_out_of_stock_goes_back_to_the_agent(stack: Stack) -> None:
    case, handle = await unrepairable(stack)
    await act(handle, "propose", resolution="exchange")
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.out_of_stock")
    view = await reach_kind(handle, "escalated")
    view = await reach(handle, "awaiting_review")
    assert "replacement_out_of_stock" in kinds(view)
    await ops_mails_arrive(stack.mail, case.case_id)

    view = await act(handle, "propose", resolution="refund")
    view = await reach_deadline(handle, "follow_up")
    assert view.repair is not None and view.repair.outcome == "refunded"
    [refund] = stack.peers.refunds_for(case.case_id)
    assert refund["amount"] == "2490.00"
    assert len(stack.peers.shipments_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_no_choice_in_time_escalates_and_waits_for_the_agent(stack: Stack) -> None:
    _, handle = await unrepairable(stack)
    due = await sleep_past(stack.env, handle, "review")
    view = await reach_overdue(handle, due)
    assert view.status == "awaiting_review" and view.sla_breached
    assert entry(view, "escalated").data == {"timer": "review"}
    await act(handle, "propose", resolution="refund")
    view = await reach_deadline(handle, "follow_up")
    assert view.repair is not None and view.repair.outcome == "refunded"
    assert kinds(view).count("escalated") == 1
    await stop(stack.client, handle)


async def test_item_lost_on_its_way_in_is_settled_like_an_unrepairable_one(stack: Stack) -> None:
    case = repair_input(await stack.now())
    handle = await stack.start(case)
    await reach_deadline(handle, "carrier_pickup")
    await signal(handle, "carrier.picked_up")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.exception", kind="lost")
    view = await reach_deadline(handle, "review")
    assert view.status == "awaiting_review"
    assert entry(view, "unrepairable").actor == "carrier"
    assert view.repair is not None and view.repair.diagnosis is None
    await mails_arrive(stack.mail, case, "unrepairable")
    assert "lost the parcel" in mail_text(stack.mail, case, "unrepairable")
    await ops_mails_arrive(stack.mail, case.case_id)  # the carrier claim

    await act(handle, "propose", resolution="exchange")
    await reach_deadline(handle, "dispatch")
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]
    assert stack.peers.refunds_for(case.case_id) == []
    await stop(stack.client, handle)
