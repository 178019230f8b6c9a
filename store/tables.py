"""Where records live: the case projection, its timeline, idempotency keys and the delivery log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Table, UniqueConstraint
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def core_table(model: type[SQLModel]) -> Table:
    """A table model's Core table, for statements that skip the ORM."""
    # SQLModel doesn't declare `__table__` to type checkers.
    table: Table = getattr(model, "__table__")  # noqa: B009
    return table


def _at(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class CaseBase(SQLModel):
    """The columns lists filter on; the full case lives in `view`."""

    type: str = Field(max_length=16)
    status: str = Field(max_length=32)
    order_id: str = Field(max_length=200)
    customer_id: str = Field(max_length=200)
    reason: str | None = Field(default=None, max_length=32)
    queue: str = Field(max_length=200)
    assignee: str | None = Field(default=None, max_length=200)
    priority: str = Field(max_length=16)
    sla_breached: bool = False
    # An agent must act for the case to move (domain.names.AGENT_DECISIONS): the console's queue.
    needs_agent: bool = False
    # Lowercased, for the console's search by the customer's email.
    customer_email: str | None = Field(default=None, index=True, max_length=320)
    parent_case_id: str | None = Field(default=None, index=True, max_length=32)
    # What reports read (store/reports.py), derived by the projection from the view and its
    # timeline. Money is in hundredths (every `Amount` has two decimal places): integers sum
    # exactly on both databases, where SQLite would sum NUMERIC as floats.
    currency: str | None = Field(default=None, max_length=3)
    payment_method: str | None = Field(default=None, max_length=40)
    items_cents: int | None = Field(default=None, sa_type=BigInteger)
    refund_cents: int | None = Field(default=None, sa_type=BigInteger)
    refund_status: str | None = Field(default=None, max_length=16)
    outcome: str | None = Field(default=None, max_length=16)  # domain.names.Outcome
    rating: int | None = None
    # Durations from the open in whole seconds, so medians sort plain integers on both
    # databases (no dialect's date arithmetic).
    first_response_seconds: int | None = None
    refund_seconds: int | None = None
    resolution_seconds: int | None = None


# Lists filter on one column and page newest first by (created_at, id): one index per filter,
# ending in the page order, lets the database walk it backwards and stop after a page.
LIST_FILTERS = ("type", "status", "queue", "assignee", "order_id", "customer_id")
# Filters agents combine: a queue's cases in one status (its work list). With one index per
# column PostgreSQL ANDed two bitmaps and sorted thousands of rows (30 ms at 100k cases).
LIST_PAIRS = (("queue", "status"),)
# The report index: the keys reports group the cases by first, so a grouped scan walks it in
# their order without sorting (SQLite sorts 100k rows to group them in 200 ms), then the
# filters and the sums. It reads the whole table, not the period's range: at 100k cases that
# is some 30 ms, and no case row (with its view's overflow pages) is read.
REPORT_COLUMNS = (
    "type",
    "status",
    "reason",
    "outcome",
    "refund_status",
    "currency",
    "payment_method",
    "rating",
    "created_at",
    "queue",
    "refund_cents",
    "items_cents",
    "first_response_seconds",
    "refund_seconds",
    "resolution_seconds",
    "id",
)
# Each timed measure's values in order, with the filters: a median reads up to its rank and
# stops, without sorting.
REPORT_MEASURES = ("first_response", "refund", "resolution")


class Case(CaseBase, table=True):
    __table_args__ = (
        Index("ix_case_created", "created_at", "id"),
        *(Index(f"ix_case_{name}_created", name, "created_at", "id") for name in LIST_FILTERS),
        *(
            Index(f"ix_case_{first}_{second}_created", first, second, "created_at", "id")
            for first, second in LIST_PAIRS
        ),
        # The agents' queue: cases waiting on an agent, soonest deadline (so overdue) first.
        Index("ix_case_needs_agent_deadline", "needs_agent", "next_deadline", "id"),
        # Reports read the cases from these indexes alone: on SQLite the columns added after
        # `view` sit behind its overflow pages, and reading them from the rows is slow.
        Index("ix_case_report", *REPORT_COLUMNS),
        *(
            Index(f"ix_case_{m}_seconds", f"{m}_seconds", "created_at", "type", "queue")
            for m in REPORT_MEASURES
        ),
    )

    id: str = Field(primary_key=True, max_length=32)
    # The SHA-256 (hex) of the customer's token, never the token (migration 0008).
    token: str = Field(unique=True, index=True, max_length=64)
    next_deadline: datetime | None = _at(nullable=True, index=True)
    view: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The workflow's own revision of the case; a late, retried write never overwrites a newer
    # one. The API writes revision 0 when it opens the case; the worker's writes start at 1.
    revision: int = 0
    created_at: datetime = _at(nullable=False)
    updated_at: datetime = _at(nullable=False)
    first_response_at: datetime | None = _at(nullable=True)
    refunded_at: datetime | None = _at(nullable=True)
    resolved_at: datetime | None = _at(nullable=True)


class TimelineEvent(SQLModel, table=True):
    __tablename__ = "timeline_event"
    __table_args__ = (UniqueConstraint("case_id", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: str = Field(index=True, max_length=32)
    seq: int
    at: datetime = _at(nullable=False)
    kind: str = Field(max_length=64)
    actor: str = Field(max_length=200)
    message: str = ""
    # The entry's details (a timer's name, a partner's answer); NULL in rows written before 0004.
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class IdempotencyKey(SQLModel, table=True):
    __tablename__ = "idempotency_key"

    key: str = Field(primary_key=True, max_length=300)
    request_hash: str = Field(max_length=64)
    case_id: str = Field(max_length=32)
    created_at: datetime = _at(nullable=False)


class Notification(SQLModel, table=True):
    """The delivery log: one row per (case, step, channel), written before and after sending."""

    id: str = Field(primary_key=True, max_length=300)
    case_id: str = Field(index=True, max_length=32)
    channel: str = Field(max_length=16)
    message: str = Field(max_length=64)
    locale: str = Field(max_length=16)
    recipient: str = Field(max_length=320)
    status: str = Field(max_length=16)  # see store.deliveries
    attempts: int = 0
    error: str | None = None
    created_at: datetime = _at(nullable=False)
    updated_at: datetime = _at(nullable=False)


class TrackingNumber(SQLModel, table=True):
    """Which case a parcel's tracking number belongs to, for inbound carrier webhooks."""

    __tablename__ = "tracking_number"

    tracking_number: str = Field(primary_key=True, max_length=200)
    case_id: str = Field(primary_key=True, index=True, max_length=32)


class CaseOpening(SQLModel, table=True):
    """What the API needs to start a case's workflow again: written with the case at open.

    The case row is committed before the workflow starts; if the start fails (Temporal down,
    the API killed), a replay of the open finds this and starts it under the same ID.
    """

    __tablename__ = "case_opening"

    case_id: str = Field(primary_key=True, max_length=32)
    workflow: str = Field(max_length=64)
    input: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    summary: str = ""
    details: str = ""


class CaseClaim(SQLModel, table=True):
    """An open case's hold on one item of an order, for its type: what makes a duplicate.

    The primary key makes duplicate detection atomic: of two identical opens, one insert
    waits for the other's commit and then fails. Released when the case ends.
    """

    __tablename__ = "case_claim"

    type: str = Field(primary_key=True, max_length=16)
    order_id: str = Field(primary_key=True, max_length=200)
    sku: str = Field(primary_key=True, max_length=200)
    case_id: str = Field(index=True, max_length=32)


class TrackingClaim(SQLModel, table=True):
    """The one open case a customer-reported tracking number belongs to; released at its end."""

    __tablename__ = "tracking_claim"

    tracking_number: str = Field(primary_key=True, max_length=200)
    case_id: str = Field(index=True, max_length=32)


class OutboxEvent(SQLModel, table=True):
    """A storefront webhook event to deliver, written in the projection's transaction.

    The worker's drainer posts it (Idempotency-Key = `event_id`), retries a 5xx or timeout
    with backoff, and marks it `delivered` or `failed`. `lease_until` is set atomically by the
    drainer that claims the row, so several workers never post it at the same time.
    """

    __tablename__ = "outbox_event"
    __table_args__ = (Index("ix_outbox_event_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(unique=True, max_length=300)
    case_id: str = Field(index=True, max_length=32)
    event_type: str = Field(max_length=64)
    # The JSON body posted, fixed when the event is written: every attempt sends the same.
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending | delivered | failed
    attempts: int = 0
    next_attempt_at: datetime = _at(nullable=False)
    lease_until: datetime | None = _at(nullable=True)
    lease_owner: str | None = Field(default=None, max_length=64)
    error: str | None = None
    created_at: datetime = _at(nullable=False)
    updated_at: datetime = _at(nullable=False)


class Agent(SQLModel, table=True):
    """A person of the after-sales team: signs in to the console, may hold API tokens.

    `email` (lowercased) is the agent's identity everywhere a case names them: the actor of
    their actions and notes, and the assignee of the cases they hold.
    """

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=320)
    name: str = Field(max_length=200)
    role: str = Field(max_length=16)  # domain.names.AgentRole
    queues: list[str] = Field(sa_column=Column(JSON, nullable=False))
    locale: str = Field(max_length=16)
    password_hash: str = Field(max_length=200)
    disabled: bool = False
    created_at: datetime = _at(nullable=False)
    updated_at: datetime = _at(nullable=False)


class AgentToken(SQLModel, table=True):
    """A personal API token of an agent; only its SHA-256 is kept."""

    __tablename__ = "agent_token"

    id: int | None = Field(default=None, primary_key=True)
    agent_id: int = Field(index=True)
    name: str = Field(max_length=200)
    token_hash: str = Field(unique=True, max_length=64)
    created_at: datetime = _at(nullable=False)
    revoked_at: datetime | None = _at(nullable=True)


class ConsoleSession(SQLModel, table=True):
    """A signed-in console session: the cookie's SHA-256, its agent and its CSRF token."""

    __tablename__ = "console_session"

    id: str = Field(primary_key=True, max_length=64)
    agent_id: int = Field(index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _at(nullable=False)
    expires_at: datetime = _at(nullable=False)


class LoginFailure(SQLModel, table=True):
    """A failed console sign-in, kept for a while to throttle guessing (by email and by address)."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_email_at", "email", "at"),
        Index("ix_login_failure_address_at", "address", "at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320)
    address: str = Field(max_length=64)
    at: datetime = _at(nullable=False)


class DeadlineOutcomeRow(SQLModel, table=True):
    """How one listed deadline of a case ended (domain.names.DeadlineOutcome), for reports.

    Written by the projection when a deadline leaves the case's list (met before its due time,
    breached after) or a breach of it is escalated. The case's type, open time and queue are
    copied here, so the SLA figures of a period read this table alone (joining each case of a
    queue to its rows took 200-400 ms at 100k cases); the projection moves a case's rows when
    an agent moves the case to another queue.
    """

    __tablename__ = "deadline_outcome"
    __table_args__ = (
        # Counts per timer and outcome walk this in order; the latest breaches the next.
        Index("ix_deadline_outcome_report", "timer", "outcome", "created_at", "type", "queue"),
        Index("ix_deadline_outcome_recent", "outcome", "due_at", "created_at", "type", "queue"),
    )

    case_id: str = Field(primary_key=True, max_length=32)
    timer: str = Field(primary_key=True, max_length=64)
    due_at: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    outcome: str = Field(max_length=16)
    settled_at: datetime = _at(nullable=False)
    type: str = Field(max_length=16)
    queue: str = Field(max_length=200)
    created_at: datetime = _at(nullable=False)


class RefundItem(SQLModel, table=True):
    """A refunded case's refund, shared over its items by their line totals, for reports.

    Written once, when the case's refund first succeeds; the case's type, reason, open time
    and queue are copied here (the queue follows the case, as in `deadline_outcome`).
    """

    __tablename__ = "refund_item"
    __table_args__ = (
        Index(
            "ix_refund_item_report",
            "currency",
            "sku",
            "created_at",
            "type",
            "queue",
            "reason",
            "cents",
        ),
    )

    case_id: str = Field(primary_key=True, max_length=32)
    sku: str = Field(primary_key=True, max_length=200)
    cents: int = Field(sa_type=BigInteger)
    currency: str = Field(max_length=3)
    reason: str | None = Field(default=None, max_length=32)
    type: str = Field(max_length=16)
    queue: str = Field(max_length=200)
    created_at: datetime = _at(nullable=False)


class PurgeAudit(SQLModel, table=True):
    """One data-deletion purge (`aftersales cases purge`): who, when, which cases, how many
    rows of each table. It holds no personal data: no customer ID, email or name."""

    __tablename__ = "purge_audit"

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _at(nullable=False)
    actor: str = Field(max_length=200)
    # The request's own reference (a ticket number), as the operator gives it.
    reference: str | None = Field(default=None, max_length=200)
    case_ids: list[str] = Field(sa_column=Column(JSON, nullable=False))
    # Rows deleted, by table.
    rows: dict[str, int] = Field(sa_column=Column(JSON, nullable=False))
    workflows_terminated: int = 0
