"""The delivery log of a case: every message sent (or tried) to its customer and operations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from api.contract import AUTHED, problems
from api.deps import Principal, SessionDep, require
from api.errors import CASE_NOT_FOUND, Problem
from store import service
from store.tables import Notification

router = APIRouter(prefix="/v1", tags=["notifications"])

CASE_ID_MAX = 32  # store.tables.Case.id


class NotificationView(BaseModel):
    """One notification: its deterministic ID (case:step:channel) and how delivery went."""

    id: str
    channel: str
    message: str
    locale: str
    recipient: str
    status: str
    attempts: int
    error: str | None = None
    created_at: datetime
    updated_at: datetime


class NotificationList(BaseModel):
    items: list[NotificationView]


def _utc(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time stored is UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _view(row: Notification) -> NotificationView:
    return NotificationView(
        id=row.id,
        channel=row.channel,
        message=row.message,
        locale=row.locale,
        recipient=row.recipient,
        status=row.status,
        attempts=row.attempts,
        error=row.error,
        created_at=_utc(row.created_at),
        updated_at=_utc(row.updated_at),
    )


@router.get(
    "/cases/{case_id}/notifications",
    response_model=NotificationList,
    responses=problems(*AUTHED, 404),
)
def list_notifications(
    case_id: str,
    session: SessionDep,
    _: Annotated[Principal, Depends(require("agent", "operator"))],
) -> NotificationList:
    """The case's delivery log, oldest first."""
    # An ID no case can have (too long, control characters PostgreSQL refuses) names none.
    unusable = len(case_id) > CASE_ID_MAX or not case_id.isprintable()
    if unusable or service.get_case(session, case_id=case_id) is None:
        raise Problem(404, CASE_NOT_FOUND, "No such case.", f"No case {case_id}.")
    return NotificationList(
        items=[_view(row) for row in service.deliveries(session, case_id=case_id)]
    )
