"""The agents' queue: cases waiting on an agent, soonest deadline first, from the projection;
with a status chosen, every case in that status.

A case waits on an agent when it takes one of their decisions now (`Case.needs_agent`, set
by the worker's projection from the case's `agent_actions`). Ordered by next deadline, which
puts overdue cases first; cases with no deadline come last. The index
`ix_case_needs_agent_deadline` walks that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, func, or_
from sqlmodel import Session, col, select

from domain.models import CaseView
from store.service import case_view_from_json
from store.tables import Case

ASSIGNEE_ME = "me"
ASSIGNEE_NOBODY = "unassigned"
ASSIGNEE_ANYONE = "anyone"
PAGE_SIZE = 25


@dataclass(frozen=True)
class QueueFilters:
    """What an agent narrows the queue to; None is no filter."""

    type: str | None = None
    status: str | None = None
    queue: str | None = None
    # ASSIGNEE_ME, ASSIGNEE_NOBODY, ASSIGNEE_ANYONE (None), or an agent's email.
    assignee: str | None = None
    priority: str | None = None
    # A case ID, order ID, customer ID or customer email.
    search: str | None = None


@dataclass(frozen=True)
class QueuePage:
    """One page of the queue, how many cases it holds in all, and the counts per queue."""

    cases: list[CaseView]
    total: int
    page: int
    pages: int
    per_queue: dict[str, int]


def _filtered(filters: QueueFilters, *, me: str) -> Any:
    # A status chosen lists every case in it, waiting on an agent or not: that is how a
    # supervisor finds a rejected case still open to an exception, or an agent a parcel.
    where: list[Any] = [] if filters.status else [col(Case.needs_agent).is_(True)]
    for column, value in (
        (Case.type, filters.type),
        (Case.status, filters.status),
        (Case.queue, filters.queue),
        (Case.priority, filters.priority),
    ):
        if value:
            where.append(column == value)
    if filters.assignee == ASSIGNEE_ME:
        where.append(col(Case.assignee) == me)
    elif filters.assignee == ASSIGNEE_NOBODY:
        where.append(col(Case.assignee).is_(None))
    elif filters.assignee and filters.assignee != ASSIGNEE_ANYONE:
        where.append(col(Case.assignee) == filters.assignee)
    if filters.search:
        term = filters.search.strip()
        where.append(
            or_(
                col(Case.id) == term.upper(),
                col(Case.order_id) == term,
                col(Case.customer_id) == term,
                col(Case.customer_email) == term.lower(),
            )
        )
    return where


def queue_page(
    session: Session, *, filters: QueueFilters, me: str, page: int = 1, size: int = PAGE_SIZE
) -> QueuePage:
    """One page of the cases waiting on an agent, overdue first, then by next deadline."""
    where = _filtered(filters, me=me)
    total = session.exec(select(func.count()).select_from(Case).where(*where)).one()
    pages = max(1, -(-total // size))
    page = min(max(1, page), pages)
    rows = session.execute(
        select(cast(col(Case.view), Text))
        .where(*where)
        .order_by(col(Case.next_deadline).asc().nulls_last(), col(Case.id))
        .offset((page - 1) * size)
        .limit(size)
    ).all()
    # Counts per queue ignore the queue filter itself: they are how an agent picks one.
    unqueued = _filtered(QueueFilters(**{**filters.__dict__, "queue": None}), me=me)
    per_queue = dict(
        session.execute(
            select(Case.queue, func.count()).where(*unqueued).group_by(Case.queue)
        ).all()
    )
    return QueuePage(
        cases=[case_view_from_json(text) for (text,) in rows],
        total=total,
        page=page,
        pages=pages,
        per_queue={str(k): int(v) for k, v in sorted(per_queue.items())},
    )


def overdue(view: CaseView, now: datetime) -> bool:
    """Whether the case's next deadline has passed."""
    nxt = view.next_deadline
    return nxt is not None and nxt.due_at <= now
