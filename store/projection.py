"""The worker's writes of a case projection, as SQLAlchemy Core statements on one connection.

The projection runs five times per case. Through ORM objects (a loaded `Case`, a validated
`CaseView`, one `TimelineEvent` object per entry, a select before each insert) it cost the
worker more CPU than Temporal's own work for the activity. Here it is one read of the row's
revision and stored view JSON, one guarded UPDATE, and one INSERT per table that gains rows,
each skipping rows stored already (ON CONFLICT DO NOTHING), so a retried projection writes
nothing twice. The stored view stays the JSON the workflow dumped: the projection's changed
fields are already that JSON, so merging them into the stored fields needs no model round trip.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Executable, Table, bindparam, delete, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from domain.models import TERMINAL_STATUSES, NumberedEntry
from domain.names import AGENT_DECISIONS
from store.tables import (
    Case,
    CaseClaim,
    CaseOpening,
    OutboxEvent,
    TimelineEvent,
    TrackingClaim,
    TrackingNumber,
    core_table,
)

TERMINAL = frozenset(s.value for s in TERMINAL_STATUSES)
# store.tables.TrackingNumber.tracking_number; a longer "number" is no carrier's.
TRACKING_NUMBER_MAX = 200


CASE = core_table(Case)
TIMELINE = core_table(TimelineEvent)
OUTBOX = core_table(OutboxEvent)
TRACKING = core_table(TrackingNumber)
CLAIMS = core_table(CaseClaim)
TRACKING_CLAIMS = core_table(TrackingClaim)
OPENINGS = core_table(CaseOpening)

# The statements, built once: building a statement (and its cache key) on every call cost
# more CPU than running it. Each takes the case's ID as `key`.
_READ = select(CASE.c.revision, CASE.c.view).where(CASE.c.id == bindparam("key"))
_READ_VIEW = select(CASE.c.view).where(CASE.c.id == bindparam("key"))
# The SET clause is the columns in the parameters. Of two attempts of one projection racing,
# only one changes the row.
_UPDATE = update(CASE).where(CASE.c.id == bindparam("key"), CASE.c.revision < bindparam("newer"))
_INSERT = insert(CASE)
_FORGET_OPENING = delete(OPENINGS).where(OPENINGS.c.case_id == bindparam("key"))
_RELEASE = (
    delete(CLAIMS).where(CLAIMS.c.case_id == bindparam("key")),
    delete(TRACKING_CLAIMS).where(TRACKING_CLAIMS.c.case_id == bindparam("key")),
)
_INSERT_NEW: dict[tuple[str, str], Executable] = {}


class ProjectionGap(Exception):
    """A projection of changed fields for a case with no stored row to change."""


def utc(at: datetime) -> datetime:
    """The time in UTC (SQLite hands back naive datetimes; every time we store is UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _time(value: str) -> datetime:
    return utc(datetime.fromisoformat(value))


def row_values(fields: Mapping[str, Any], revision: int) -> dict[str, Any]:
    """The case row's columns for a view's JSON fields (timeline excluded) at a revision."""
    deadlines = fields.get("deadlines") or ()
    due = min((_time(d["due_at"]) for d in deadlines), default=None)
    return {
        "type": fields["type"],
        "status": fields["status"],
        "order_id": fields["order"]["id"],
        "customer_id": fields["customer"]["id"],
        "customer_email": (fields["customer"].get("email") or "").lower() or None,
        "reason": fields.get("reason"),
        "queue": fields["queue"],
        "assignee": fields.get("assignee"),
        "priority": fields["priority"],
        "sla_breached": bool(fields.get("sla_breached")),
        "needs_agent": needs_agent(fields),
        "parent_case_id": fields.get("parent_case_id"),
        "next_deadline": due,
        # The timeline lives in its own rows (timeline_event), never in the stored view.
        "view": dict(fields),
        "revision": revision,
        "updated_at": _time(fields["updated_at"]),
    }


def needs_agent(fields: Mapping[str, Any]) -> bool:
    """Whether the case waits on an agent: it takes one of their decisions now, or it missed
    a deadline and was escalated to a person, until it ends."""
    if fields["status"] in TERMINAL:
        return False
    takes_decision = not AGENT_DECISIONS.isdisjoint(fields.get("agent_actions") or ())
    return takes_decision or bool(fields.get("sla_breached"))


def carrier_numbers(found: Iterable[object]) -> set[str]:
    """The values among `found` that can be a parcel's tracking number."""
    return {n for n in found if isinstance(n, str) and n and len(n) <= TRACKING_NUMBER_MAX}


def tracking_numbers_in(fields: Mapping[str, Any]) -> set[str]:
    """Every tracking number a case's JSON fields know: its parcels' and the order's own."""
    shipments = fields.get("shipments") or ()
    order = fields.get("order") or {}
    return carrier_numbers(
        [*(s.get("tracking_number") for s in shipments), order.get("tracking_number")]
    )


def insert_new(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """INSERT the rows in one statement, skipping any whose unique key is stored already."""
    if not rows:
        return
    name = conn.dialect.name
    statement = _INSERT_NEW.get((name, table.name))
    if statement is None:
        dialect = postgresql if name == "postgresql" else sqlite
        statement = _INSERT_NEW[name, table.name] = dialect.insert(table).on_conflict_do_nothing()
    conn.execute(statement, list(rows))


def stored_fields(conn: Connection, *, case_id: str) -> dict[str, Any] | None:
    """The case's stored view fields (JSON, no timeline), or None when it has no row."""
    fields: dict[str, Any] | None = conn.execute(_READ_VIEW, {"key": case_id}).scalar()
    if fields is not None:
        fields.pop("timeline", None)  # a view stored before migration 0004 still held one
    return fields


def apply_projection(
    conn: Connection,
    *,
    case_id: str,
    revision: int,
    token: str | None,
    changes: Mapping[str, Any],
    entries: Sequence[NumberedEntry],
) -> dict[str, Any] | None:
    """Apply one projection: the changed view fields (JSON) and the new timeline entries.

    Answers the case's view fields as stored after it (JSON, no timeline), or None when a
    newer revision is stored already (a retried or late write never rolls a case back). A
    case's first projection in a workflow run carries every field, so a case no API wrote (a
    complaint's child case) gets a full row.
    """
    stored = conn.execute(_READ, {"key": case_id}).one_or_none()
    if stored is not None and stored.revision >= revision:
        return None
    fields = {**(stored.view if stored is not None else {}), **changes}
    if entries and "updated_at" not in changes:
        # Left out of the changes when it is the last new entry's time.
        fields["updated_at"] = entries[-1].model_dump(mode="json", include={"at"})["at"]
    fields.pop("timeline", None)  # a view stored before migration 0004 still held one
    if stored is None:
        if token is None or "id" not in fields:
            raise ProjectionGap(f"case {case_id} has no stored row for revision {revision}")
        values = row_values(fields, revision)
        conn.execute(
            _INSERT,
            {"id": case_id, "token": token, "created_at": _time(fields["created_at"]), **values},
        )
        if fields["status"] not in TERMINAL:
            # Opened by a workflow (a complaint's child case), not through the API.
            _claim_unheld_items(conn, case_id=case_id, fields=fields)
    else:
        changed = conn.execute(
            _UPDATE, {"key": case_id, "newer": revision, **row_values(fields, revision)}
        )
        if changed.rowcount == 0:
            return None
        if stored.revision == 0:
            # The worker's first write: the workflow runs, nothing needs restarting.
            conn.execute(_FORGET_OPENING, {"key": case_id})
    if fields["status"] in TERMINAL:
        # A case that ended gives up its claims (its items, its tracking numbers), so the same
        # item can be returned again and the parcel's number reused.
        release_claims(conn, case_id=case_id)
    if stored is None or "shipments" in changes or "order" in changes:
        # Only added, never removed: a carrier may still report on a parcel the case replaced
        # (a rebooked pickup), and the workflow decides whether that still matters.
        numbers = sorted(tracking_numbers_in(fields))
        insert_new(conn, TRACKING, [{"tracking_number": n, "case_id": case_id} for n in numbers])
    add_timeline(conn, case_id=case_id, entries=entries)
    return fields


def add_timeline(conn: Connection, *, case_id: str, entries: Sequence[NumberedEntry]) -> None:
    """Store new timeline entries by their sequence number; one already stored is kept."""
    insert_new(
        conn,
        TIMELINE,
        [
            {
                "case_id": case_id,
                "seq": entry.seq,
                "at": utc(entry.at),
                "kind": entry.kind,
                "actor": entry.actor,
                "message": entry.message,
                "data": entry.data or None,
            }
            for entry in entries
        ],
    )


def release_claims(conn: Connection, *, case_id: str) -> None:
    """Give up everything a case holds: its items and its tracking numbers."""
    for statement in _RELEASE:
        conn.execute(statement, {"key": case_id})


def _claim_unheld_items(conn: Connection, *, case_id: str, fields: Mapping[str, Any]) -> None:
    # An item another open case of this type holds stays that case's.
    insert_new(
        conn,
        CLAIMS,
        [
            {
                "type": fields["type"],
                "order_id": fields["order"]["id"],
                "sku": sku,
                "case_id": case_id,
            }
            for sku in sorted({item["sku"] for item in fields["items"]})
        ],
    )


def queue_outbox_events(
    conn: Connection, *, events: Sequence[Mapping[str, Any]], now: datetime
) -> None:
    """Queue webhook events (`event_id`, `case_id`, `event_type`, `payload`) for the drainer;
    an event ID already queued is kept as it is."""
    insert_new(
        conn,
        OUTBOX,
        [
            {
                **event,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for event in events
        ],
    )
