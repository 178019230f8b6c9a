"""The policy simulator's read of the history: each stored case of a period as the simulator
needs it, with the customer's prior cases at its opening.

Read-only, two streamed queries walked side by side in open order, both ranges of the
`created_at` index (no sort, no temporary copy of the views): the period's case rows with their
view JSON, and the open times of the cases that count as prior cases (DESIGN 5.2 item 6, as
`store.service.recent_case_count` counts them at open) from 90 days before the period. A case's
prior cases are counted from a sliding 90-day window of the latter, so there is no query per
case, and only that window's (time, customer) pairs are held. The database hands the rows over
in batches (a server-side cursor on PostgreSQL), never all at once.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Connection, Row, Select, Text, cast, select

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
from domain.rules import AGENT_ADJUSTMENT, AGENT_EXCEPTION, RISK_TYPES, RISK_WINDOW
from domain.simulation import (
    DEFAULT_FLIPS_LISTED,
    DEFAULT_MINUTES_PER_REVIEW,
    SimulationReport,
    Skip,
    StoredCase,
    simulate,
)
from store.projection import CASE, CREDITED, utc

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
            # The view keeps the customer's choice of store credit in its decision only: a
            # decision with credit terms was asked for credit. (A drop-off chosen at open is
            # decided again as the policy's way back: the candidate may not offer it.)
            resolution="store_credit" if self.decision.store_credit is not None else "refund",
        )


def _cases(start: datetime, end: datetime) -> Select[Any]:
    """The period's cases in open order: an index range (`ix_case_created`), no sort."""
    return (
        select(
            CASE.c.id,
            CASE.c.customer_id,
            CASE.c.parent_case_id,
            CASE.c.created_at,
            CASE.c.outcome,
            CASE.c.refund_status,
            CASE.c.refund_cents,
            cast(CASE.c.view, Text).label("view"),
        )
        .where(CASE.c.created_at >= utc(start), CASE.c.created_at < utc(end))
        .order_by(CASE.c.created_at, CASE.c.id)
        .with_hint(CASE, "INDEXED BY ix_case_created", dialect_name="sqlite")
        .execution_options(stream_results=True, yield_per=BATCH)
    )


def _counted(start: datetime, end: datetime) -> Select[Any]:
    """The cases that count as prior cases, from 90 days before the period, in open order."""
    return (
        select(CASE.c.customer_id, CASE.c.created_at)
        .where(
            CASE.c.created_at >= utc(start - RISK_WINDOW),
            CASE.c.created_at < utc(end),
            CASE.c.type.in_(sorted(RISK_TYPES)),
            # A child case is the shop's doing, not the customer's (recent_case_count).
            CASE.c.parent_case_id.is_(None),
        )
        .order_by(CASE.c.created_at, CASE.c.id)
        .with_hint(CASE, "INDEXED BY ix_case_created", dialect_name="sqlite")
        .execution_options(stream_results=True, yield_per=BATCH)
    )


def stored_cases(
    conn: Connection, *, start: datetime, end: datetime
) -> Iterator[StoredCase | Skip]:
    """Every case opened in [start, end), in open order, as the simulator takes it (or why it
    is left out)."""
    start, end = utc(start), utc(end)
    counted = iter(conn.execute(_counted(start, end)))
    # The counted cases of the 90 days before the current case, oldest first, and how many
    # each customer has among them.
    window: deque[tuple[datetime, str]] = deque()
    per_customer: dict[str, int] = defaultdict(int)
    upcoming = next(counted, None)
    for row in conn.execute(_cases(start, end)):
        opened = utc(row.created_at)
        # Those opened before this case join (the case itself wasn't stored when `decide`
        # counted); those opened more than 90 days before it leave.
        while upcoming is not None and utc(upcoming.created_at) < opened:
            window.append((utc(upcoming.created_at), upcoming.customer_id))
            per_customer[upcoming.customer_id] += 1
            upcoming = next(counted, None)
        while window and window[0][0] < opened - RISK_WINDOW:
            _, customer = window.popleft()
            per_customer[customer] -= 1
            if not per_customer[customer]:
                del per_customer[customer]
        yield _stored(row, opened, per_customer.get(row.customer_id, 0))


def _stored(row: Row[Any], opened: datetime, prior: int) -> StoredCase | Skip:
    if row.parent_case_id is not None:
        # A complaint's resolution: its agent decided it on the complaint's terms, not the policy.
        return Skip.CHILD_CASE
    try:
        stored = _StoredRequest.model_validate_json(row.view)
        request = stored.request()
    except ValidationError:
        return Skip.UNREADABLE
    if any(stored.decision.fired(rule) for rule in (AGENT_EXCEPTION, AGENT_ADJUSTMENT)):
        return Skip.OVERRIDDEN
    # The projection's report columns (store.projection.report_values): the refund in
    # hundredths, its status, and the case's outcome, None until it has one.
    succeeded = row.refund_status == _SUCCEEDED and row.refund_cents is not None
    # A case that paid back in store credit keeps the credit, bonus included, in the same column.
    credited = row.refund_status == CREDITED and row.refund_cents is not None
    return StoredCase(
        id=row.id,
        request=request,
        decision=stored.decision,
        opened_at=opened,
        prior_cases=prior,
        refunded=Decimal(row.refund_cents).scaleb(-2) if succeeded else Decimal(0),
        credited=Decimal(row.refund_cents).scaleb(-2) if credited else Decimal(0),
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
