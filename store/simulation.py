"""The policy simulator's read of the history: each stored case of a period as the simulator
needs it, with the customer's prior cases at its opening.

Read-only, one streamed query: the case rows of the period and of the 90 days before it,
ordered by customer and open time, so each customer's prior cases are counted as their rows
go by (DESIGN 5.2 item 6, as `store.service.recent_case_count` counts them at open) without a
query per case, and only one customer's open times are held at a time. Only the period's rows
carry their view JSON; the database hands the rows over in batches, never all at once.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Connection, Row, Select, Text, case, cast, select

from domain.models import (
    CaseRequest,
    CaseType,
    Complaint,
    Customer,
    Decision,
    ExchangeItem,
    Item,
    Order,
    Reason,
)
from domain.policy import Policy
from domain.rules import RISK_TYPES, RISK_WINDOW
from domain.simulation import (
    DEFAULT_FLIPS_LISTED,
    DEFAULT_MINUTES_PER_REVIEW,
    SimulationReport,
    Skip,
    StoredCase,
    simulate,
)
from store.projection import CASE, utc

# Rows the driver hands over per batch (a server-side cursor on PostgreSQL).
BATCH = 500
_SUCCEEDED = "succeeded"


class _StoredRequest(BaseModel):
    """The fields of a stored view that rebuild its request, and its decision; the view's
    other fields (status, timeline, deadlines...) are skipped by the parser."""

    model_config = ConfigDict(extra="ignore")

    type: CaseType
    order: Order
    customer: Customer
    items: list[Item]
    reason: Reason | None = None
    description: str = ""
    evidence: list[str] = []
    exchange_for: list[ExchangeItem] = []
    complaint: Complaint | None = None
    decision: Decision

    def request(self) -> CaseRequest:
        """The request the case was opened with."""
        return CaseRequest(
            type=self.type,
            order=self.order,
            customer=self.customer,
            items=self.items,
            reason=self.reason,
            description=self.description,
            evidence=self.evidence,
            exchange_for=self.exchange_for,
            complaint=self.complaint,
        )


def _history(start: datetime, end: datetime) -> Select[Any]:
    in_period = CASE.c.created_at >= utc(start)
    return (
        select(
            CASE.c.id,
            CASE.c.customer_id,
            CASE.c.type,
            CASE.c.parent_case_id,
            CASE.c.created_at,
            CASE.c.outcome,
            CASE.c.refund_status,
            CASE.c.refund_cents,
            # Only the period's cases are decided again: the earlier ones are counted only.
            case((in_period, cast(CASE.c.view, Text)), else_=None).label("view"),
        )
        .where(CASE.c.created_at >= utc(start - RISK_WINDOW), CASE.c.created_at < utc(end))
        .order_by(CASE.c.customer_id, CASE.c.created_at, CASE.c.id)
    )


def stored_cases(
    conn: Connection, *, start: datetime, end: datetime
) -> Iterator[StoredCase | Skip]:
    """Every case opened in [start, end), as the simulator takes it (or why it is left out)."""
    start, end = utc(start), utc(end)
    rows = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
        _history(start, end)
    )
    customer: str | None = None
    # The customer's counted cases' open times, in order; those before `first` are too old.
    times: list[datetime] = []
    first = 0
    for row in rows:
        if row.customer_id != customer:
            customer, times, first = row.customer_id, [], 0
        opened = utc(row.created_at)
        first = bisect_left(times, opened - RISK_WINDOW, first)
        if row.view is not None:
            # The cases opened before this one (within the window), as `decide` counted them.
            prior = bisect_left(times, opened, first) - first
            yield _stored(row, opened, prior)
        if row.type in RISK_TYPES and row.parent_case_id is None:
            times.append(opened)


def _stored(row: Row[Any], opened: datetime, prior: int) -> StoredCase | Skip:
    if row.parent_case_id is not None:
        # A complaint's resolution: its agent decided it on the complaint's terms, not the policy.
        return Skip.CHILD_CASE
    try:
        stored = _StoredRequest.model_validate_json(row.view)
        request = stored.request()
    except ValidationError:
        return Skip.UNREADABLE
    # The projection's report columns (store.projection.report_values): the refund in
    # hundredths, its status, and the case's outcome, None until it has one.
    succeeded = row.refund_status == _SUCCEEDED and row.refund_cents is not None
    return StoredCase(
        id=row.id,
        request=request,
        decision=stored.decision,
        opened_at=opened,
        prior_cases=prior,
        refunded=Decimal(row.refund_cents).scaleb(-2) if succeeded else Decimal(0),
        settled=row.outcome is not None,
    )


def simulate_period(
    conn: Connection,
    candidate: Policy,
    *,
    start: datetime,
    end: datetime,
    minutes_per_review: int = DEFAULT_MINUTES_PER_REVIEW,
    flips_listed: int = DEFAULT_FLIPS_LISTED,
) -> SimulationReport:
    """Decide every case opened in [start, end) again under `candidate`: the differences."""
    return simulate(
        stored_cases(conn, start=start, end=end),
        candidate,
        start=start,
        end=end,
        minutes_per_review=minutes_per_review,
        flips_listed=flips_listed,
    )
