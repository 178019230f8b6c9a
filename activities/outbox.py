"""The outbox drainer: delivers the storefront webhook events the projection wrote.

It runs as an asyncio task in each worker process (DB work in threads). A projection that
wrote events wakes it at once (`wake`, safe from any thread); it also polls, so events a
crashed worker left behind go out too. Each event is leased atomically before it is posted
(store.service.claim_outbox_events), so several drainers never post it at the same time, and
a case's events go out in order. Every attempt posts the same body with the same
Idempotency-Key (the event ID): the storefront sees each change once.

A 2xx delivers it. A 5xx, timeout or refused connection is retried with the connector retry
policy's backoff, up to `CONNECTOR_ATTEMPTS`. A 4xx, a configuration error or the last retry
failing marks it failed and tells the case (the `webhook_failed` signal), which notes the
storefront's answer and escalates to a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities import errors
from activities.connectors import (
    Connector,
    ConnectorError,
    ConnectorRejected,
    ConnectorRetryable,
)
from activities.inputs import WebhookFailure
from activities.policy import CONNECTOR_ATTEMPTS, CONNECTOR_RETRY
from domain.names import Handler
from store import service
from store.db import session_scope
from store.tables import OutboxEvent, utcnow

log = logging.getLogger(__name__)

# How often the drainer looks for due events without being woken (retries, crashed workers).
POLL_SECONDS = 1.0
BATCH = 20
# Longer than one post can take (the connector's own timeout): a lease outliving its drainer
# lets another one take the event over.
LEASE_MARGIN = timedelta(seconds=30)
# A case that could not be told of a failure (Temporal unreachable) is told again this soon.
TELL_AGAIN = timedelta(seconds=5)


def backoff(attempts: int) -> timedelta:
    """The wait after the `attempts`-th failed attempt, as the connector retry policy waits."""
    initial = CONNECTOR_RETRY.initial_interval
    cap = CONNECTOR_RETRY.maximum_interval or initial
    wait = initial * (CONNECTOR_RETRY.backoff_coefficient ** max(attempts - 1, 0))
    return min(wait, cap)


class OutboxDrainer:
    """Posts due outbox events to the storefront webhook; one per worker process."""

    def __init__(
        self,
        *,
        engine: Engine,
        webhook: Connector,
        client: Client,
        poll_seconds: float = POLL_SECONDS,
        retry_after: Callable[[int], timedelta] = backoff,
    ) -> None:
        self.engine = engine
        # The wait after the n-th failed attempt (tests shorten it).
        self.retry_after = retry_after
        self.webhook = webhook
        self.client = client
        self.poll_seconds = poll_seconds
        self.owner = f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"
        self.lease = timedelta(seconds=webhook.timeout) + LEASE_MARGIN
        self._woken = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Look for due events now (callable from any thread)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._woken.set)

    async def run(self) -> None:
        """Drain until cancelled."""
        self._loop = asyncio.get_running_loop()
        while True:
            self._woken.clear()
            try:
                if await self.drain_once():
                    continue  # there may be more (a case's next event, a full batch)
            except Exception:
                log.exception("outbox drain failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.poll_seconds)

    async def drain_once(self) -> int:
        """Deliver the events due now; answers how many were tried."""
        events = await asyncio.to_thread(self._claim)
        if not events:
            return 0
        outcomes = await asyncio.gather(*(self._deliver(event) for event in events))
        # One transaction for the whole batch: a commit per event would cost more than the
        # posts themselves.
        await asyncio.to_thread(self._settle, [o for o in outcomes if o is not None])
        return len(events)

    def _claim(self) -> list[OutboxEvent]:
        with session_scope(self.engine) as session:
            return service.claim_outbox_events(
                session, owner=self.owner, now=utcnow(), lease=self.lease, limit=BATCH
            )

    def _settle(self, outcomes: list[Outcome]) -> None:
        with session_scope(self.engine) as session:
            service.settle_delivered_outbox_events(
                session,
                ids=[o.event.id or 0 for o in outcomes if o.status == "delivered"],
                owner=self.owner,
            )
            for outcome in outcomes:
                if outcome.status == "delivered":
                    continue
                if outcome.status is None:
                    service.release_outbox_event(
                        session,
                        id=outcome.event.id or 0,
                        owner=self.owner,
                        retry_at=utcnow() + TELL_AGAIN,
                    )
                    continue
                service.settle_outbox_event(
                    session,
                    id=outcome.event.id or 0,
                    owner=self.owner,
                    status=outcome.status,
                    error=outcome.error,
                    retry_at=outcome.retry_at,
                )

    async def _deliver(self, event: OutboxEvent) -> Outcome:
        try:
            await self.webhook.post("", event.payload, idempotency_key=event.event_id)
        except ConnectorRejected as err:
            return await self._give_up(
                event, f"{self.webhook.name} answered {err.status}: {err.detail}"
            )
        except ConnectorRetryable as err:
            if event.attempts + 1 >= CONNECTOR_ATTEMPTS:
                return await self._give_up(event, f"{err} (after {CONNECTOR_ATTEMPTS} attempts)")
            retry_at = utcnow() + self.retry_after(event.attempts + 1)
            return Outcome(event, "pending", errors.short(str(err)), retry_at)
        except ConnectorError as err:
            return await self._give_up(event, str(err))
        return Outcome(event, "delivered")

    async def _give_up(self, event: OutboxEvent, answer: str) -> Outcome:
        answer = errors.short(answer)
        failure = WebhookFailure(
            event_id=event.event_id, event_type=event.event_type, answer=answer
        )
        try:
            handle = self.client.get_workflow_handle(event.case_id)
            await handle.signal(Handler.WEBHOOK_FAILED.value, failure)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                # Temporal can't take the signal now: keep the event, tell the case later.
                log.warning("could not tell %s its webhook failed: %s", event.case_id, err)
                return Outcome(event, None)
            # The case's workflow has closed: there is nobody left to escalate to.
        return Outcome(event, "failed", answer)


@dataclass(frozen=True)
class Outcome:
    """How one attempt ended: `delivered`, `failed`, `pending` again at `retry_at`, or
    (status None) untried, given back for later."""

    event: OutboxEvent
    status: str | None
    error: str | None = None
    retry_at: datetime | None = None
