"""Inbound webhooks: carriers report tracking events by tracking number, signed (DESIGN 6, 7)."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from activities import signing
from api import temporal_calls
from api.cases import Accepted, case_ended
from api.contract import WITH_BODY, problems
from api.deps import EngineDep, SettingsDep, TemporalDep, reject_unstorable_input
from api.errors import (
    BAD_SIGNATURE,
    TRACKING_NUMBER_AMBIGUOUS,
    TRACKING_NUMBER_NOT_FOUND,
    Problem,
    field_errors,
    validation_problem,
)
from domain.actions import Escalate, EventType, IntegrationEvent
from store import service

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

# Spelled out (not derived) so the OpenAPI schema lists them inline; a carrier speaks for
# parcels only, warehouse and payment events need an integration key.
CarrierEventType = Literal[
    "carrier.picked_up",
    "carrier.in_transit",
    "carrier.delivered",
    "carrier.intercepted",
    "carrier.exception",
]
if set(get_args(CarrierEventType)) != {t for t in EventType if t.startswith("carrier.")}:
    raise RuntimeError("CarrierEventType is out of step with domain.actions.EventType")


class CarrierEvent(BaseModel):
    """A carrier's tracking event; the case is found by its tracking number."""

    model_config = ConfigDict(extra="forbid")

    event_id: Annotated[str, Field(min_length=1, max_length=200)]
    type: CarrierEventType
    occurred_at: datetime
    tracking_number: Annotated[str, Field(min_length=1, max_length=200)]
    data: dict[str, Any] = {}

    def integration_event(self) -> IntegrationEvent:
        """The event as the case workflow takes it, naming the parcel in its data."""
        return IntegrationEvent(
            event_id=self.event_id,
            type=EventType(self.type),
            occurred_at=self.occurred_at,
            data={**self.data, "tracking_number": self.tracking_number},
        )


def _unauthorized(detail: str) -> Problem:
    return Problem(401, BAD_SIGNATURE, "The webhook signature is not valid.", detail)


# Who the escalation of an ambiguous scan is recorded as, on each case's timeline.
WEBHOOK_ACTOR = "carrier-webhook"


def _matches(engine: Engine, tracking_number: str) -> tuple[list[str], list[str]]:
    """(the open cases a tracking number belongs to, every case it belongs to, newest first)."""
    with Session(engine) as session:
        open_ids = service.open_cases_for_tracking(session, tracking_number=tracking_number)
        every = [c.id for c in service.cases_for_tracking(session, tracking_number=tracking_number)]
    return open_ids, every or open_ids


def _already_escalated(engine: Engine, case_ids: list[str], scan: str) -> set[str]:
    with Session(engine) as session:
        return service.escalated_with(session, case_ids=case_ids, marker=scan)


async def _escalate(
    engine: Engine, client: Client, case_ids: list[str], event: CarrierEvent
) -> None:
    """Escalate each case a scan matched, so a person decides whose parcel it is.

    A carrier resends a scan it got no 2xx for: each resend answers the same 409, and a case
    already escalated for this scan (its event ID is in the reason) is not escalated again.
    """
    scan = f"({event.type}, event {event.event_id})"
    reason = (
        f"A carrier scan {scan} for tracking number {event.tracking_number} matches "
        f"{len(case_ids)} open cases; it moved none of them. "
        "Check which case the parcel belongs to."
    )
    done = await run_in_threadpool(_already_escalated, engine, case_ids, scan)
    case_ids = [case_id for case_id in case_ids if case_id not in done]
    action = Escalate(action="escalate", reason=reason, actor=WEBHOOK_ACTOR)
    results = await asyncio.gather(
        *(
            temporal_calls.update(client, case_id, temporal_calls.UPDATE_ACTION, action)
            for case_id in case_ids
        ),
        return_exceptions=True,
    )
    for result in results:
        # A case that ended meanwhile refuses (409): nothing to escalate there. Temporal
        # being unreachable is the carrier's cue to retry.
        if isinstance(result, Problem) and result.status == 503:
            raise result
        if isinstance(result, BaseException) and not isinstance(result, Problem):
            raise result


@router.post(
    "/carrier",
    status_code=202,
    response_model=Accepted,
    # No bearer key: the signature is the credential (a bad one is the 401).
    responses=problems(*WITH_BODY, 401, 404, 409, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CarrierEvent.model_json_schema()}},
        }
    },
)
async def carrier_webhook(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    client: TemporalDep,
    signature: Annotated[str | None, Header(alias=signing.HEADER)] = None,
) -> Accepted:
    """A carrier tracking event, signed; a repeated `event_id` is accepted and ignored.

    A tracking number that more than one open case holds moves none of them: each is
    escalated for a person to sort out, and the answer is 409 `tracking-number-ambiguous`.
    """
    # The signature covers the raw bytes, so the body is read (not parsed) before it is checked.
    body = await request.body()
    if not signature:
        raise _unauthorized(f"Send {signing.HEADER}: t=<unix seconds>,v1=<hex HMAC-SHA256>.")
    if not signing.verify(settings.carrier_webhook_secret, body, signature, now=int(time.time())):
        raise _unauthorized(
            "The signature does not match the body, or its timestamp is more than "
            f"{signing.DEFAULT_TOLERANCE} seconds from now."
        )
    event = _parse(body)
    await reject_unstorable_input(request)
    try:
        event.integration_event().parsed()
    except ValidationError as err:
        raise validation_problem(field_errors(err.errors(), prefix=("data",))) from err

    open_ids, every = await run_in_threadpool(_matches, engine, event.tracking_number)
    if not every:
        raise Problem(
            404,
            TRACKING_NUMBER_NOT_FOUND,
            "No case has this tracking number.",
            f"No case knows tracking number {event.tracking_number}.",
        )
    if len(open_ids) > 1:
        # One parcel can't be on several cases: moving them all paid a refund on each.
        await _escalate(engine, client, open_ids, event)
        raise Problem(
            409,
            TRACKING_NUMBER_AMBIGUOUS,
            "This tracking number matches more than one open case.",
            f"Tracking number {event.tracking_number} matches {len(open_ids)} open cases; "
            "none was moved, each was escalated.",
        )
    # The one open case; with none open, the newest case (its workflow may still be
    # finishing: a finished one answers that the case has ended).
    target = open_ids[0] if open_ids else every[0]
    if not await temporal_calls.signal(
        client, target, temporal_calls.SIGNAL_EVENT, event.integration_event()
    ):
        raise case_ended()
    return Accepted(event_id=event.event_id)


def _parse(body: bytes) -> CarrierEvent:
    """The body as a carrier event; 422 naming each field at fault."""
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as err:
        raise validation_problem(
            [{"field": "body", "message": "not valid JSON", "type": "json_invalid"}]
        ) from err
    try:
        return CarrierEvent.model_validate(raw)
    except ValidationError as err:
        raise validation_problem(field_errors(err.errors(), body=raw)) from err
