"""The outbox drainer's statements: lease due webhook events, then record each attempt.

Statuses (`OutboxEvent.status`): pending (to post, maybe after a backoff), delivered (a 2xx),
failed (a 4xx, a configuration error, or the retries ran out; the case was told).

Core statements on a connection, built once: the drainer runs after every projection that
wrote events, and through ORM objects its lease and settle cost about as much worker CPU as
the projection itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, DateTime, alias, bindparam, exists, func, or_, select, update

from store.tables import OutboxEvent, core_table

OUTBOX = core_table(OutboxEvent)
_O = OUTBOX.c


@dataclass(frozen=True)
class Leased:
    """An event this drainer holds the lease of: what posting it takes."""

    id: int
    event_id: str
    case_id: str
    event_type: str
    # The JSON body posted, fixed when the event was written: every attempt sends the same.
    payload: dict[str, Any]
    # Attempts before this one.
    attempts: int


_earlier = alias(OUTBOX)
_FREE = or_(_O.lease_until.is_(None), _O.lease_until < bindparam("now"))
_DUE = (
    select(_O.id)
    .where(
        _O.status == "pending",
        _O.next_attempt_at <= bindparam("now"),
        _FREE,
        # Only the oldest pending event of each case: its events reach the storefront in order.
        ~exists().where(
            _earlier.c.case_id == _O.case_id,
            _earlier.c.status == "pending",
            _earlier.c.id < _O.id,
        ),
    )
    .order_by(_O.id)
    .limit(bindparam("limit"))
)
# One statement, atomic per row: of two drainers racing for a row, one update matches it and
# the other's doesn't (it is no longer free).
_LEASE = (
    update(OUTBOX)
    .where(_O.id.in_(bindparam("ids", expanding=True)), _O.status == "pending", _FREE)
    .values(lease_until=bindparam("until"), lease_owner=bindparam("owner"))
    .returning(_O.id, _O.event_id, _O.case_id, _O.event_type, _O.payload, _O.attempts)
)
_HELD = (_O.lease_owner == bindparam("owner"), _O.status == "pending")
_DELIVERED = (
    update(OUTBOX)
    .where(_O.id.in_(bindparam("ids", expanding=True)), *_HELD)
    .values(
        attempts=_O.attempts + 1,
        status="delivered",
        error=None,
        updated_at=bindparam("now"),
        lease_until=None,
        lease_owner=None,
    )
)
_SETTLE = (
    update(OUTBOX)
    .where(_O.id == bindparam("key"), *_HELD)
    .values(
        attempts=_O.attempts + 1,
        status=bindparam("to"),
        error=bindparam("why"),
        updated_at=bindparam("now"),
        # The next attempt's time stays as it was unless the attempt set one.
        next_attempt_at=func.coalesce(
            bindparam("retry_at", type_=DateTime(timezone=True)), _O.next_attempt_at
        ),
        lease_until=None,
        lease_owner=None,
    )
)
_RELEASE = (
    update(OUTBOX)
    .where(_O.id == bindparam("key"), _O.lease_owner == bindparam("owner"))
    .values(lease_until=None, lease_owner=None, next_attempt_at=bindparam("retry_at"))
)


def claim_outbox_events(
    conn: Connection, *, owner: str, now: datetime, lease: timedelta, limit: int
) -> list[Leased]:
    """Lease the due events no other drainer holds, the oldest pending one of each case only;
    the caller commits the leases before posting."""
    ids = conn.execute(_DUE, {"now": now, "limit": limit}).scalars().all()
    if not ids:
        return []
    # Rows this drainer now holds are leased to it until `now + lease`.
    rows = conn.execute(_LEASE, {"ids": ids, "now": now, "until": now + lease, "owner": owner})
    return sorted((Leased(*row) for row in rows), key=lambda event: event.id)


def settle_delivered_outbox_events(
    conn: Connection, *, ids: Sequence[int], owner: str, now: datetime
) -> None:
    """Record delivered events in one statement (the common outcome of a batch); an event this
    drainer no longer holds is left as it is."""
    if ids:
        conn.execute(_DELIVERED, {"ids": list(ids), "owner": owner, "now": now})


def settle_outbox_event(
    conn: Connection,
    *,
    id: int,
    owner: str,
    status: str,
    now: datetime,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> bool:
    """Record an attempt on a leased event: `delivered`, `failed`, or `pending` again at
    `retry_at`; False when this drainer no longer holds the lease."""
    params = {
        "key": id,
        "owner": owner,
        "to": status,
        "why": error,
        "now": now,
        "retry_at": retry_at,
    }
    return conn.execute(_SETTLE, params).rowcount > 0


def release_outbox_event(conn: Connection, *, id: int, owner: str, retry_at: datetime) -> None:
    """Give a leased event back untried (e.g. the case could not be told yet)."""
    conn.execute(_RELEASE, {"key": id, "owner": owner, "retry_at": retry_at})
