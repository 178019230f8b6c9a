"""Reads and writes of case records; every function takes its arguments by keyword."""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Text, bindparam, cast, delete, insert, or_, tuple_
from sqlmodel import Session, col, func, select
from sqlmodel.sql.expression import SelectOfScalar

from config.settings import secret_digest
from domain.models import CaseView, NumberedEntry, TimelineEntry
from domain.names import Kind
from store import projection

# The delivery log's settled statuses (store.deliveries writes the log).
from store.deliveries import DELIVERY_SETTLED as DELIVERY_SETTLED
from store.tables import (
    Case,
    CaseClaim,
    CaseOpening,
    IdempotencyKey,
    Notification,
    OutboxEvent,
    TimelineEvent,
    TrackingClaim,
    TrackingNumber,
    core_table,
    utcnow,
)

_TERMINAL = projection.TERMINAL


def _utc(at: datetime) -> datetime:
    # SQLite hands back naive datetimes; every time we store is UTC.
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _columns(view: CaseView, revision: int) -> dict[str, Any]:
    return projection.row_values(view.model_dump(mode="json", exclude={"timeline"}), revision)


# The open path's statements, built once: an open runs them as Core statements, on a Core
# connection of its own or a session's. The ORM's unit of work (identity map, flush ordering,
# instance state) cost an open about 6 ms of CPU for five rows it never reads back.
# The case tables are the ones the worker's projection writes (store.projection).
_CASE = projection.CASE
_INSERT_CASE = insert(_CASE)
_INSERT_TRACKING_NUMBER = insert(projection.TRACKING)
_INSERT_CLAIM = insert(projection.CLAIMS)
_INSERT_OPENING = insert(projection.OPENINGS)
_IDEMPOTENCY = core_table(IdempotencyKey)
_INSERT_IDEMPOTENCY = insert(_IDEMPOTENCY)
# What the open path's functions run on: a Core connection (the API's open, without a
# session's bookkeeping) or a session (tests, scripts), whose connection they use.
Db = Session | Connection


def _conn(db: Db) -> Connection:
    return db if isinstance(db, Connection) else db.connection()


def insert_opened_case(db: Db, *, view: CaseView, token: str) -> None:
    """Write a case the API has just opened, at revision 0: the worker's writes start at 1."""
    conn = _conn(db)
    conn.execute(
        _INSERT_CASE,
        {
            "id": view.id,
            "token": secret_digest(token),
            "created_at": _utc(view.created_at),
            **_columns(view, 0),
        },
    )
    # The order's own parcel (a refund-only interception): a carrier scan finds the case
    # before the worker's first write. A new case holds no numbers yet: nothing to look up.
    numbers = sorted(tracking_numbers(view))
    if numbers:
        conn.execute(
            _INSERT_TRACKING_NUMBER,
            [{"tracking_number": number, "case_id": view.id} for number in numbers],
        )


def upsert_case(session: Session, *, view: CaseView, token: str, revision: int) -> bool:
    """Write a whole case projection and its timeline; False if a newer one is stored."""
    entries = [
        NumberedEntry(seq=seq, **entry.model_dump()) for seq, entry in enumerate(view.timeline)
    ]
    session.flush()  # the statements below go past the session's pending objects
    applied = projection.apply_projection(
        session.connection(),
        case_id=view.id,
        revision=revision,
        token=token,
        changes=view.model_dump(mode="json", exclude={"timeline"}),
        entries=entries,
    )
    return applied is not None


def escalated_with(session: Session, *, case_ids: list[str], marker: str) -> set[str]:
    """The cases among `case_ids` with an escalation on their timeline whose message holds
    `marker`."""
    rows = session.exec(
        select(TimelineEvent.case_id).where(
            col(TimelineEvent.case_id).in_(case_ids),
            TimelineEvent.kind == Kind.ESCALATED.value,
            col(TimelineEvent.message).contains(marker),
        )
    ).all()
    return set(rows)


def timeline(session: Session, *, case_id: str) -> list[TimelineEntry]:
    """A case's timeline from its rows, in order."""
    rows = session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.case_id == case_id)
        .order_by(col(TimelineEvent.seq))
    ).all()
    return [
        TimelineEntry(
            at=_utc(row.at),
            kind=row.kind,
            actor=row.actor,
            message=row.message,
            data=row.data or {},
        )
        for row in rows
    ]


TRACKING_NUMBER_MAX = projection.TRACKING_NUMBER_MAX


