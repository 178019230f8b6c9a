"""Projecting the case into the database: the record lists and the status page read."""

from __future__ import annotations

from sqlalchemy import Engine
from temporalio import activity

from activities.inputs import RecordCase
from store import service
from store.db import session_scope


class RecordActivities:
    """Writes of the case record; the only writer of a case's status."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def record_case(self, input: RecordCase) -> None:
        """Store the case and its new timeline entries, unless a newer revision is stored."""
        with session_scope(self.engine) as session:
            service.upsert_case(
                session, view=input.view, token=input.token, revision=input.revision
            )
