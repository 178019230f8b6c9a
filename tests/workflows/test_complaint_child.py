"""A resolution carried out by a child case of its own: a return, an exchange or a repair
(DESIGN 3.6 step 3), linked both ways and run to completion."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlmodel import Session
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.models import CaseView
from store import service
from tests.conftest import Stack
from tests.workflows.complaints import accepted
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
    reach,
    reach_deadline,
    requests_for,
    send_back,
    signal,
    stop,
)


async def child_of(
    stack: Stack, handle: WorkflowHandle[Any, CaseView]
) -> tuple[CaseView, WorkflowHandle[Any, CaseView]]:
    """The child case the complaint opened, once the complaint waits for it."""
    view = await reach(handle, "awaiting_shipment")
    [child_id] = view.child_case_ids
    child = stack.client.get_workflow_handle(child_id, result_type=CaseView)
    return view, child


async def parent_in_temporal(stack: Stack, workflow_id: str) -> tuple[str, str, str]:
    """The parent workflow ID Temporal records for a workflow, and its static summary/details."""
    described = await stack.client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=stack.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
        )
    )
    converter = stack.client.data_converter.payload_converter
    metadata = described.execution_config.user_metadata
    return (
        described.workflow_execution_info.parent_execution.workflow_id,
        converter.from_payload(metadata.summary, str),
        converter.from_payload(metadata.details, str),
    )


async def test_a_return_child_runs_to_completion_and_resolves_the_complaint(
    stack: Stack,
) -> None:
    case, handle = await accepted(stack, "return")
    view, child = await child_of(stack, handle)
    child_id = child.id
    assert child_id.startswith("R-") and len(child_id) == 10
    opened = entry(view, "child_case_opened")
    assert opened.data == {"child_case_id": child_id}
    assert deadline_names(view) == set()

    # Linked both ways: in the cases, in the records, and natively in Temporal.
    mine = await reach(child, "awaiting_shipment")
    assert mine.parent_case_id == case.case_id and mine.type == "return"
    assert mine.queue == "quality" and mine.reason == "defective"
    decision = mine.decision
    assert (decision.eligible, decision.review, decision.shipping_payer) == (True, "auto", "seller")
    assert decision.refund_estimate.amount == Decimal("990.00")
    assert decision.rules[0].id == "complaint_resolution"
    prefix = case.status_url.rsplit("/", 1)[0]
    assert mine.status_url.startswith(prefix + "/") and mine.status_url != case.status_url
    parent_id, summary, details = await parent_in_temporal(stack, child_id)
    assert parent_id == case.case_id
    assert summary.startswith(f"return {child_id} — order {case.request.order.id}")
    assert case.case_id in details
    with Session(stack.engine) as session:
        stored = service.get_case(session, case_id=child_id)
        assert stored is not None and stored.parent_case_id == case.case_id
        stored_parent = service.get_case(session, case_id=case.case_id)
        assert stored_parent is not None
        assert service.stored_view(stored_parent).child_case_ids == [child_id]

    # The customer can't cancel the complaint while its return runs.
    with pytest.raises(WorkflowUpdateFailedError):
        await customer(handle, "cancel")

    # The shop's pickup, the carrier, the warehouse: the child's own refund, once.
    await reach_deadline(child, "carrier_pickup")
    assert len(stack.peers.pickups_for(child_id)) == 1
    await send_back(child)
    await signal(child, "inspection.completed", result="pass", grade="A")
    result = await finish(stack.env, child, "closed")
    # The complaint follows up; the child closes as soon as its outcome is delivered.
    assert kinds(result)[-2:] == ["resolved", "closed"]
    assert "survey" not in mail_names(stack.mail, result)

    view = await reach_deadline(handle, "complaint_follow_up")
    assert view.status == "resolved"
    assert in_order(
        view, "child_case_opened", "awaiting_shipment", "child_case_resolved", "resolved"
    )
    [refund] = stack.peers.refunds_for(child_id)
    assert Decimal(refund["amount"]) == Decimal("990.00")
    assert len(requests_for(stack.peers, "/refunds", child_id)) == 1
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    assert view.refund is None
    await mails_arrive(stack.mail, case, "resolution_done")
    assert child_id in mail_text(stack.mail, case, "resolution_done")
    await stop(stack.client, handle)


async def test_an_exchange_child_sends_the_same_items_again(stack: Stack) -> None:
    case, handle = await accepted(stack, "exchange")
    _, child = await child_of(stack, handle)
    mine = await reach(child, "awaiting_shipment")
    assert mine.type == "exchange" and child.id.startswith("X-")
    assert [(x.sku, x.quantity) for x in mine.exchange_for] == [("TEE-M-BLK", 1)]
    assert mine.decision.refund_estimate.amount == 0
    await send_back(child)
    await signal(child, "inspection.completed", result="pass")
    await reach_deadline(child, "dispatch")
    await signal(child, "replacement.shipped", tracking_number="TCAT-12345678")
    await reach(child, "replacement_shipped")
    await reach_deadline(child, "transit")
    await signal(child, "carrier.delivered")
    await finish(stack.env, child, "closed")
    view = await reach_deadline(handle, "complaint_follow_up")
    assert "child_case_resolved" in kinds(view)
    assert stack.peers.refunds_for(child.id) == [] and stack.peers.refunds_for(case.case_id) == []
    await stop(stack.client, handle)


async def test_a_repair_child_repairs_for_free(stack: Stack) -> None:
    _case, handle = await accepted(stack, "repair")
    _, child = await child_of(stack, handle)
    mine = await reach(child, "awaiting_shipment")
    assert mine.type == "repair" and child.id.startswith("P-")
    assert mine.decision.in_warranty and mine.decision.shipping_payer == "seller"
    await reach_deadline(child, "carrier_pickup")
    await signal(child, "carrier.picked_up")
    await reach_deadline(child, "transit")
    await signal(child, "warehouse.received")
    await reach_deadline(child, "diagnosis")
    await signal(child, "repair.diagnosed", repairable=True, cost="0", parts=["Sleeve seam"])
    await reach_deadline(child, "repair")
    await signal(child, "repair.completed", work_done="Seam restitched", qc_passed=True)
    await reach_deadline(child, "dispatch")
    await signal(child, "replacement.shipped", tracking_number="TCAT-87654321")
    await reach_deadline(child, "transit")
    await signal(child, "carrier.delivered")
    await finish(stack.env, child, "closed")
    view = await reach_deadline(handle, "complaint_follow_up")
    assert "child_case_resolved" in kinds(view)
    assert stack.peers.refunds_for(child.id) == []
    await stop(stack.client, handle)


async def test_a_child_that_ends_without_its_outcome_reopens_the_complaint(stack: Stack) -> None:
    _case, handle = await accepted(stack, "return")
    _, child = await child_of(stack, handle)
    await reach_deadline(child, "carrier_pickup")
    # An agent stops the return before the carrier comes.
    await act(child, "cancel", reason="The customer would rather keep it.")
    await finish(stack.env, child, "cancelled")
    view = await reach_deadline(handle, "review")
    assert view.status == "awaiting_review"
    escalated = entry(view, "escalated")
    assert child.id in escalated.message and "cancelled" in escalated.message
    assert view.priority == "high"
    assert stack.peers.refunds_for(child.id) == []
    await stop(stack.client, handle)
