"""The follow-up of a resolved case: wait, send the survey, take a rating, or close without."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import Rate
    from domain.models import CaseStatus, Deadline
    from domain.names import Actor, CustomerVerb, Kind, Message, Timer
    from workflows.case import Case
    from workflows.inbox import Accepts, Input

RATE = Accepts(customer=frozenset({CustomerVerb.RATE}))


async def follow_up(case: Case, timer: Timer = Timer.FOLLOW_UP) -> None:
    """Resolved: wait, send the survey, and close with or without a rating."""
    rec, deadlines = case.recorder, case.deadlines
    if case.input.parent_case_id:
        # A child case (a complaint's return, exchange or repair) closes once its outcome is
        # delivered: its parent follows up with the customer, once, and waits for it to end.
        await rec.set_status(CaseStatus.RESOLVED, Kind.RESOLVED, Actor.SYSTEM)
        return
    # Listed with the status: one projection for both.
    due_at = deadlines.due(timer)
    deadlines.set(timer, due_at)
    await rec.set_status(CaseStatus.RESOLVED, Kind.RESOLVED, Actor.SYSTEM, expect=RATE)
    # A customer may rate before the survey goes out; then no survey is needed.
    rating = await deadlines.wait_until(RATE, timer, due_at)
    if rating is None:
        survey_due = deadlines.due(Timer.SURVEY)
        await rec.notify(Message.SURVEY, deadline=Deadline(name=Timer.SURVEY, due_at=survey_due))
        rating = await deadlines.wait_until(RATE, Timer.SURVEY, survey_due)
    record_rating(case, rating)


def record_rating(case: Case, rating: Input | None) -> None:
    """Note the customer's rating, or that the survey closed without one."""
    if isinstance(rating, Rate):
        case.view.rating = rating.score
        case.recorder.add(Kind.RATED, Actor.CUSTOMER, rating.comment, {"score": rating.score})
    else:
        rec = case.recorder
        rec.add(Kind.SURVEY_EXPIRED, Actor.TIMER, "No rating before the survey closed.")
