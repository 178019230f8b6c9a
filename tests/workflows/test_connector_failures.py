"""A partner's 4xx never kills a case (issue 9, point 4), with the real local HTTP peers.

For each connector the peer refuses once: the case notes the partner's answer, escalates and
stays alive. A blocking step (refund, pickup, shipment, interception) waits for an agent's
`retry`, which, the peer recovered, completes it with one side effect per Idempotency-Key.
A message or webhook refused is noted and escalated while the case goes on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle

from domain.models import CaseView, ReturnMethod
from domain.policy import Policy, ReturnsPolicy
from tests.conftest import Stack, until
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    customer,
    entry,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    ops_mails_arrive,
    reach,
    reach_deadline,
    reach_kind,
    reach_where,
    requests_for,
    send_back,
    signal,
    stop,
)

PHOTO = ["https://img.example/cracked.jpg"]
DROPOFFS = Policy(
    returns=ReturnsPolicy(
        return_methods=[ReturnMethod.PICKUP, ReturnMethod.SHIP, ReturnMethod.DROPOFF]
    )
)
CHEAP_MUG = [{"sku": "MUG-1", "name": "Mug", "category": "kitchen", "unit_price": "150.00"}]
ON_ITS_WAY = {"delivered_at": None, "tracking_number": "TRK1"}


async def running(client: Client, handle: WorkflowHandle[Any, CaseView]) -> bool:
    """Whether the workflow still runs (it never ends Failed for a partner's answer)."""
    described = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
        )
    )
    return bool(described.workflow_execution_info.status == WorkflowExecutionStatus.RUNNING.value)


def statuses(stack: Stack, path: str, case_id: str) -> list[int]:
    """The answers the peer gave to a case's calls on a path, in order."""
    return [r.status for r in requests_for(stack.peers, path, case_id)]


def keys(stack: Stack, path: str, case_id: str) -> set[str | None]:
    """The Idempotency-Keys a case's calls on a path carried."""
    return {r.idempotency_key for r in requests_for(stack.peers, path, case_id)}


async def escalated_alive(
    stack: Stack, handle: WorkflowHandle[Any, CaseView], actor: str, said: str
) -> CaseView:
    """Wait for the escalation of a partner's refusal; check the case noted it and lives."""
    view = await reach_kind(handle, "connector_failed")
    failed = entry(view, "connector_failed")
    assert failed.actor == actor and said in failed.message
    # Noted and escalated in the same step: the escalation follows the note.
    noted = kinds(view).index("connector_failed")
    escalations = [e for e in view.timeline[noted:] if e.kind == "escalated"]
    assert escalations and escalations[0].actor == actor and said in escalations[0].message
    await ops_mails_arrive(stack.mail, view.id)
    assert await running(stack.client, handle)
    return view


async def reach_refund(handle: WorkflowHandle[Any, CaseView], status: str) -> CaseView:
    """Wait (in real time) until the case's refund is in `status`."""
    return await reach_where(
        handle,
        lambda view: view.refund is not None and view.refund.status == status,
        lambda view: f"the refund of {view.id} never reached {status}: {view.refund}",
    )


