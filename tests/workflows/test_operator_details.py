"""What operators read in the Temporal UI: current details, and a summary on every timer."""

from __future__ import annotations

import asyncio
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


async def timer_summaries(stack: Stack, handle: WorkflowHandle[Any, CaseView]) -> list[str]:
    """The summaries of the timers started so far, once at least one has started."""
    converter = stack.client.data_converter.payload_converter
    for _ in range(200):
        history = await handle.fetch_history()
        summaries = [
            converter.from_payload(event.user_metadata.summary, str)
            for event in history.events
            if event.HasField("timer_started_event_attributes")
        ]
        if summaries:
            return summaries
        await asyncio.sleep(0.05)
    raise AssertionError("no timer started")


async def test_every_timer_carries_a_summary(stack: Stack) -> None:
    # A case waiting for review, and one waiting for the customer's parcel: each has a timer.
    review = await stack.start(
        case_input(now=await stack.now(), items=OPENED_ITEM, reason="changed_mind")
    )
    shipment = await stack.start(case_input(now=await stack.now()))
    assert await timer_summaries(stack, review) == ["review — 1 business day"]
    assert await timer_summaries(stack, shipment) == ["customer_shipment_reminder — 3 days"]
