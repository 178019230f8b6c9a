"""A repair under warranty: free, picked up by the shop, diagnosed, repaired, sent back
(DESIGN 3.5), and the agent's diagnosis instead of the repair centre's event."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.calendar import BusinessCalendar
from domain.rules import add_months
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
    near,
    ops_mails_arrive,
    reach,
    reach_deadline,
    reach_kind,
    requests_for,
    shipment_keys,
    signal,
    sleep_past,
    stop,
    webhooks_arrive,
)
from tests.workflows.repairs import PARTS, complete, diagnose, repair_input, send_in


async def test_warranty_repair_end_to_end_is_free_and_dated(stack: Stack) -> None:
    case = repair_input(await stack.now())
    decision = case.decision
    assert case.case_id.startswith("P-")
    assert decision.review == "auto" and decision.shipping_payer == "seller"
    handle = await stack.start(case)

    # The shop books the pickup; the customer only waits for the courier.
    view = await reach_deadline(handle, "carrier_pickup")
    assert view.status == "awaiting_shipment"
    assert view.repair is not None and view.repair.diagnosis is None
    [pickup] = stack.peers.pickups_for(case.case_id)
    assert pickup["parcels"][0]["sku"] == "HP-200-BLK"
    await mails_arrive(stack.mail, case, "case_approved")
    assert "pick the parcel up at your address" in mail_text(stack.mail, case, "case_approved")
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC-1")

    view = await send_in(handle)
    assert view.status == "inspecting" and deadline_names(view) == {"diagnosis"}
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    received_at = entry(view, "received").at
    assert near(deadline(view, "diagnosis").due_at, calendar.add(received_at, "5bd"))
    await mails_arrive(stack.mail, case, "item_received")
    assert "repair it free of charge" in mail_text(stack.mail, case, "item_received")
    # Once the shop has the item, a cancel would strand it.
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "cancel")

    await diagnose(handle, parts=PARTS[:1])
    view = await reach_deadline(handle, "repair")
    assert view.status == "repairing" and deadline_names(view) == {"repair"}
    assert near(deadline(view, "repair").due_at, calendar.add(entry(view, "repairing").at, "5bd"))
    assert view.repair is not None and view.repair.diagnosis is not None
    assert view.repair.diagnosis.repairable and view.repair.diagnosis.cost == 0
    assert view.repair.diagnosis.parts == PARTS[:1]
    assert view.repair.quote_status is None  # a free repair is never quoted
    await mails_arrive(stack.mail, case, "repair_started")
    started = mail_text(stack.mail, case, "repair_started")
    assert "free of charge under your warranty" in started and "Left driver unit" in started

    await complete(handle)
    view = await reach_deadline(handle, "dispatch")
    assert view.status == "repairing" and deadline_names(view) == {"dispatch"}
    assert near(
        deadline(view, "dispatch").due_at, calendar.add(entry(view, "shipment_booked").at, "1bd")
    )
    assert view.repair is not None and view.repair.report is not None
    assert view.repair.report.qc_passed and view.repair.report.parts_replaced == PARTS[:1]
    # The customer's own item goes back, by the outbound machinery.
    [back] = stack.peers.shipments_for(case.case_id)
    assert back["items"][0]["sku"] == "HP-200-BLK"
    assert back["address"]["line1"] == "1 Main St"
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:return_repaired.1"]

    await signal(handle, "replacement.shipped", tracking_number="TRK-REPAIRED")
    await reach(handle, "replacement_shipped")
    view = await reach_deadline(handle, "transit")
    outbound = [s for s in view.shipments if s.direction == "outbound"]
    assert [s.tracking_number for s in outbound] == ["TRK-REPAIRED"]
    await mails_arrive(stack.mail, case, "replacement_shipped")
    shipped = mail_text(stack.mail, case, "replacement_shipped")
    assert "repaired and on its way back" in shipped and "TRK-REPAIRED" in shipped

    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    delivered_on = entry(view, "delivered").at.astimezone(calendar.zone).date()
    assert view.repair is not None and view.repair.outcome == "repaired"
    assert view.repair.warranty_until == add_months(delivered_on, 3)
    assert entry(view, "repair_warranty").data == {
        "warranty_until": view.repair.warranty_until.isoformat()
    }
    await mails_arrive(stack.mail, case, "repair_done")
    done = mail_text(stack.mail, case, "repair_done")
    assert view.repair.warranty_until.isoformat() in done
    assert "Replaced the left driver" in done and "Quality check: passed" in done

    await sleep_past(stack.env, handle, "follow_up")
    await sleep_past(stack.env, handle, "survey")
    result = await finish(stack.env, handle, "closed")
    assert kinds(result) == [
        "opened",
        "approved",
        "awaiting_shipment",
        "pickup_booked",
        "carrier.picked_up",
        "in_transit",
        "warehouse.received",
        "received",
        "repair.diagnosed",
        "repairing",
        "repair.completed",
        "shipment_booked",
        "replacement.shipped",
        "replacement_shipped",
        "carrier.delivered",
        "delivered",
        "repair_warranty",
        "resolved",
        "survey_expired",
        "closed",
    ]
    assert result.refund is None and not result.sla_breached
    assert stack.peers.refunds_for(case.case_id) == []
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    assert len(stack.peers.pickups_for(case.case_id)) == 1
    assert mail_names(stack.mail, case) == [
        "case_received",
        "case_approved",
        "picked_up",
        "item_received",
        "repair_started",
        "replacement_shipped",
        "repair_done",
        "survey",
    ]
    assert await webhooks_arrive(stack.peers, case.case_id, "case.closed") == [
        "case.open",
        "case.awaiting_shipment",
        "case.in_transit",
        "case.inspecting",
        "case.repairing",
        "case.replacement_shipped",
        "case.resolved",
        "case.closed",
    ]


async def test_agent_records_the_diagnosis_instead_of_the_event(stack: Stack) -> None:
    case = repair_input(await stack.now())
    handle = await stack.start(case)
    await reach_deadline(handle, "carrier_pickup")
    # Nothing to diagnose before the item arrives.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await act(handle, "record_diagnosis", repairable=True)
    assert "awaiting_shipment" in str(refused.value.cause)

    await send_in(handle)
    view = await act(
        handle,
        "record_diagnosis",
        repairable=True,
        cost="0",
        parts=["Hinge"],
        notes="Cracked hinge.",
        actor="agent-7",
    )
    assert view.status == "repairing"
    recorded = entry(view, "diagnosis_recorded")
    assert recorded.actor == "agent-7"
    assert recorded.data["parts"] == ["Hinge"] and recorded.data["repairable"] is True
    assert "repair.diagnosed" not in kinds(view)
    assert view.repair is not None and view.repair.diagnosis is not None
    assert view.repair.diagnosis.parts == ["Hinge"]
    assert view.repair.diagnosis.notes == "Cracked hinge."
    assert view.repair.diagnosis.cost == Decimal(0)
    # The diagnosis is taken once: a second one is refused.
    with pytest.raises(WorkflowUpdateFailedError):
        await act(handle, "record_diagnosis", repairable=False)
    await stop(stack.client, handle)


async def test_failed_quality_check_keeps_repairing_and_escalates(stack: Stack) -> None:
    case = repair_input(await stack.now())
    handle = await stack.start(case)
    await send_in(handle)
    await diagnose(handle)
    view = await reach_deadline(handle, "repair")
    due = deadline(view, "repair")

    await complete(handle, qc_passed=False)
    view = await reach_kind(handle, "escalated")
    assert view.status == "repairing" and deadline(view, "repair") == due
    assert view.priority == "high" and not view.sla_breached  # not a timer's breach
    assert view.repair is not None and view.repair.report is not None
    assert not view.repair.report.qc_passed
    await ops_mails_arrive(stack.mail, case.case_id)
    assert stack.peers.shipments_for(case.case_id) == []  # nothing goes out unchecked

    await complete(handle)
    view = await reach_deadline(handle, "dispatch")
    assert view.repair is not None and view.repair.report is not None
    assert view.repair.report.qc_passed
    assert len(stack.peers.shipments_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_repair_policy_sets_the_warranty_months(stack: Stack) -> None:
    policy = repair_input(await stack.now()).policy.model_copy(deep=True)
    policy.repairs.warranty_months = 6
    case = repair_input(await stack.now(), policy=policy)
    handle = await stack.start(case)
    await send_in(handle)
    await diagnose(handle)
    await reach_deadline(handle, "repair")
    await complete(handle)
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.shipped", tracking_number="TRK-6M")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    zone = BusinessCalendar.from_policy(policy).zone
    delivered_on = entry(view, "delivered").at.astimezone(zone).date()
    assert view.repair is not None and view.repair.warranty_until == add_months(delivered_on, 6)
    assert view.repair.warranty_until > delivered_on + timedelta(days=150)
    await stop(stack.client, handle)
