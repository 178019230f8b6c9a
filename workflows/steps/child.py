"""A child case: a case of its own (a return, an exchange, a repair) that carries out what its
parent (a complaint) agreed with the customer, and the parent's wait for its outcome.

The child's workflow is started by its type's name (`domain.names.WORKFLOW_NAMES`), so no
case type imports the registry of all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.complaints import child_decision, child_request
    from domain.models import CaseStatus, CaseType, CaseView
    from domain.names import WORKFLOW_NAMES, Actor, Kind
    from domain.opening import details, new_case_id, new_token, summary
    from workflows.case import Case, CaseInput
    from workflows.inbox import Accepts, Input


def child_input(case: Case, case_type: CaseType) -> CaseInput:
    """A new case of its own to carry out the resolution, linked to this one.

    Its ID and token come from the workflow's seeded randomness, so a replay opens the
    same case; its status page lives beside this one's.
    """
    view = case.view
    rng = workflow.random()
    case_id = new_case_id(case_type, rng)
    token = new_token(rng)
    request = child_request(case.input.request, case_type)
    return CaseInput(
        case_id=case_id,
        request=request,
        decision=child_decision(
            request,
            policy=case.policy,
            now=workflow.now(),
            high_risk=view.decision.high_risk,
            parent_case_id=view.id,
        ),
        policy=case.policy,
        token=token,
        status_url=f"{view.status_url.rsplit('/', 1)[0]}/{token}",
        opened_at=workflow.now(),
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
    handle = await workflow.start_child_workflow(
        WORKFLOW_NAMES[case_type].value,
        child,
        id=child.case_id,
        task_queue=workflow.info().task_queue,
        parent_close_policy=ParentClosePolicy.ABANDON,
        result_type=CaseView,
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
        interrupted = asyncio.create_task(case.deadlines.wait_any(interrupts))
        await workflow.wait([interrupted, handle], return_when=asyncio.FIRST_COMPLETED)
        if interrupted.done():
            on_interrupt(interrupted.result())
        interrupted.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await interrupted
        try:
            result: CaseView | None = handle.result()
        except ChildWorkflowError:
            result = None
    finally:
        case.locked = False
    if result is not None and result.resolved_at is not None:
        rec.add(
            Kind.CHILD_CASE_RESOLVED,
            Actor.SYSTEM,
            f"{noun} delivered its outcome.",
            {"child_case_id": child.case_id},
        )
        return True
    ended = result.status.value if result is not None else "failed"
    await rec.escalate(
        reason=f"{noun} ended {ended} without carrying out the resolution.", actor=Actor.SYSTEM
    )
    return False
