"""The policy's routes: the dry run of a would-be case, and the simulator of a candidate policy
on the shop's own history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from api.cases import check_request, decide
from api.contract import AUTHED, WITH_BODY, problems
from api.deps import EngineDep, PolicyDep, Principal, SessionDep, require
from api.errors import validation_problem
from domain.models import CaseRequest, Decision
from domain.policy import Policy
from domain.simulation import (
    DEFAULT_FLIPS_LISTED,
    DEFAULT_MINUTES_PER_REVIEW,
    DEFAULT_SINCE,
    MAX_FLIPS_LISTED,
    MinutesPerReview,
    PeriodError,
    SimulationReport,
    period,
)
from store.simulation import simulate_period

router = APIRouter(prefix="/v1/policy", tags=["policy"])


@router.post("/evaluate", response_model=Decision, responses=problems(*AUTHED, *WITH_BODY))
def evaluate_policy(
    request: CaseRequest,
    session: SessionDep,
    policy: PolicyDep,
    _: Annotated[Principal, Depends(require("storefront", "agent"))],
) -> Decision:
    """Eligibility, rules fired, shipping payer, refund estimate and review for a would-be case."""
    # The same checks as opening it: without them a return with no reason reached the rules,
    # which raise on it (a 500).
    check_request(request, policy)
    return decide(session, request=request, policy=policy, now=datetime.now(UTC))


class SimulationRequest(BaseModel):
    """A candidate policy and the period of stored cases to decide again under it."""

    model_config = ConfigDict(extra="forbid")

    # The policy file's structure as JSON; keys left out take the built-in defaults, as in
    # the file.
    policy: Policy = Policy()
    since: Annotated[
        str,
        Field(
            max_length=40,
            description='"<N>d" (the N days before `until`) or an ISO date or datetime.',
        ),
    ] = DEFAULT_SINCE
    until: Annotated[
        str | None,
        Field(
            max_length=40,
            description="ISO date (the whole day counts) or datetime, excluded (default: now).",
        ),
    ] = None
    minutes_per_review: MinutesPerReview = DEFAULT_MINUTES_PER_REVIEW
    flips: Annotated[
        int,
        Field(
            ge=0,
            le=MAX_FLIPS_LISTED,
            # A count, never `true` or `false` (which lax validation reads as 1 and 0).
            strict=True,
            description="How many flipped cases to list, newest first.",
        ),
    ] = DEFAULT_FLIPS_LISTED


@router.post("/simulate", response_model=SimulationReport, responses=problems(*AUTHED, *WITH_BODY))
def simulate_policy(
    body: SimulationRequest,
    engine: EngineDep,
    _: Annotated[Principal, Depends(require("operator"))],
) -> SimulationReport:
    """Decide every case opened in the period again under the candidate policy and report
    the differences against what happened; read-only, no running case is touched."""
    try:
        start, end = period(body.since, body.until, now=datetime.now(UTC))
    except PeriodError as err:
        raise validation_problem(
            [{"field": err.field, "message": err.message, "type": "value_error"}]
        ) from err
    # A plain `def` route: FastAPI runs it on the threadpool, so the read never blocks the loop.
    with engine.connect() as conn:
        return simulate_period(
            conn,
            body.policy,
            start=start,
            end=end,
            minutes_per_review=body.minutes_per_review,
            flips_listed=body.flips,
        )
