"""Projecting the case into the database: the record lists and the status page read, and the
storefront webhook events the outbox drainer delivers (written in the same transaction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from temporalio import activity

from activities import errors
from activities.inputs import ProjectCase
from activities.metrics import PROJECTION_FAILURES, PROJECTION_LAG
from store import projection
from store.tables import utcnow


def webhook_payload(
    summary: dict[str, Any],
    *,
    event_id: str,
    event_type: str,
    data: dict[str, Any],
    at: str,
    status: str | None = None,
) -> dict[str, Any]:
    """The body the storefront gets: the event, the status it happened in, and `summary`, the
    case's view fields (no timeline) as the projection that wrote it left them."""
    return {
        "id": event_id,
        "type": event_type,
        "case_id": summary["id"],
        "status": status or summary["status"],
        "occurred_at": at,
        "data": {"case": summary, **data},
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
            with self.engine.begin() as conn:
                summary = projection.apply_projection(
                    conn,
                    case_id=input.case_id,
                    revision=input.revision,
                    token=input.token,
                    changes=input.changes,
                    entries=input.entries,
                )
                if summary is None:
                    return
                # Every event of this projection shows the same case: the fields it stored.
                projection.queue_outbox_events(
                    conn,
                    events=[
                        {
                            "event_id": event_id,
                            "case_id": input.case_id,
                            "event_type": event.event_type,
                            "payload": webhook_payload(
                                summary,
                                event_id=event_id,
                                event_type=event.event_type,
                                data=event.data,
                                at=now.isoformat(),
                                status=event.status,
                            ),
                        }
                        for event in input.webhooks
                        for event_id in [event.event_id(input.case_id)]
                    ],
                    now=now,
                )
        except projection.ProjectionGap as err:
            PROJECTION_FAILURES.inc()
            # Retried (the pending activity shows why) until an operator restores the row:
            # failing the activity would fail the case.
            raise errors.unavailable(str(err)) from None
        except Exception:
            PROJECTION_FAILURES.inc()
            raise
        # Only a projection that wrote gets here: a stale one returned above.
        lag = (utcnow() - activity.info().scheduled_time).total_seconds()
        PROJECTION_LAG.observe(max(lag, 0.0))
        if input.webhooks and self.written is not None:
            self.written()
