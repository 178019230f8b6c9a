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
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Executable,
    Row,
    Table,
    bindparam,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from config.settings import secret_digest
from domain.models import TERMINAL_STATUSES, CaseStatus, CaseType, NumberedEntry
from domain.names import AGENT_DECISIONS, FIRST_RESPONSE_KINDS, DeadlineOutcome, Kind, Outcome
from store.tables import (
    Case,
    CaseClaim,
    CaseOpening,
    DeadlineOutcomeRow,
    OutboxEvent,
    RefundItem,
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
DEADLINE_OUTCOMES = core_table(DeadlineOutcomeRow)
REFUND_ITEMS = core_table(RefundItem)

# The statements, built once: building a statement (and its cache key) on every call cost
# more CPU than running it. Each takes the case's ID as `key`.
# The whole row: a projection sets only the columns whose values change (`_changed`).
_READ = select(CASE).where(CASE.c.id == bindparam("key"))
# Set on every projection: the view changed (else nothing was projected), and with it these.
_ALWAYS_SET = frozenset({"view", "revision", "updated_at"})
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
# An agent moved the case to another queue: its report rows follow (store.tables).
_MOVE_QUEUE = tuple(
    update(table).where(table.c.case_id == bindparam("key")).values(queue=bindparam("queue"))
    for table in (DEADLINE_OUTCOMES, REFUND_ITEMS)
)


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
        **report_values(fields),
        # The timeline lives in its own rows (timeline_event), never in the stored view.
        "view": dict(fields),
        "revision": revision,
        "updated_at": _time(fields["updated_at"]),
    }


def cents(amount: object) -> int:
    """An amount (a decimal string in the view's JSON) in hundredths."""
    return int((Decimal(str(amount)) * 100).to_integral_value())


def seconds(start: datetime, end: datetime) -> int:
    """Whole seconds from `start` to `end`, never below 0 (clocks of two processes)."""
    return max(0, int((end - start).total_seconds()))


def outcome(fields: Mapping[str, Any]) -> Outcome | None:
    """What the case gave the customer so far (docs/decisions.md, "Reports"); None for nothing
    (yet): rejected, cancelled, still open, or a complaint settled by an apology or a coupon."""
    refund = fields.get("refund") or {}
    if refund.get("status") == "succeeded":
        returnless = bool((fields.get("decision") or {}).get("returnless"))
        return Outcome.KEPT_ITEM if returnless else Outcome.REFUND
    if _credited(fields):
        return Outcome.STORE_CREDIT
    if fields["type"] == CaseType.EXCHANGE and fields.get("resolved_at"):
        return Outcome.EXCHANGE
    repair = fields.get("repair") or {}
    if fields["type"] == CaseType.REPAIR and repair.get("outcome") in ("repaired", "replaced"):
        return Outcome.REPAIR
    return None


# `refund_status` of a case that paid back in store credit instead of a refund: its
# `refund_cents` is then the credit (bonus included), so reports sum credit apart from refunds
# without a column of its own (docs/decisions.md, "Issue 11: store credit").
CREDITED = "credited"


def _credited(fields: Mapping[str, Any]) -> bool:
    credit = fields.get("store_credit") or {}
    return credit.get("status") == "issued" and credit.get("kind") == "store_credit"