def tracking_numbers(view: CaseView) -> set[str]:
    """Every tracking number a case knows: its parcels' and, for interceptions, the order's."""
    return projection.carrier_numbers(
        [*(shipment.tracking_number for shipment in view.shipments), view.order.tracking_number]
    )


def cases_for_tracking(session: Session, *, tracking_number: str) -> list[Case]:
    """The cases a tracking number belongs to, newest first."""
    if len(tracking_number) > TRACKING_NUMBER_MAX:
        return []
    return list(
        session.exec(
            select(Case)
            .join(TrackingNumber, col(TrackingNumber.case_id) == col(Case.id))
            .where(TrackingNumber.tracking_number == tracking_number)
            .order_by(col(Case.created_at).desc())
        ).all()
    )


def claim_items(db: Db, *, case_id: str, type: str, order_id: str, skus: set[str]) -> None:
    """Hold these items of the order for an opening case; raises IntegrityError (after
    waiting for a concurrent holder to commit) when another open case holds one."""
    _conn(db).execute(
        _INSERT_CLAIM,
        [
            {"type": type, "order_id": order_id, "sku": sku, "case_id": case_id}
            for sku in sorted(skus)
        ],
    )


_CLAIM = projection.CLAIMS
_CLAIM_HOLDER = (
    select(_CLAIM.c.case_id)
    .where(
        _CLAIM.c.type == bindparam("type"),
        _CLAIM.c.order_id == bindparam("order_id"),
        _CLAIM.c.sku.in_(bindparam("skus", expanding=True)),
    )
    .order_by(_CLAIM.c.case_id)
    .limit(1)
)


def claim_holder(db: Db, *, type: str, order_id: str, skus: set[str]) -> str | None:
    """The open case of this type holding any of these items of the order, if one does."""
    holder: str | None = (
        _conn(db)
        .execute(_CLAIM_HOLDER, {"type": type, "order_id": order_id, "skus": sorted(skus)})
        .scalar()
    )
    return holder


def tracking_holder(session: Session, *, tracking_number: str) -> str | None:
    """The open case a tracking number belongs to: by a customer's claim, or its own record."""
    if len(tracking_number) > TRACKING_NUMBER_MAX:
        return None
    claimed = session.get(TrackingClaim, tracking_number)
    if claimed is not None:
        return claimed.case_id
    recorded = open_cases_for_tracking(session, tracking_number=tracking_number)
    return recorded[0] if recorded else None


def claim_tracking_number(session: Session, *, tracking_number: str, case_id: str) -> bool:
    """Hold a tracking number for a case; the flush raises IntegrityError (after waiting for
    a concurrent claim to commit) when another case holds it. True if this call claimed it,
    False if the case already held it."""
    claimed = session.get(TrackingClaim, tracking_number)
    if claimed is not None and claimed.case_id == case_id:
        return False
    session.add(TrackingClaim(tracking_number=tracking_number, case_id=case_id))
    session.flush()
    return True


def release_tracking_number(session: Session, *, tracking_number: str, case_id: str) -> None:
    """Give a tracking number back (the case refused the action that reported it)."""
    session.execute(
        delete(TrackingClaim).where(
            col(TrackingClaim.tracking_number) == tracking_number,
            col(TrackingClaim.case_id) == case_id,
        )
    )


def open_cases_for_tracking(session: Session, *, tracking_number: str) -> list[str]:
    """The IDs of the open cases a tracking number belongs to: claimed, or in their records."""
    if len(tracking_number) > TRACKING_NUMBER_MAX:
        return []
    recorded = session.exec(
        select(Case.id)
        .join(TrackingNumber, col(TrackingNumber.case_id) == col(Case.id))
        .where(
            TrackingNumber.tracking_number == tracking_number,
            col(Case.status).not_in(_TERMINAL),
        )
    ).all()
    claimed = session.exec(
        select(TrackingClaim.case_id).where(TrackingClaim.tracking_number == tracking_number)
    ).all()
    return sorted({*recorded, *claimed})


def save_opening(
    db: Db,
    *,
    case_id: str,
    workflow: str,
    input: dict[str, Any],
    summary: str,
    details: str,
) -> None:
    """Keep what starting the case's workflow takes, until the worker first records it."""
    _conn(db).execute(
        _INSERT_OPENING,
        {
            "case_id": case_id,
            "workflow": workflow,
            "input": input,
            "summary": summary,
            "details": details,
        },
    )


