"""An offer to the customer (a refund, a quote, a resolution, a price difference) and the
wait for the answer."""

from __future__ import annotations

from typing import Unpack

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.messages import OfferFields
    from domain.models import CaseStatus, Deadline
    from domain.names import Actor, CustomerVerb, Message, Timer
    from workflows.case import Case
    from workflows.inbox import Accepts, Input

ACCEPT_OR_DECLINE = Accepts(customer=frozenset({CustomerVerb.ACCEPT, CustomerVerb.DECLINE}))


async def offer(
    case: Case,
    message: Message,
    *,
    answers: Accepts = ACCEPT_OR_DECLINE,
    timer: Timer = Timer.OFFER_RESPONSE,
    **args: Unpack[OfferFields],
) -> Input | None:
    """Put an offer to the customer and wait for the answer (nudged by SMS when slow); None
    when nobody answers."""
    deadlines = case.deadlines
    due_at = deadlines.due(timer)
    # Listed with the status, so the storefront's webhook already carries the deadline.
    deadlines.set(timer, due_at)
    await case.recorder.set_status(
        CaseStatus.AWAITING_CUSTOMER, message, Actor.SYSTEM, expect=answers
    )
    await case.recorder.notify(message, deadline=Deadline(name=timer, due_at=due_at), **args)
    return await deadlines.wait_answer(answers, timer, due_at, about=message)
