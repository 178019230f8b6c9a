"""Inbound webhooks: carriers report tracking events by tracking number, signed (DESIGN 6, 7)."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Header, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.service import RPCError, RPCStatusCode

from activities import signing
from api.cases import Accepted
from api.deps import SessionDep, SettingsDep, TemporalDep, reject_unstorable_input
from api.errors import Problem, field_errors, validation_problem
from domain.actions import EventType, IntegrationEvent
from domain.models import TERMINAL_STATUSES
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
    return Problem(401, "bad-signature", "The webhook signature is not valid.", detail)


@router.post(
    "/carrier",
    status_code=202,
    response_model=Accepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CarrierEvent.model_json_schema()}},
        }
    },
)
async def carrier_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: TemporalDep,
    signature: Annotated[str | None, Header(alias=signing.HEADER)] = None,
) -> Accepted:
    """A carrier tracking event, signed; a repeated `event_id` is accepted and ignored."""
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

    cases = service.cases_for_tracking(session, tracking_number=event.tracking_number)
    if not cases:
        raise Problem(
            404,
            "tracking-number-not-found",
            "No case has this tracking number.",
            f"No case knows tracking number {event.tracking_number}.",
        )
    # Usually one case; when several share the parcel (say, refund-only cases on one order)
    # each open one hears of it, and decides for itself whether it matters.
    open_cases = [c for c in cases if c.status not in {s.value for s in TERMINAL_STATUSES}]
    signalled = 0
    for case in open_cases or cases[:1]:
        try:
            await client.get_workflow_handle(case.id).signal("event", event.integration_event())
            signalled += 1
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    if not signalled:
        raise Problem(409, "case-ended", "The case has ended and takes no more events.")
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
