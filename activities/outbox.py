"""The outbox drainer: delivers the storefront webhook events the projection wrote.

It runs as an asyncio task in each worker process (DB work in threads). A projection that
wrote events wakes it (`wake`, safe from any thread; it waits `COALESCE_SECONDS` for more);
it also polls, so events a crashed worker left behind go out too. Each event is leased
atomically before it is posted (store.outbox.claim_outbox_events), so several drainers never
post it at the same time, and a case's events go out in order. Every attempt posts the same
body with the same Idempotency-Key (the event ID): the storefront sees each change once.

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

from sqlalchemy import Connection, Engine
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
from store import outbox
from store.outbox import Leased
from store.tables import utcnow

log = logging.getLogger(__name__)

# How often the drainer looks for due events without being woken (retries, crashed workers).
POLL_SECONDS = 1.0
BATCH = 20
# How long a woken drainer waits for more events before it leases them: a storefront hears of a
# change this much later, and the drainer's transactions are shared by the events of that moment.
COALESCE_SECONDS = 0.1
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
        coalesce_seconds: float = COALESCE_SECONDS,
        retry_after: Callable[[int], timedelta] = backoff,
    ) -> None:
        self.engine = engine
        # The wait after the n-th failed attempt (tests shorten it).
        self.retry_after = retry_after
        self.webhook = webhook
        self.client = client
        self.poll_seconds = poll_seconds
        self.coalesce_seconds = coalesce_seconds
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
                await self._drain()
            except Exception:
                log.exception("outbox drain failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken.wait(), self.poll_seconds)
                # Woken by a projection: the ones landing in the next moment join its batch,
                # one lease and one settle for all of them (under load, a transaction pair per
                # event cost more worker CPU than the posts).
                await asyncio.sleep(self.coalesce_seconds)

    async def _drain(self) -> None:
        """Deliver batches until none is due: each batch's settle leases the next one in the
        same transaction (a case's next event, a full batch's rest), one thread trip less
        per batch than claiming it apart."""
        events = await asyncio.to_thread(self._claim)
        while events:
            outcomes = await self._deliver_all(events)
            events = await asyncio.to_thread(self._settle, outcomes, claim_next=True)

    async def drain_once(self) -> int:
        """Deliver the events due now; answers how many were tried."""
        events = await asyncio.to_thread(self._claim)
        if not events:
            return 0
        await asyncio.to_thread(self._settle, await self._deliver_all(events))
        return len(events)

    async def _deliver_all(self, events: list[Leased]) -> list[Outcome]:
        # Posted at once; their outcomes are settled in one transaction for the whole batch:
        # a commit per event would cost more than the posts themselves.
        return list(await asyncio.gather(*(self._deliver(event) for event in events)))

    def _claim(self) -> list[Leased]:
        with self.engine.begin() as conn:
            return self._lease(conn)

    def _lease(self, conn: Connection) -> list[Leased]:
        return outbox.claim_outbox_events(
            conn, owner=self.owner, now=utcnow(), lease=self.lease, limit=BATCH
        )

    def _settle(self, outcomes: list[Outcome], *, claim_next: bool = False) -> list[Leased]:
        """Record the outcomes; with `claim_next`, lease the next due batch in the same
        transaction and answer it."""
        now = utcnow()
        with self.engine.begin() as conn:
            outbox.settle_delivered_outbox_events(
                conn,
                ids=[o.event.id for o in outcomes if o.status == "delivered"],
                owner=self.owner,
                now=now,
            )
            for outcome in outcomes:
                if outcome.status == "delivered":
                    continue
                if outcome.status is None:
                    outbox.release_outbox_event(
                        conn, id=outcome.event.id, owner=self.owner, retry_at=now + TELL_AGAIN
                    )
                    continue
                outbox.settle_outbox_event(
                    conn,
                    id=outcome.event.id,
                    owner=self.owner,
                    status=outcome.status,
                    now=now,
                    error=outcome.error,
                    retry_at=outcome.retry_at,
                )
            return self._lease(conn) if claim_next else []

    async def _deliver(self, event: Leased) -> Outcome:
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

    async def _give_up(self, event: Leased, answer: str) -> Outcome:
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

    event: Leased
    status: str | None
    error: str | None = None
    retry_at: datetime | None = None