def get_opening(session: Session, *, case_id: str) -> CaseOpening | None:
    """What starting the case's workflow takes, while the worker has not recorded it yet."""
    return session.get(CaseOpening, case_id)


def unstarted_openings(
    session: Session, *, opened_before: datetime, limit: int
) -> list[CaseOpening]:
    """Openings of cases the worker never recorded, opened before the cutoff, oldest first.

    Walks `case_opening` (only the cases not yet recorded: it is small) and joins each to its
    case by primary key.
    """
    query = (
        select(CaseOpening)
        .join(Case, col(Case.id) == col(CaseOpening.case_id))
        .where(col(Case.revision) == 0, col(Case.created_at) < _utc(opened_before))
        .order_by(col(Case.created_at))
        .limit(limit)
    )
    return list(session.exec(query).all())


def get_case(session: Session, *, case_id: str) -> Case | None:
    """The stored case, or None."""
    return session.get(Case, case_id)


def case_for_token(session: Session, *, token: str) -> Case | None:
    """The case a customer token opens, or None; found by the token's digest."""
    # The `token` column holds the digest (migration 0008): the index is searched for it, so
    # how long the search takes says nothing about how much of a real token a guess matched.
    return session.exec(select(Case).where(Case.token == secret_digest(token))).first()


def stored_view(case: Case) -> CaseView:
    """The case from its stored projection, without its timeline (lists, messages)."""
    fields = dict(case.view)
    fields.pop("timeline", None)  # a view stored before migration 0004
    return CaseView.model_validate(fields)


def case_view(session: Session, case: Case) -> CaseView:
    """The case as the API shows it: its stored projection and its timeline."""
    view = stored_view(case)
    view.timeline = timeline(session, case_id=case.id)
    return view


