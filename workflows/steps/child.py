"""A child case: a case of its own (a return, an exchange, a repair) that carries out what its
parent (a complaint) agreed with the customer, and the parent's wait for its outcome.

The child's workflow is started by its type's name (`domain.names.WORKFLOW_NAMES`), so no
case type imports the registry of all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ChildWorkflowHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.complaints import child_decision, child_request
    from domain.models import CaseOutcome, CaseStatus, CaseType
    from domain.names import WORKFLOW_NAMES, Actor, Kind
    from domain.opening import details, new_case_id, new_token, summary
    from workflows.case import Case, CaseInput
    from workflows.inbox import Accepts, Input


@dataclass
class ChildOutcome:
    """How a child case ended, as far as its parent cares (and its journal keeps)."""

    status: CaseStatus | None  # None: the child workflow failed
    resolved: bool = False


def child_input(case: Case, case_type: CaseType) -> CaseInput:
    """A new case of its own to carry out the resolution, linked to this one.

    Its ID and token come from the workflow's seeded randomness, journaled, so a replay or
    a continued run opens the same case; its status page lives beside this one's.
    """
    view = case.view
    case_id, token = case.drawn(lambda rng: [new_case_id(case_type, rng), new_token(rng)])
    now = case.now()
    request = child_request(case.input.request, case_type)
    return CaseInput(
        case_id=case_id,
        request=request,
        decision=child_decision(
            request,
            policy=case.policy,
            now=now,
            high_risk=view.decision.high_risk,
            parent_case_id=view.id,
        ),
        # The parent's copy already holds the order's season; applying it again changes
        # nothing, and keeps a child right should a parent ever carry the whole policy.
        policy=case.policy.for_order(request.order),
        token=token,
        status_url=f"{view.status_url.rsplit('/', 1)[0]}/{token}",
        opened_at=now,
        holidays=case.input.holidays,
        queue=view.queue,
        parent_case_id=view.id,
        priority=view.priority,
    )


async def run_child(
    case: Case, case_type: CaseType, interrupts: Accepts, on_interrupt: Callable[[Input], None]
) -> bool:
    """Open the child case and wait for it to end; True when it delivered its outcome.

    While it runs, the parent takes only `interrupts` (handed to `on_interrupt`, which may end
    the parent) and can't be cancelled. The child runs on this task queue with parent-close
    policy ABANDON: it is a case of its own, with promises to the customer (a pickup, a refund)
    that must not stop mid-step if the parent closes first.
    """
    rec, view = case.recorder, case.view
    child = child_input(case, case_type)
    # A continued run that fast-forwards past this child finds its outcome in the journal
    # (a case never continues while a child runs): it starts nothing.
    handle: ChildWorkflowHandle[Any, CaseOutcome] | None = None
    if not case.journal.replaying():
        handle = await workflow.start_child_workflow(
            WORKFLOW_NAMES[case_type].value,
            child,
            id=child.case_id,
            task_queue=workflow.info().task_queue,
            parent_close_policy=ParentClosePolicy.ABANDON,
            result_type=CaseOutcome,
            static_summary=summary(child.case_id, child.request, child.decision),
            static_details=details(
                child.case_id, child.request, child.decision, parent_case_id=view.id
            ),
        )
    noun = f"{case_type.value.title()} case {child.case_id}"
    view.child_case_ids.append(child.case_id)
    rec.add(
        Kind.CHILD_CASE_OPENED,
        Actor.SYSTEM,
        f"{noun} opened to carry out the resolution.",
        {"child_case_id": child.case_id},
    )
    case.locked = True
    try:
        await rec.set_status(
            CaseStatus.AWAITING_SHIPMENT,
            Kind.AWAITING_SHIPMENT,
            Actor.SYSTEM,
            f"{noun} takes the item back.",
            expect=interrupts,
        )
        outcome = await case.journal.remember(
            "child",
            ChildOutcome,
            lambda: _watch(case, handle, interrupts, on_interrupt),
            what="child case",
        )
    finally:
        case.locked = False
    if outcome.resolved:
        rec.add(
            Kind.CHILD_CASE_RESOLVED,
            Actor.SYSTEM,
            f"{noun} delivered its outcome.",
            {"child_case_id": child.case_id},
        )
        return True
    ended = outcome.status.value if outcome.status is not None else "failed"
    await rec.escalate(
        reason=f"{noun} ended {ended} without carrying out the resolution.", actor=Actor.SYSTEM
    )
    return False


async def _watch(
    case: Case,
    handle: ChildWorkflowHandle[Any, CaseOutcome] | None,
    interrupts: Accepts,
    on_interrupt: Callable[[Input], None],
) -> ChildOutcome:
    """Wait for the child to end, taking `interrupts` meanwhile (a task of its own)."""
    if handle is None:  # only ever started live; the journal answers otherwise
        return ChildOutcome(status=None)
    interrupted = case.spawn("child_interrupt", case.deadlines.wait_any(interrupts))
    await workflow.wait([interrupted, handle], return_when=asyncio.FIRST_COMPLETED)
    if interrupted.done():
        on_interrupt(interrupted.result())
    interrupted.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await interrupted
    try:
        result = handle.result()
    except ChildWorkflowError:
        return ChildOutcome(status=None)
    # The child's result says how it ended, and when it delivered its outcome.
    return ChildOutcome(status=result.status, resolved=result.resolved_at is not None)
