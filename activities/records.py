"""Projecting the case into the database: the record lists and the status page read, and the
storefront webhook events the outbox drainer delivers (written in the same transaction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from temporalio import activity

from activities import errors
from activities.inputs import ProjectCase
from domain.models import CaseView
from store import service
from store.db import session_scope
from store.tables import utcnow


def webhook_payload(
    view: CaseView,
    *,
    event_id: str,
    event_type: str,
    data: dict[str, Any],
    at: str,
    status: str | None = None,
    summary: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The body the storefront gets: the event, the status it happened in, and a summary of
    the case as the projection that wrote it left it (no timeline; `summary` when the caller
    has it already)."""
    case = summary if summary is not None else view.model_dump(mode="json", exclude={"timeline"})
    return {
        "id": event_id,
        "type": event_type,
        "case_id": view.id,
        "status": status or view.status.value,
        "occurred_at": at,
        "data": {"case": case, **data},
    }


class RecordActivities:
    """Writes of the case record; the only writer of a case's status."""

    def __init__(self, engine: Engine, *, written: Callable[[], None] | None = None) -> None:
        self.engine = engine
        # Called (from the activity's thread) after a projection with webhook events
        # committed: wakes the outbox drainer so delivery doesn't wait for its next poll.
        self.written = written

    @activity.defn
    def project_case(self, input: ProjectCase) -> None:
        """Apply the changed fields and new timeline entries, and queue the webhook events,
        in one transaction; a projection older than the stored one changes nothing."""
        now = utcnow()
        try:
            with session_scope(self.engine) as session:
                view = service.project_case(
                    session,
                    case_id=input.case_id,
                    revision=input.revision,
                    token=input.token,
                    changes=input.changes,
                    entries=input.entries,
                )
                if view is None:
                    return
                # One summary for every event of this projection: they all show the same case.
                summary = (
                    view.model_dump(mode="json", exclude={"timeline"}) if input.webhooks else None
                )
                for event in input.webhooks:
                    service.add_outbox_event(
                        session,
                        case_id=view.id,
                        event_id=event.event_id,
                        event_type=event.event_type,
                        payload=webhook_payload(
                            view,
                            event_id=event.event_id,
                            event_type=event.event_type,
                            data=event.data,
                            at=now.isoformat(),
                            status=event.status,
                            summary=summary,
                        ),
                        now=now,
                    )
        except service.ProjectionGap as err:
            # Retried (the pending activity shows why) until an operator restores the row:
            # failing the activity would fail the case.
            raise errors.unavailable(str(err)) from None
        if input.webhooks and self.written is not None:
            self.written()