async def test_a_refused_refund_waits_for_retry_and_pays_once(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO, items=CHEAP_MUG)
    stack.peers.fail_next("/refunds", 422, detail="card expired")
    handle = await stack.start(case)
    await escalated_alive(stack, handle, "payment", "card expired")
    # The live case is read before its timeline: the refund's status may show a moment later.
    view = await reach_refund(handle, "failed")
    assert view.status == "refund_pending"

    view = await act(handle, "retry", actor="agent-mei")
    assert entry(view, "retried").actor == "agent-mei"
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert statuses(stack, "/refunds", case.case_id) == [422, 200]
    assert keys(stack, "/refunds", case.case_id) == {f"{case.case_id}:refund"}
    assert len(stack.peers.refunds_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_a_refused_pickup_waits_for_retry_and_books_once(stack: Stack) -> None:
    case = case_input(now=await stack.now(), reason="defective", evidence=PHOTO)
    stack.peers.fail_next("/pickups", 422, detail="address not served")
    handle = await stack.start(case)
    view = await escalated_alive(stack, handle, "carrier", "address not served")
    assert view.status == "awaiting_shipment"

    await act(handle, "retry")
    view = await reach_deadline(handle, "carrier_pickup")
    assert statuses(stack, "/pickups", case.case_id) == [422, 200]
    assert keys(stack, "/pickups", case.case_id) == {f"{case.case_id}:pickup.1"}
    assert len(stack.peers.pickups_for(case.case_id)) == 1
    assert view.shipments[0].tracking_number is not None
    await stop(stack.client, handle)


async def test_a_refused_shipment_back_waits_for_retry_and_ships_once(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await send_back(handle)
    stack.peers.fail_next("/shipments", 422, detail="parcel too heavy")
    await signal(handle, "inspection.completed", result="fail", notes="Worn")
    view = await escalated_alive(stack, handle, "carrier", "parcel too heavy")
    assert view.status == "inspecting"

    await act(handle, "retry")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert statuses(stack, "/shipments", case.case_id) == [422, 200]
    assert keys(stack, "/shipments", case.case_id) == {f"{case.case_id}:ship_back"}
    assert len(stack.peers.shipments_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_a_refused_interception_waits_for_retry_and_intercepts_once(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="refund", order=ON_ITS_WAY)
    stack.peers.fail_next("/interceptions", 422, detail="parcel already out for delivery")
    handle = await stack.start(case)
    await escalated_alive(stack, handle, "carrier", "already out for delivery")

    await act(handle, "retry")
    await reach_deadline(handle, "interception")
    await signal(handle, "carrier.intercepted")
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert statuses(stack, "/interceptions", case.case_id) == [422, 200]
    assert keys(stack, "/interceptions", case.case_id) == {f"{case.case_id}:interception"}
    assert len(stack.peers.interceptions_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_an_interception_settled_by_the_carrier_needs_no_retry(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="refund", order=ON_ITS_WAY)
    stack.peers.fail_next("/interceptions", 422, detail="call us")
    handle = await stack.start(case)
    await escalated_alive(stack, handle, "carrier", "call us")
    # Sorted out by phone: the carrier reports the parcel stopped.
    await signal(handle, "carrier.intercepted")
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert statuses(stack, "/interceptions", case.case_id) == [422]
    await stop(stack.client, handle)


async def test_a_refused_webhook_is_escalated_and_the_case_goes_on(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    stack.peers.fail_next("/webhook", 422, detail="unknown event type", case_id=case.case_id)
    handle = await stack.start(case)
    await escalated_alive(stack, handle, "storefront", "unknown event type")
    view = await reach(handle, "awaiting_shipment")
    assert view.customer_actions == ["cancel", "provide_tracking"]
    await stop(stack.client, handle)


async def test_a_refused_sms_is_escalated_and_the_case_goes_on(stack: Stack) -> None:
    case = case_input(now=await stack.now(), customer={"channel": "sms"})
    stack.peers.fail_next("/sms", 422, detail="number blocked", case_id=case.case_id)
    handle = await stack.start(case)
    view = await escalated_alive(stack, handle, "messaging", "case_received")
    await reach(handle, "awaiting_shipment")
    await until(lambda: len(stack.peers.sms_for(case.case_id)) >= 1)
    # The gateway's own answer is on the timeline, for the agent who reaches the customer.
    assert "sms answered 422: number blocked" in entry(view, "connector_failed").message
    await stop(stack.client, handle)


async def test_a_refused_dropoff_waits_for_retry_and_books_once(stack: Stack) -> None:
    now = await stack.now()
    # A seller-fault return: the shop pays, and the customer chose the store over a pickup.
    case = case_input(
        now=now,
        policy=DROPOFFS,
        reason="defective",
        evidence=PHOTO,
        return_method="dropoff",
    )
    assert (case.decision.shipping_payer, case.decision.return_method) == ("seller", "dropoff")
    stack.peers.fail_next(
        "/dropoffs", 422, detail="no store near the customer", case_id=case.case_id
    )
    handle = await stack.start(case)
    view = await escalated_alive(stack, handle, "carrier", "no store near the customer")
    assert view.status == "awaiting_shipment"
    assert mail_names(stack.mail, case) == ["case_received"]  # no code to tell yet

    await act(handle, "retry")
    view = await reach_deadline(handle, "customer_shipment")
    assert statuses(stack, "/dropoffs", case.case_id) == [422, 200]
    assert keys(stack, "/dropoffs", case.case_id) == {f"{case.case_id}:dropoff"}
    assert len(stack.peers.dropoffs_for(case.case_id)) == 1
    [parcel] = view.shipments
    assert parcel.dropoff is not None and parcel.dropoff.chain == "7-ELEVEN"
    await mails_arrive(stack.mail, case, "case_approved")
    assert "The postage is on us." in mail_text(stack.mail, case, "case_approved")
    await stop(stack.client, handle)


async def test_a_refused_fast_refund_is_retried_while_the_parcel_travels(stack: Stack) -> None:
    # The fast refund runs alongside the lifecycle, which waits for the warehouse meanwhile:
    # the agent's retry must be answered when the refund is paid, not at the case's next step.
    case = case_input(now=await stack.now())
    assert case.decision.fast_refund
    stack.peers.fail_next("/refunds", 422, detail="card expired", case_id=case.case_id)
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC-FAST")
    await signal(handle, "carrier.picked_up")
    await escalated_alive(stack, handle, "payment", "card expired")
    view = await reach_refund(handle, "failed")
    assert view.status == "in_transit" and "retry" in view.agent_actions

    view = await asyncio.wait_for(act(handle, "retry", actor="agent-mei"), timeout=10)
    assert entry(view, "retried").actor == "agent-mei"
    view = await reach_refund(handle, "succeeded")
    # Still in transit: the lifecycle's own wait never moved.
    assert view.status == "in_transit" and "retry" not in view.agent_actions
    assert statuses(stack, "/refunds", case.case_id) == [422, 200]
    assert keys(stack, "/refunds", case.case_id) == {f"{case.case_id}:refund"}
    await mails_arrive(stack.mail, case, "refund_sent")
    assert "TWD 990.00" in mail_text(stack.mail, case, "refund_sent")
    await stop(stack.client, handle)
