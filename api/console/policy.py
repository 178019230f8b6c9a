"""The console's policy simulator page: a supervisor pastes a candidate policy and sees what
it would have changed on the shop's own history, with the same figures as
`POST /v1/policy/simulate` (store.simulation)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.console.auth import CheckedAgentDep, ConsoleAgent, ConsoleAgentDep
from api.console.pages import console_page
from api.deps import app_engine
from api.errors import SUPERVISOR_ONLY, Problem
from domain.policy import Policy, PolicyError, parse_policy
from domain.simulation import (
    DEFAULT_MINUTES_PER_REVIEW,
    DEFAULT_SINCE,
    MAX_MINUTES_PER_REVIEW,
    PeriodError,
    SimulationReport,
    period,
)
from store.simulation import simulate_period

router = APIRouter(tags=["console"], include_in_schema=False)
PATH = "/console/reports/policy"
# A policy file is a few dozen lines; this is far above any real one.
CANDIDATE_MAX = 100_000
# The page lists fewer flipped cases than the API's default: each shows its rules.
FLIPS_SHOWN = 25


def _supervisor(signed_in: ConsoleAgent) -> None:
    if not signed_in.agent.supervisor:
        raise Problem(
            403, SUPERVISOR_ONLY, "Only a supervisor can run the policy simulator.",
        )  # fmt: skip


def _money(amounts: dict[str, Decimal]) -> str:
    return "; ".join(f"{currency} {amount:,.2f}" for currency, amount in amounts.items()) or "0"


def _form(candidate: str, since: str, until: str, minutes: str) -> dict[str, Any]:
    return {"candidate": candidate, "since": since, "until": until, "minutes": minutes}


def _run(engine: Engine, candidate: Policy, start: datetime, end: datetime,
         minutes: int) -> SimulationReport:  # fmt: skip
    with engine.connect() as conn:
        return simulate_period(
            conn, candidate, start=start, end=end, minutes_per_review=minutes,
            flips_listed=FLIPS_SHOWN,
        )  # fmt: skip


@router.get(PATH, response_class=HTMLResponse)
async def simulator_page(signed_in: ConsoleAgentDep) -> Response:
    """The simulator's form, empty (the last 90 days, the default minutes per review)."""
    _supervisor(signed_in)
    form = _form("", DEFAULT_SINCE, "", str(DEFAULT_MINUTES_PER_REVIEW))
    return console_page("policy_simulator.html.j2", signed_in, {"form": form})


@router.post(PATH, response_class=HTMLResponse)
async def simulate(
    request: Request,
    signed_in: CheckedAgentDep,
    candidate: Annotated[str, Form(max_length=CANDIDATE_MAX)] = "",
    since: Annotated[str, Form(max_length=40)] = DEFAULT_SINCE,
    until: Annotated[str, Form(max_length=40)] = "",
    minutes_per_review: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The candidate's differences on the period's cases, or the form again saying what is
    wrong (422): the policy's key at fault, the period, the minutes."""
    _supervisor(signed_in)
    form = _form(candidate, since, until, minutes_per_review)

    def refused(field: str, message: str) -> Response:
        context = {"form": form, "error": {"field": field, "message": message}}
        return console_page("policy_simulator.html.j2", signed_in, context, 422)

    try:
        policy = parse_policy(candidate, source="candidate")
    except PolicyError as err:
        return refused("candidate", str(err))
    minutes = int(minutes_per_review) if minutes_per_review.strip().isdigit() else 0
    if not 1 <= minutes <= MAX_MINUTES_PER_REVIEW:
        return refused("minutes_per_review", f"a whole number from 1 to {MAX_MINUTES_PER_REVIEW}")
    try:
        start, end = period(since, until.strip() or None, now=datetime.now(UTC))
    except PeriodError as err:
        return refused(err.field, err.message)
    report = await run_in_threadpool(_run, app_engine(request), policy, start, end, minutes)
    context = {"form": form, "report": report, "money": _money}
    return console_page("policy_simulator.html.j2", signed_in, context)
