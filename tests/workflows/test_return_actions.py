"""What a return refuses and what it ignores: wrong-time actions, cancels, repeated events (3.7)."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateFailedError

from domain.actions import EventType
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    customer,
    entry,
    event,
    finish,
    kinds,
    mail_names,
    ops_mails_arrive,
    reach,
    reach_deadline,
    reach_kind,
    signal,
    state,
    stop,
)

OPENED_TEE = [{"sku": "TEE-M-BLK", "name": "T-shirt", "unit_price": "990.00", "opened": True}]


async def test_an_action_the_case_cant_take_now_is_refused_and_changes_nothing(
    stack: Stack,
) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    before = await reach_deadline(handle, "customer_shipment_reminder")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await act(handle, "approve")
    assert "can't take 'approve'" in str(refused.value.cause)
    with pytest.raises(WorkflowUpdateFailedError):
        await act(handle, "record_inspection", result="pass")
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "rate", score=5)
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "reply", message="hello?")
    assert await state(handle) == before
    # Validators refuse before anything is written: no update reaches the history.
    history = await handle.fetch_history()
    accepted = [
        e
        for e in history.events
        if e.HasField("workflow_execution_update_accepted_event_attributes")
    ]
    assert accepted == []
    await stop(stack.client, handle)


async def test_seller_booked_pickup_takes_no_tracking_number(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=["https://img/x.jpg"])
    handle = await stack.start(case)
    before = await reach_deadline(handle, "carrier_pickup")
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC1")
    assert await state(handle) == before
    await stop(stack.client, handle)


async def test_customer_cancels_while_awaiting_shipment(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    view = await customer(handle, "cancel")
    assert view.status == "cancelled"
    result = await finish(stack.env, handle, "cancelled")
    cancelled = entry(result, "cancelled")
    assert cancelled.actor == "customer"
    assert result.deadlines == []
    assert mail_names(stack.mail, case) == ["case_received", "case_approved", "case_cancelled"]
    assert stack.peers.refunds_for(case.case_id) == []


async def test_agent_cancels_during_review(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    await act(handle, "cancel", actor="agent-cy", reason="Duplicate of another case")
    result = await finish(stack.env, handle, "cancelled")
    assert entry(result, "cancelled").actor == "agent-cy"
    assert mail_names(stack.mail, case)[-1] == "case_cancelled"


async def test_cancel_after_the_parcel_is_in_transit_is_refused(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC4242")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await reach_deadline(handle, "transit")
    before = await reach_kind(handle, "refund_succeeded")  # the fast refund, paid alongside
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "cancel")
    with pytest.raises(WorkflowUpdateFailedError):
        await act(handle, "cancel")
    after = await state(handle)
    assert after.status == "in_transit" and kinds(after) == kinds(before)
    assert "case_cancelled" not in mail_names(stack.mail, case)
    await stop(stack.client, handle)


async def test_a_repeated_event_id_is_ignored(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC31337")
    picked_up = event("carrier.picked_up")
    await handle.signal("event", picked_up)
    await handle.signal("event", picked_up)
    await reach(handle, "in_transit")
    received = event("warehouse.received")
    for _ in range(3):
        await handle.signal("event", received)
    await reach_deadline(handle, "inspection")
    # The repeat of a pass is not a second inspection (nor a second refund).
    passed = event("inspection.completed", result="pass")
    await handle.signal("event", passed)
    await reach_deadline(handle, "follow_up")
    await handle.signal("event", passed)
    view = await state(handle)
    for kind in (
        EventType.CARRIER_PICKED_UP,
        EventType.WAREHOUSE_RECEIVED,
        EventType.INSPECTION_COMPLETED,
    ):
        assert kinds(view).count(kind.value) == 1, kind
    assert kinds(view).count("inspection_passed") == 1
    assert len(stack.peers.refunds_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_two_approvals_at_once_approve_once_and_refuse_the_other(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    outcomes = await asyncio.wait_for(
        asyncio.gather(
            act(handle, "approve", actor="agent-a"),
            act(handle, "approve", actor="agent-b"),
            return_exceptions=True,
        ),
        timeout=10,
    )
    refused = [o for o in outcomes if isinstance(o, WorkflowUpdateFailedError)]
    applied = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(applied) == 1 and len(refused) == 1, outcomes
    view = await reach_deadline(handle, "customer_shipment_reminder")
    assert kinds(view).count("approved") == 1
    assert mail_names(stack.mail, case).count("case_approved") == 1
    await stop(stack.client, handle)


async def test_a_cancel_sent_at_open_never_cancels_a_case_already_refunded(stack: Stack) -> None:
    case = case_input(
        now=await stack.now(),
        reason="defective",
        evidence=["https://img.example/x.jpg"],
        items=[{"sku": "MUG-1", "name": "Mug", "unit_price": "150.00"}],
    )
    assert case.decision.returnless
    handle = await stack.start(case)
    # Sent while the case is still open: let in, but by the time a step could take it the
    # refund is paid, so it is refused rather than ending a refunded case as "cancelled".
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "cancel")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved" and "cancelled" not in kinds(view)
    assert len(stack.peers.refunds_for(case.case_id)) == 1
    assert "case_cancelled" not in mail_names(stack.mail, case)
    await stop(stack.client, handle)


async def test_notes_assignment_and_manual_escalation_leave_the_step_alone(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    before = await reach_deadline(handle, "customer_shipment_reminder")
    await act(handle, "note", actor="agent-ed", message="Customer called about the label")
    view = await act(handle, "assign", actor="agent-ed", agent="agent-fay", queue="returns_vip")
    assert (view.assignee, view.queue) == ("agent-fay", "returns_vip")
    view = await act(handle, "escalate", actor="agent-fay", reason="VIP customer")
    assert view.priority == "high" and not view.sla_breached  # no deadline was missed
    assert kinds(view)[-3:] == ["note", "assigned", "escalated"]
    assert entry(view, "escalated").actor == "agent-fay"
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    assert view.status == "awaiting_shipment" and view.deadlines == before.deadlines
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC808")
    await stop(stack.client, handle)