# A cursor is `<microseconds since 1970 UTC>_<case ID>`: a format the OpenAPI schema states as
# a pattern, so every string the pattern admits is a position the list can start after (an
# opaque encoding admitted strings that decode to nothing, refused only by the server).
CURSOR_PATTERN = r"^[0-9]{1,16}_[A-Za-z0-9-]{1,32}$"
_CURSOR = re.compile(r"([0-9]{1,16})_([A-Za-z0-9-]{1,32})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _encode_cursor(created_at: datetime, case_id: str) -> str:
    micros = (_utc(created_at) - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}_{case_id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (created_at, id) position a cursor points after; ValueError if it is not one of ours."""
    found = _CURSOR.fullmatch(cursor)
    if found is None:
        raise ValueError("not a cursor from this API")
    return _EPOCH + timedelta(microseconds=int(found[1])), found[2]


def list_query(
    *,
    type: str | None = None,
    status: str | None = None,
    order_id: str | None = None,
    customer_id: str | None = None,
    queue: str | None = None,
    assignee: str | None = None,
    overdue: bool | None = None,
    now: datetime | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> SelectOfScalar[Case]:
    """The query of one page of cases (one row more, to tell whether another page follows).

    Each filter has an index ending in (created_at, id) (store.tables.LIST_FILTERS), and
    the page order and the cursor's row comparison follow it, so a page is an index range.
    """
    query = select(Case)
    for column, value in (
        (Case.type, type),
        (Case.status, status),
        (Case.order_id, order_id),
        (Case.customer_id, customer_id),
        (Case.queue, queue),
        (Case.assignee, assignee),
    ):
        if value is not None:
            query = query.where(column == value)
    if overdue is not None:
        late = col(Case.next_deadline) < (now or utcnow())
        query = (
            query.where(late)
            if overdue
            else query.where(or_(~late, col(Case.next_deadline).is_(None)))
        )
    if cursor:
        created, case_id = decode_cursor(cursor)
        query = query.where(tuple_(col(Case.created_at), col(Case.id)) < (created, case_id))
    return query.order_by(col(Case.created_at).desc(), col(Case.id).desc()).limit(limit + 1)


def list_views(
    session: Session,
    *,
    limit: int = 50,
    **filters: Any,
) -> tuple[list[CaseView], str | None]:
    """Cases newest first, filtered (the arguments of `list_query`), one page at a time: the
    cases' stored views (without timelines) and the cursor of the next page, if any.

    Reads each view as its stored JSON text and has pydantic parse it in one step: loading
    ORM rows, decoding their JSON into dicts and validating those took three quarters of a
    list request, and its garbage set off the collections that made the slowest pages.
    """
    query = list_query(limit=limit, **filters).with_only_columns(
        cast(col(Case.view), Text), col(Case.created_at), col(Case.id)
    )
    rows = session.execute(query).all()
    page, more = rows[:limit], len(rows) > limit
    views = [case_view_from_json(text) for text, _, _ in page]
    return views, _encode_cursor(page[-1][1], page[-1][2]) if more and page else None


def case_view_from_json(text: str) -> CaseView:
    """A stored view JSON text as a case (its timeline left empty)."""
    view = CaseView.model_validate_json(text)
    view.timeline = []  # a view stored before migration 0004 still held one
    return view


_RECENT_CASES = (
    select(func.count())
    .select_from(_CASE)
    .where(
        _CASE.c.customer_id == bindparam("customer_id"),
        _CASE.c.type.in_(bindparam("types", expanding=True)),
        _CASE.c.created_at >= bindparam("since"),
        _CASE.c.parent_case_id.is_(None),
    )
)


def recent_case_count(db: Db, *, customer_id: str, types: Collection[str], since: datetime) -> int:
    """How many cases of these types the customer opened since a time.

    A child case (the return a complaint's resolution opened) is the shop's doing, not the
    customer's, so it doesn't count.
    """
    count: int = (
        _conn(db)
        .execute(
            _RECENT_CASES,
            {"customer_id": customer_id, "types": sorted(types), "since": _utc(since)},
        )
        .scalar_one()
    )
    return count


class RecordProtected(Exception):
    """A case record that must be kept: a complaint marked malicious is the review board's
    evidence (DESIGN 3.6)."""


def delete_case(session: Session, *, case_id: str) -> bool:
    """Delete a case's record, timeline and delivery log; False when there is none.

    No route deletes cases; this is for operators' data-retention jobs, and it refuses a
    protected record (`RecordProtected`) rather than trusting every caller to check.
    """
    row = session.get(Case, case_id)
    if row is None:
        return False
    if row.view.get("malicious"):
        raise RecordProtected(f"case {case_id} is marked malicious; its record can't be deleted")
    for model in (
        TimelineEvent,
        Notification,
        TrackingNumber,
        TrackingClaim,
        CaseClaim,
        OutboxEvent,
    ):
        for child in session.exec(select(model).where(model.case_id == case_id)).all():
            session.delete(child)
    session.execute(delete(CaseOpening).where(col(CaseOpening.case_id) == case_id))
    session.delete(row)
    return True


@dataclass(frozen=True)
class StoredKey:
    """What an idempotency key stands for: the case it opened, and the request's hash."""

    case_id: str
    request_hash: str


_GET_IDEMPOTENCY = select(_IDEMPOTENCY.c.case_id, _IDEMPOTENCY.c.request_hash).where(
    _IDEMPOTENCY.c.key == bindparam("key")
)


def get_idempotency(db: Db, *, key: str) -> StoredKey | None:
    """The stored request for an idempotency key, or None."""
    row = _conn(db).execute(_GET_IDEMPOTENCY, {"key": key}).first()
    return None if row is None else StoredKey(case_id=row.case_id, request_hash=row.request_hash)


def save_idempotency(db: Db, *, key: str, request_hash: str, case_id: str) -> None:
    """Remember which case a keyed request opened."""
    _conn(db).execute(
        _INSERT_IDEMPOTENCY,
        {"key": key, "request_hash": request_hash, "case_id": case_id, "created_at": utcnow()},
    )


def deliveries(session: Session, *, case_id: str) -> list[Notification]:
    """The delivery log of a case, oldest first."""
    return list(
        session.exec(
            select(Notification)
            .where(Notification.case_id == case_id)
            .order_by(col(Notification.created_at), col(Notification.id))
        ).all()
    )


# ---- the storefront webhook's outbox ----------------------------------------------------
# Statuses and the drainer's statements: store.outbox.


def add_outbox_event(
    session: Session,
    *,
    case_id: str,
    event_id: str,
    event_type: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Queue a webhook event for the drainer; an event ID already queued is kept as it is."""
    session.flush()  # the statement below goes past the session's pending objects
    projection.queue_outbox_events(
        session.connection(),
        events=[
            {"event_id": event_id, "case_id": case_id, "event_type": event_type, "payload": payload}
        ],
        now=now,
    )


def outbox_events(session: Session, *, case_id: str) -> list[OutboxEvent]:
    """A case's webhook events, oldest first."""
    return list(
        session.exec(
            select(OutboxEvent).where(OutboxEvent.case_id == case_id).order_by(col(OutboxEvent.id))
        ).all()
    )
