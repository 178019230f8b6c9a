"""The business figures `/metrics` reports, counted in SQL over the projection.

Counted from the records rather than by counters in each process: every API replica reports
the same numbers, a restart loses nothing, and a retried activity counts nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, select

from domain.names import DeadlineOutcome
from store.tables import Case, DeadlineOutcomeRow, Notification, core_table

_CASE = core_table(Case)
_NOTIFICATION = core_table(Notification)
_DEADLINES = core_table(DeadlineOutcomeRow)


@dataclass(frozen=True)
class Figures:
    """Counts by their labels."""

    # (type, status) -> cases
    cases: dict[tuple[str, str], int]
    # (type, outcome) -> cases that gave the customer something (domain.names.Outcome)
    outcomes: dict[tuple[str, str], int]
    # queue -> open cases waiting on an agent
    waiting_on_agent: dict[str, int]
    # (type,) -> open cases escalated for a missed deadline
    breached_open: dict[str, int]
    # (channel, status) -> notifications (one per case, step and channel)
    notifications: dict[tuple[str, str], int]
    # timer -> deadlines that came due unmet (store.projection's deadline outcomes)
    breaches: dict[str, int]
    # (status, currency) -> (refunds, amount in minor units)
    refunds: dict[tuple[str, str], tuple[int, int]]


def figures(conn: Connection) -> Figures:
    """Count the cases and notifications by what the metrics label them with."""
    cases = conn.execute(
        select(_CASE.c.type, _CASE.c.status, func.count()).group_by(_CASE.c.type, _CASE.c.status)
    ).all()
    outcomes = conn.execute(
        select(_CASE.c.type, _CASE.c.outcome, func.count())
        .where(_CASE.c.outcome.is_not(None))
        .group_by(_CASE.c.type, _CASE.c.outcome)
    ).all()
    waiting = conn.execute(
        select(_CASE.c.queue, func.count())
        .where(_CASE.c.needs_agent.is_(True))
        .group_by(_CASE.c.queue)
    ).all()
    breached = conn.execute(
        select(_CASE.c.type, func.count())
        .where(_CASE.c.needs_agent.is_(True), _CASE.c.sla_breached.is_(True))
        .group_by(_CASE.c.type)
    ).all()
    notifications = conn.execute(
        select(_NOTIFICATION.c.channel, _NOTIFICATION.c.status, func.count()).group_by(
            _NOTIFICATION.c.channel, _NOTIFICATION.c.status
        )
    ).all()
    breaches = conn.execute(
        select(_DEADLINES.c.timer, func.count())
        .where(_DEADLINES.c.outcome == DeadlineOutcome.BREACHED.value)
        .group_by(_DEADLINES.c.timer)
    ).all()
    refunds = conn.execute(
        select(
            _CASE.c.refund_status,
            _CASE.c.currency,
            func.count(),
            func.coalesce(func.sum(_CASE.c.refund_cents), 0),
        )
        .where(_CASE.c.refund_status.is_not(None))
        .group_by(_CASE.c.refund_status, _CASE.c.currency)
    ).all()
    return Figures(
        cases={(t, s): n for t, s, n in cases},
        outcomes={(t, o): n for t, o, n in outcomes},
        waiting_on_agent={q: n for q, n in waiting},
        breached_open={t: n for t, n in breached},
        notifications={(c, s): n for c, s, n in notifications},
        breaches={timer: n for timer, n in breaches},
        refunds={(s, c or ""): (n, int(cents)) for s, c, n, cents in refunds},
    )
