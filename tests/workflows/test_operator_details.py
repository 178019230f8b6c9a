"""What operators read in the Temporal UI: current details, and a summary on every timer."""

from __future__ import annotations

from typing import Any

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle

from domain.models import CaseView
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import act, reach, reach_deadline

OPENED_ITEM = [
    {"sku": "TEE-M-BLK", "name": "T-shirt", "quantity": 1, "unit_price": "990.00", "opened": True}
]


async def details(handle: WorkflowHandle[Any, CaseView]) -> str:
    """The workflow's current details, as the UI shows them."""
    meta = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return meta.current_details


async def test_current_details_name_the_status_deadline_and_who_must_act(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_ITEM, reason="changed_mind")
    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    now = await details(handle)
    assert now.startswith("**awaiting_review** — next deadline: `review` at ")
    assert "waiting on: agent (`customer_service` queue)" in now

    await act(handle, "approve")
    await reach_deadline(handle, "customer_shipment_reminder")
    now = await details(handle)
    assert "**awaiting_shipment**" in now
    assert "waiting on: customer, carrier, warehouse" in now

    await act(handle, "cancel", reason="customer called")
    await reach(handle, "cancelled")
    assert "waiting on: nobody" in await details(handle)


async def test_every_timer_carries_a_summary(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_ITEM, reason="changed_mind")
    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    await act(handle, "approve")
    await reach_deadline(handle, "customer_shipment_reminder")
    history = await handle.fetch_history()
    converter = stack.client.data_converter.payload_converter
    summaries = [
        converter.from_payload(event.user_metadata.summary, str)
        for event in history.events
        if event.HasField("timer_started_event_attributes")
    ]
    assert "review — 1 business day" in summaries
    assert "customer_shipment_reminder — 3 days" in summaries
    assert all(" — " in summary for summary in summaries)
