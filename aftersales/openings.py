"""Starting the workflows of cases whose open was written but never started.

The API commits a case (row, claims, restart input) before it starts the case's workflow. If
the start fails (Temporal down, the API killed in between) and the client never retries,
nothing else would start it: the case would sit in `open`, and its claims would refuse a new
open of the same item. The worker sweeps for such cases now and then and starts them under
their ID, as a replay of the open would. A workflow that is already running (slow to record
itself) is left be.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from api.errors import Problem
from api.temporal_calls import Start, start_case
from store import service

log = logging.getLogger(__name__)

# An open that is this old and still unrecorded did not get its workflow started: the API
# starts it within a second of writing it, and a running workflow records itself at once.
GRACE = timedelta(minutes=2)
EVERY_SECONDS = 30.0
BATCH = 50


class OpeningSweeper:
    """Starts the workflows of written-but-unstarted cases; one per worker process."""

    def __init__(
        self,
        *,
        engine: Engine,
        client: Client,
        task_queue: str,
        grace: timedelta = GRACE,
        every_seconds: float = EVERY_SECONDS,
    ) -> None:
        self.engine = engine
        self.client = client
        self.task_queue = task_queue
        self.grace = grace
        self.every_seconds = every_seconds

    async def run(self) -> None:
        """Sweep until cancelled."""
        while True:
            try:
                await self.sweep()
            except Exception:  # a DB hiccup must not end the loop; the next pass retries
                log.exception("sweeping unstarted cases failed")
            await asyncio.sleep(self.every_seconds)

    async def sweep(self, *, now: datetime | None = None) -> list[str]:
        """Start every case opened more than `grace` before `now` and never recorded; answer
        their IDs. Stops at the first Temporal failure: the next pass tries again."""
        cutoff = (now or datetime.now(UTC)) - self.grace
        starts = await asyncio.to_thread(self._unstarted, cutoff)
        started: list[str] = []
        for start in starts:
            try:
                await start_case(self.client, start, task_queue=self.task_queue)
            except Problem as problem:  # Temporal unreachable: it is the same for the rest
                log.warning("could not start case %s: %s", start.input.case_id, problem.detail)
                break
            log.info("started case %s, written but never started", start.input.case_id)
            started.append(start.input.case_id)
        return started

    def _unstarted(self, cutoff: datetime) -> list[Start]:
        with Session(self.engine) as session:
            stored = service.unstarted_openings(session, opened_before=cutoff, limit=BATCH)
            return [Start.from_opening(row) for row in stored]