def report_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The report columns the view's JSON fields alone decide (the timeline's in `firsts`)."""
    refund = fields.get("refund") or {}
    if not refund and _credited(fields):
        credit = fields["store_credit"]
        total = Decimal(str(credit["amount"])) + Decimal(str(credit.get("bonus") or 0))
        refund = {"amount": total, "status": CREDITED}
    order = fields["order"]
    resolved = _time(fields["resolved_at"]) if fields.get("resolved_at") else None
    rating = fields.get("rating")
    return {
        "currency": order.get("currency"),
        "payment_method": order.get("payment_method"),
        "items_cents": sum(
            cents(item["unit_price"]) * int(item.get("quantity") or 1)
            for item in fields.get("items") or ()
        ),
        "refund_cents": cents(refund["amount"]) if refund else None,
        "refund_status": refund.get("status"),
        "outcome": outcome(fields),
        "rating": rating if isinstance(rating, int) else None,
        "resolved_at": resolved,
        "resolution_seconds": seconds(_time(fields["created_at"]), resolved) if resolved else None,
    }


def firsts(
    fields: Mapping[str, Any],
    entries: Sequence[NumberedEntry],
    *,
    first_response_at: datetime | None,
    refunded_at: datetime | None,
) -> dict[str, Any]:
    """The first response and the refund's success, when this projection brings them first
    (only the columns to set: a time once stored stays)."""
    values: dict[str, Any] = {}
    opened = _time(fields["created_at"])
    if first_response_at is None:
        at = next((e.at for e in entries if e.kind in FIRST_RESPONSE_KINDS), None)
        if at is not None:
            values["first_response_at"] = utc(at)
            values["first_response_seconds"] = seconds(opened, utc(at))
    if refunded_at is None and (fields.get("refund") or {}).get("status") == "succeeded":
        at = next((e.at for e in entries if e.kind == Kind.REFUND_SUCCEEDED), None)
        done = utc(at) if at is not None else _time(fields["updated_at"])
        values["refunded_at"] = done
        values["refund_seconds"] = seconds(opened, done)
    return values


def _deadlines(fields: Mapping[str, Any]) -> set[tuple[str, datetime]]:
    return {(d["name"], _time(d["due_at"])) for d in fields.get("deadlines") or ()}


def deadline_outcomes(
    before: Mapping[str, Any], after: Mapping[str, Any], entries: Sequence[NumberedEntry]
) -> list[dict[str, Any]]:
    """The deadlines this projection settles: each one that left the list (met before its
    due time, breached after), and each one whose breach an entry escalates."""
    now = _time(after["updated_at"])
    listed = _deadlines(after)
    settled: list[tuple[str, datetime, DeadlineOutcome, datetime]] = []
    for name, due in _deadlines(before) - listed:
        if now >= due:
            settled.append((name, due, DeadlineOutcome.BREACHED, now))
        elif after["status"] != CaseStatus.CANCELLED:
            # Cancelled meanwhile: nobody had to beat that deadline any more.
            settled.append((name, due, DeadlineOutcome.MET, now))
    for entry in entries:
        timer = entry.data.get("timer") if entry.kind == Kind.ESCALATED else None
        # A breach lists its deadline again, overdue, until the wait under it ends.
        due_at = max((due for name, due in listed if name == timer), default=None)
        if due_at is not None:
            settled.append((str(timer), due_at, DeadlineOutcome.BREACHED, utc(entry.at)))
    return [
        {
            "case_id": after["id"],
            "timer": name,
            "due_at": due,
            "outcome": result.value,
            "settled_at": at,
            "type": after["type"],
            "queue": after["queue"],
            "created_at": _time(after["created_at"]),
        }
        for name, due, result, at in settled
    ]


def refund_items(fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The case's refund shared over its SKUs by their line totals, in hundredths (the
    remainder of the division goes to the last SKU, so the shares add up to the refund); a
    line the decision left out of the case gets none."""
    refund = fields["refund"]
    total = cents(refund["amount"])
    decided = (fields.get("decision") or {}).get("lines") or ()
    excluded = {line["sku"] for line in decided if not line.get("eligible", True)}
    lines: dict[str, int] = {}
    for item in fields.get("items") or ():
        if item["sku"] in excluded:
            continue
        lines[item["sku"]] = lines.get(item["sku"], 0) + cents(item["unit_price"]) * int(
            item.get("quantity") or 1
        )
    whole = sum(lines.values())
    shares = {sku: (total * line // whole if whole else 0) for sku, line in lines.items()}
    if shares:
        last = list(shares)[-1]
        shares[last] += total - sum(shares.values())
    return [
        {
            "case_id": fields["id"],
            "sku": sku,
            "cents": share,
            "currency": refund.get("currency") or fields["order"]["currency"],
            "reason": fields.get("reason"),
            "type": fields["type"],
            "queue": fields["queue"],
            "created_at": _time(fields["created_at"]),
        }
        for sku, share in shares.items()
    ]


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
        reached = firsts(fields, entries, first_response_at=None, refunded_at=None)
        values = {**row_values(fields, revision), **reached}
        conn.execute(
            _INSERT,
            {
                "id": case_id,
                # Only its digest is kept (service.case_for_token looks it up so).
                "token": secret_digest(token),
                "created_at": _time(fields["created_at"]),
                **values,
            },
        )
        if fields["status"] not in TERMINAL:
            # Opened by a workflow (a complaint's child case), not through the API.
            _claim_unheld_items(conn, case_id=case_id, fields=fields)
    else:
        reached = firsts(
            fields,
            entries,
            first_response_at=stored.first_response_at,
            refunded_at=stored.refunded_at,
        )
        changed = conn.execute(
            _UPDATE,
            {"key": case_id, "newer": revision, **_changed(stored, row_values(fields, revision)),
             **reached},
        )  # fmt: skip
        if changed.rowcount == 0:
            return None
        if stored.revision == 0:
            # The worker's first write: the workflow runs, nothing needs restarting.
            conn.execute(_FORGET_OPENING, {"key": case_id})
        if stored.view.get("status") in TERMINAL and fields["status"] not in TERMINAL:
            # Reopened (a supervisor's exception to a rejection): it holds its items again,
            # unless another open case took them meanwhile (the API refuses that exception).
            _claim_unheld_items(conn, case_id=case_id, fields=fields)
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
    if stored is not None and fields["queue"] != stored.view.get("queue"):
        # Rare (an agent's reassignment), and never at a case's first projections.
        for statement in _MOVE_QUEUE:
            conn.execute(statement, {"key": case_id, "queue": fields["queue"]})
    if stored is not None and ("deadlines" in changes or entries):
        # Only where deadlines moved or a breach may be among the entries: most projections
        # settle none and add no statement.
        insert_new(conn, DEADLINE_OUTCOMES, deadline_outcomes(stored.view, fields, entries))
    if "refunded_at" in reached:
        insert_new(conn, REFUND_ITEMS, refund_items(fields))
    return fields


def _changed(stored: Row[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The columns whose values differ from the stored row's (and those always set).

    The case table carries the list and report indexes; an UPDATE rewrites the entry of
    every index holding a column it sets, changed or not. Setting only what changed spares
    most of that work: a projection usually moves a status or a deadline, not the type,
    customer, order, currency or rating.
    """
    old = stored._mapping
    out: dict[str, Any] = {}
    for name, value in values.items():
        before = old.get(name)
        if isinstance(before, datetime):
            before = utc(before)
        if name in _ALWAYS_SET or before != value:
            out[name] = value
    return out


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
