"""Opening and driving complaints in the workflow tests (DESIGN 3.6)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, time, timedelta
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.calendar import BusinessCalendar
from domain.complaints import opening_priority
from domain.models import CaseView
from domain.policy import Policy
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import act, customer, deadline_names, reach_deadline
from workflows.case import CaseInput

SEAM = "The seam on the left sleeve came apart after one wash."


def complaint_input(
    *,
    now: datetime,
    policy: Policy | None = None,
    complaint: dict[str, Any] | None = None,
    **overrides: Any,
) -> CaseInput:
    """A complaint about a delivered T-shirt, routed and prioritised the way the API opens it."""
    policy = policy or Policy()
    case = case_input(
        now=now,
        policy=policy,
        type="complaint",
        reason=None,
        description=SEAM,
        complaint={"category": "product_quality", "channel": "chat", **(complaint or {})},
        **overrides,
    )
    category = case.request.complaint.category if case.request.complaint else None
    assert category is not None
    return dataclasses.replace(
        case,
        queue=policy.complaints.routing[category],
        priority=opening_priority(case.request),
    )


async def open_complaint(
    stack: Stack, **overrides: Any
) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """Open a complaint and answer it waiting for its first response."""
    case = complaint_input(now=await stack.now(), **overrides)
    handle = await stack.start(case)
    view = await reach_deadline(handle, "first_response")
    assert view.status == "awaiting_review"
    return case, handle


async def answered(
    stack: Stack, **overrides: Any
) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """A complaint the agent has answered; it waits for a proposal under `review`."""
    case, handle = await open_complaint(stack, **overrides)
    await act(handle, "respond", actor="agent-mei", message="We're so sorry; we're on it.")
    view = await reach_deadline(handle, "review")
    assert deadline_names(view) == {"review"}
    return case, handle


async def proposed(
    stack: Stack, resolution: str, amount: str | None = None, **overrides: Any
) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """A complaint whose agent proposed a resolution; it waits for the customer's answer."""
    case, handle = await answered(stack, **overrides)
    fields: dict[str, Any] = {"resolution": resolution, "message": "Please accept our offer."}
    if amount is not None:
        fields["amount"] = amount
    view = await act(handle, "propose", actor="agent-mei", **fields)
    assert view.status == "awaiting_customer"
    view = await reach_deadline(handle, "offer_response")
    assert deadline_names(view) == {"offer_response"}
    return case, handle


async def accepted(
    stack: Stack, resolution: str, amount: str | None = None, **overrides: Any
) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """A complaint whose customer accepted the proposal."""
    case, handle = await proposed(stack, resolution, amount, **overrides)
    await customer(handle, "accept")
    return case, handle


async def skip_to_business_day(
    env: WorkflowEnvironment, policy: Policy, weekday: int, at: time
) -> datetime:
    """Move the shared clock to `at` shop time on the next business day that is `weekday`
    (0 = Monday). Every other case must have ended or been stopped: their timers would fire."""
    calendar = BusinessCalendar.from_policy(policy)
    now = (await env.get_current_time()).astimezone(calendar.zone)
    day = now.date() + timedelta(days=1)
    while day.weekday() != weekday or not calendar.is_business_day(day):
        day += timedelta(days=1)
    target = datetime.combine(day, at, tzinfo=calendar.zone)
    await env.sleep(target - now)
    return target
