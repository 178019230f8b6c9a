"""The reports: figures of the cases opened in a period, computed in SQL over the projection.

Every figure reads the report columns the projection writes (store/projection.py
`report_values`, `firsts`) through the report indexes (`ix_case_report`,
`ix_deadline_outcome_report`, `ix_refund_item_report`), never the views' JSON, so a summary
costs a few index scans at any number of cases, on SQLite and on PostgreSQL alike. What the
figures mean is in docs/decisions.md, "Reports".
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    and_,
    case,
    func,
    select,
)

from domain.models import CaseType
from domain.names import DeadlineOutcome, Outcome, Timer
from store.projection import CASE, CREDITED, DEADLINE_OUTCOMES, REFUND_ITEMS, utc

# A longer period would scan years of cases for one answer; a year and a day covers any year.
MAX_PERIOD_DAYS = 366
DEFAULT_PERIOD_DAYS = 30
# The most recent breaches listed; the counts per timer cover them all.
RECENT_BREACHES = 20
TOP_SKUS = 10
TOP_REASONS = 3
SUCCEEDED = "succeeded"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Period(Frozen):
    """The cases counted: opened at or after `from`, before `to`."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime


class Count(Frozen):
    key: str | None
    count: int


class Volumes(Frozen):
    by_type: list[Count]
    by_status: list[Count]
    by_reason: list[Count]


class TimerSla(Frozen):
    """One named deadline's outcomes; `met_pct` is None when none settled."""

    timer: str
    met: int
    breached: int
    met_pct: float | None


class Breach(Frozen):
    case_id: str
    type: str
    timer: str
    due_at: datetime
    settled_at: datetime


class Sla(Frozen):
    timers: list[TimerSla]
    breaches: int
    recent_breaches: list[Breach]


class Duration(Frozen):
    """Seconds from the open to a milestone, over the cases that reached it."""

    measure: str
    count: int
    median_seconds: float | None
    p90_seconds: int | None


class RefundTotal(Frozen):
    currency: str
    count: int
    total: Decimal


class RefundByMethod(Frozen):
    currency: str
    method: str | None
    count: int
    total: Decimal


class Refunds(Frozen):
    totals: list[RefundTotal]
    by_method: list[RefundByMethod]


class OutcomeShare(Frozen):
    """Cases of one outcome; `share` of the cases with any outcome (None when there are none)."""

    outcome: str
    count: int
    share: float | None


class Revenue(Frozen):
    """Of the cases with an outcome: the items' value kept, the value refunded, and the store
    credit issued instead of refunds (bonus included; the shop kept that revenue)."""

    currency: str
    kept: Decimal
    refunded: Decimal
    credited: Decimal = Decimal("0.00")


class Outcomes(Frozen):
    shares: list[OutcomeShare]
    revenue: list[Revenue]


class SkuRefunds(Frozen):
    sku: str
    currency: str
    refunded: Decimal
    cases: int
    top_reasons: list[Count]


class Csat(Frozen):
    """Customer ratings (1-5); `average` is None with no rating."""

    count: int
    average: float | None
    distribution: list[Count]


class ReportTable(StrEnum):
    """The summary's tables, each exported as CSV."""

    BY_TYPE = "by_type"
    BY_STATUS = "by_status"
    BY_REASON = "by_reason"
    SLA = "sla"
    BREACHES = "breaches"
    TIMES = "times"
    REFUNDS = "refunds"
    REFUNDS_BY_METHOD = "refunds_by_method"
    OUTCOMES = "outcomes"
    REVENUE = "revenue"
    TOP_SKUS = "top_skus"
    CSAT = "csat"


class Summary(Frozen):
    """Every figure of the reports for one period and filter."""

    period: Period
    type: str | None
    queue: str | None
    cases: int
    volumes: Volumes
    sla: Sla
    times: list[Duration]
    refunds: Refunds
    outcomes: Outcomes
    top_skus: list[SkuRefunds]
    csat: Csat

    def table(self, table: ReportTable) -> tuple[list[str], list[dict[str, Any]]]:
        """One table of the summary: its columns and flat rows, values as JSON has them (its
        CSV export)."""
        match table:
            case ReportTable.BY_TYPE | ReportTable.BY_STATUS | ReportTable.BY_REASON:
                name = table.value.removeprefix("by_")
                counts: list[Count] = getattr(self.volumes, table.value)
                return [name, "cases"], [{name: c.key, "cases": c.count} for c in counts]
            case ReportTable.SLA:
                return _dumped(TimerSla, self.sla.timers)
            case ReportTable.BREACHES:
                return _dumped(Breach, self.sla.recent_breaches)
            case ReportTable.TIMES:
                return _dumped(Duration, self.times)
            case ReportTable.REFUNDS:
                return _dumped(RefundTotal, self.refunds.totals)
            case ReportTable.REFUNDS_BY_METHOD:
                return _dumped(RefundByMethod, self.refunds.by_method)
            case ReportTable.OUTCOMES:
                return _dumped(OutcomeShare, self.outcomes.shares)
            case ReportTable.REVENUE:
                return _dumped(Revenue, self.outcomes.revenue)
            case ReportTable.TOP_SKUS:
                columns, rows = _dumped(SkuRefunds, self.top_skus)
                for row, sku in zip(rows, self.top_skus, strict=True):
                    # One cell: "defective:3 wrong_item:1".
                    row["top_reasons"] = " ".join(f"{r.key}:{r.count}" for r in sku.top_reasons)
                return columns, rows
            case ReportTable.CSAT:
                distribution = self.csat.distribution
                return ["rating", "cases"], [
                    {"rating": c.key, "cases": c.count} for c in distribution
                ]


def _dumped(model: type[Frozen], items: Sequence[Frozen]) -> tuple[list[str], list[dict[str, Any]]]:
    return list(model.model_fields), [item.model_dump(mode="json") for item in items]


# The measures timed from the open, each a column of whole seconds with its own index.
MEASURES = {
    "first_response": CASE.c.first_response_seconds,
    "refund": CASE.c.refund_seconds,
    "resolution": CASE.c.resolution_seconds,
}
# The keys one grouped scan of the report index counts the cases by: the index starts with
# them, so the scan walks it in their order and never sorts (store/tables.py REPORT_COLUMNS).
CUBE = (
    CASE.c.type,
    CASE.c.status,
    CASE.c.reason,
    CASE.c.outcome,
    CASE.c.refund_status,
    CASE.c.currency,
    CASE.c.payment_method,
    CASE.c.rating,
)


def summary(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    type: CaseType | None = None,
    queue: str | None = None,
) -> Summary:
    """Every report figure of the cases opened in [start, end), of a type and queue if given."""
    where = _case_filter(start=start, end=end, type=type, queue=queue)
    cube = _cube(conn, where)
    refunds, outcomes, csat = _money(cube)
    volumes = _volumes(cube)
    return Summary(
        period=Period(from_=start, to=end),
        type=type.value if type else None,
        queue=queue,
        cases=sum(c.count for c in volumes.by_type),
        volumes=volumes,
        sla=_sla(conn, start=start, end=end, type=type, queue=queue),
        times=_times(conn, where, counted=cube.reached),
        refunds=refunds,
        outcomes=outcomes,
        top_skus=_top_skus(
            conn,
            start=start,
            end=end,
            type=type,
            queue=queue,
            currencies=[r.currency for r in refunds.totals],
        ),
        csat=csat,
    )


def _indexed(query: Select[Any], table: Any, index: str) -> Select[Any]:
    """The query, told to read `table` through `index` on SQLite. Its planner, with the
    statistics of ANALYZE, picked a list index for the period and read each case's row for
    the other columns (behind the view's overflow pages), then sorted to group: 400 ms for the
    volumes at 100k cases. PostgreSQL plans well without."""
    return query.with_hint(table, f"INDEXED BY {index}", dialect_name="sqlite")


def _case_filter(
    *, start: datetime, end: datetime, type: CaseType | None, queue: str | None
) -> ColumnElement[bool]:
    # Every type when none is asked for: a condition on the report index's first column, so
    # PostgreSQL scans that index alone (without one it read the table, 160 MB at 100k cases).
    types = [type.value] if type is not None else [t.value for t in CaseType]
    clauses = [CASE.c.type.in_(types), CASE.c.created_at >= start, CASE.c.created_at < end]
    if queue is not None:
        clauses.append(CASE.c.queue == queue)
    return and_(*clauses)


def _scoped(
    query: Select[Any],
    table: Any,
    index: str,
    *,
    start: datetime,
    end: datetime,
    type: CaseType | None,
    queue: str | None,
) -> Select[Any]:
    """A query over a table that copies its case's open time, type and queue, limited to the
    period and filters, through the table's own index."""
    clauses = [table.c.created_at >= start, table.c.created_at < end]
    if type is not None:
        clauses.append(table.c.type == type.value)
    if queue is not None:
        clauses.append(table.c.queue == queue)
    return _indexed(query.where(*clauses), table, index)


def _counts(counter: Counter[str | None]) -> list[Count]:
    """Largest first, then by key (None last)."""
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0] is None, kv[0] or ""))
    return [Count(key=key, count=n) for key, n in ordered]


class _Cube:
    """The cases of the period counted by every key of CUBE at once, with their sums."""

    def __init__(self, rows: Sequence[Any]) -> None:
        self.rows = rows
        self.reached: dict[str, int] = {m: sum(r[m] for r in rows) for m in MEASURES}


def _cube(conn: Connection, where: ColumnElement[bool]) -> _Cube:
    """One grouped scan of the report index: counts, refunded and kept sums, and how many
    cases reached each measure, by every key of CUBE (a few thousand groups at most)."""
    refunded = case((CASE.c.refund_status == SUCCEEDED, CASE.c.refund_cents), else_=0)
    credited = case((CASE.c.refund_status == CREDITED, CASE.c.refund_cents), else_=0)
    # An outcome's kept value: the items' value less what was refunded of it.
    kept = case(
        (CASE.c.outcome.is_(None), 0),
        (CASE.c.items_cents > refunded, CASE.c.items_cents - refunded),
        else_=0,
    )
    query = (
        select(
            *CUBE,
            func.count().label("cases"),
            func.coalesce(func.sum(refunded), 0).label("refunded"),
            func.coalesce(func.sum(kept), 0).label("kept"),
            func.coalesce(func.sum(credited), 0).label("credited"),
            *(func.count(column).label(measure) for measure, column in MEASURES.items()),
        )
        .where(where)
        .group_by(*CUBE)
    )
    rows = conn.execute(_indexed(query, CASE, "ix_case_report")).mappings().all()
    return _Cube(rows)


def _volumes(cube: _Cube) -> Volumes:
    """Cases by type, status and reason."""
    by: dict[str, Counter[str | None]] = defaultdict(Counter)
    for row in cube.rows:
        for key in ("type", "status", "reason"):
            by[key][row[key]] += row["cases"]
    return Volumes(
        by_type=_counts(by["type"]),
        by_status=_counts(by["status"]),
        by_reason=_counts(by["reason"]),
    )


def percentile_ranks(count: int) -> tuple[int, int, int]:
    """The 1-based ranks of the two middle values (the median is their mean) and of the 90th
    percentile (nearest rank: the smallest value with 90% of the values at or below it)."""
    return (count + 1) // 2, count // 2 + 1, math.ceil(0.9 * count)


def _times(
    conn: Connection, where: ColumnElement[bool], *, counted: dict[str, int]
) -> list[Duration]:
    """Median and p90 of each measure: the values at those ranks only leave the database.

    Each measure's index starts with its value, so the database reads the values in order
    and stops at the rank (no sort); the period and filters are checked on each entry."""
    at: dict[tuple[str, int], int] = {}
    for measure, n in counted.items():
        if not n:
            continue
        column = MEASURES[measure]
        low, _, p90 = percentile_ranks(n)
        ordered = _indexed(
            select(column).where(where, column.is_not(None)).order_by(column),
            CASE,
            f"ix_case_{measure}_seconds",
        )
        for first, taken in ((low, 2), (p90, 1)):
            for offset, value in enumerate(
                conn.execute(ordered.offset(first - 1).limit(taken)).scalars()
            ):
                at[measure, first + offset] = value
    times = []
    for measure in MEASURES:
        n = counted.get(measure, 0)
        if not n:
            times.append(Duration(measure=measure, count=0, median_seconds=None, p90_seconds=None))
            continue
        low, high, p90 = percentile_ranks(n)
        times.append(
            Duration(
                measure=measure,
                count=n,
                median_seconds=(at[measure, low] + at[measure, high]) / 2,
                p90_seconds=at[measure, p90],
            )
        )
    return times


def _money(cube: _Cube) -> tuple[Refunds, Outcomes, Csat]:
    """Refunds, outcomes with the revenue kept and refunded, and ratings."""
    refund_count: Counter[str] = Counter()
    refund_total: Counter[str] = Counter()
    method_count: Counter[tuple[str, str | None]] = Counter()
    method_total: Counter[tuple[str, str | None]] = Counter()
    outcome_count: Counter[str] = Counter()
    kept_total: Counter[str] = Counter()
    refunded_total: Counter[str] = Counter()
    credited_total: Counter[str] = Counter()
    ratings: Counter[int] = Counter()
    for row in cube.rows:
        n, paid, currency, method = (
            row["cases"],
            row["refunded"],
            row["currency"] or "",
            row["payment_method"],
        )
        if row["refund_status"] == SUCCEEDED:
            refund_count[currency] += n
            refund_total[currency] += paid
            method_count[currency, method] += n
            method_total[currency, method] += paid
        if row["outcome"] is not None:
            outcome_count[row["outcome"]] += n
            kept_total[currency] += row["kept"]
            refunded_total[currency] += paid
            credited_total[currency] += row["credited"]
        if row["rating"] is not None:
            ratings[row["rating"]] += n
    refunds = Refunds(
        totals=[
            RefundTotal(currency=c, count=refund_count[c], total=_amount(refund_total[c]))
            for c in sorted(refund_count)
        ],
        by_method=[
            RefundByMethod(
                currency=c, method=m, count=method_count[c, m], total=_amount(method_total[c, m])
            )
            for c, m in sorted(method_count, key=lambda cm: (cm[0], -method_total[cm], cm[1] or ""))
        ],
    )
    with_outcome = sum(outcome_count.values())
    outcomes = Outcomes(
        shares=[
            OutcomeShare(
                outcome=o.value,
                count=outcome_count[o.value],
                share=round(outcome_count[o.value] / with_outcome, 4) if with_outcome else None,
            )
            for o in Outcome
        ],
        revenue=[
            Revenue(
                currency=c,
                kept=_amount(kept_total[c]),
                refunded=_amount(refunded_total[c]),
                credited=_amount(credited_total[c]),
            )
            for c in sorted(kept_total)
        ],
    )
    rated = sum(ratings.values())
    csat = Csat(
        count=rated,
        average=round(sum(r * n for r, n in ratings.items()) / rated, 2) if rated else None,
        distribution=[Count(key=str(r), count=ratings[r]) for r in range(1, 6)],
    )
    return refunds, outcomes, csat


def _amount(cents: int) -> Decimal:
    return (Decimal(int(cents)) / 100).quantize(Decimal("0.01"))


def _sla(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    type: CaseType | None,
    queue: str | None,
) -> Sla:
    """Met and breached per timer, and the most recent breaches."""
    table = DEADLINE_OUTCOMES
    scope: dict[str, Any] = {"start": start, "end": end, "type": type, "queue": queue}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    counted = select(table.c.timer, table.c.outcome, func.count()).group_by(
        table.c.timer, table.c.outcome
    )
    for timer, outcome, n in conn.execute(
        _scoped(counted, table, "ix_deadline_outcome_report", **scope)
    ).all():
        counts[timer][outcome] += n
    timers = []
    # Timer order as domain.names lists them (the order of a case's life), unknown ones last.
    known = [t.value for t in Timer]
    for timer in sorted(counts, key=lambda t: (known.index(t) if t in known else len(known), t)):
        met = counts[timer][DeadlineOutcome.MET]
        breached = counts[timer][DeadlineOutcome.BREACHED]
        settled = met + breached
        timers.append(
            TimerSla(
                timer=timer,
                met=met,
                breached=breached,
                met_pct=round(100 * met / settled, 2) if settled else None,
            )
        )
    latest = (
        select(table.c.case_id, table.c.type, table.c.timer, table.c.due_at, table.c.settled_at)
        .where(table.c.outcome == DeadlineOutcome.BREACHED.value)
        .order_by(table.c.due_at.desc(), table.c.case_id, table.c.timer)
        .limit(RECENT_BREACHES)
    )
    recent = conn.execute(_scoped(latest, table, "ix_deadline_outcome_recent", **scope)).all()
    return Sla(
        timers=timers,
        breaches=sum(t.breached for t in timers),
        recent_breaches=[
            Breach(case_id=c, type=t, timer=timer, due_at=utc(due), settled_at=utc(at))
            for c, t, timer, due, at in recent
        ],
    )


def _top_skus(
    conn: Connection,
    *,
    start: datetime,
    end: datetime,
    type: CaseType | None,
    queue: str | None,
    currencies: Sequence[str],
) -> list[SkuRefunds]:
    """The SKUs refunded most in each currency, with the reasons their cases gave most."""
    table = REFUND_ITEMS
    scope: dict[str, Any] = {"start": start, "end": end, "type": type, "queue": queue}
    total = func.sum(table.c.cents)
    top: list[tuple[str, str, int, int]] = []
    for currency in currencies:
        most = (
            select(table.c.sku, total, func.count())
            .where(table.c.currency == currency)
            .group_by(table.c.sku)
            .order_by(total.desc(), table.c.sku)
            .limit(TOP_SKUS)
        )
        rows = conn.execute(_scoped(most, table, "ix_refund_item_report", **scope)).all()
        top += [(sku, currency, cents, n) for sku, cents, n in rows]
    reasons: dict[str, Counter[str | None]] = defaultdict(Counter)
    if top:
        why = (
            select(table.c.sku, table.c.reason, func.count())
            .where(table.c.sku.in_(sorted({sku for sku, *_ in top})))
            .group_by(table.c.sku, table.c.reason)
        )
        for sku, reason, n in conn.execute(
            _scoped(why, table, "ix_refund_item_report", **scope)
        ).all():
            reasons[sku][reason] += n
    return [
        SkuRefunds(
            sku=sku,
            currency=currency,
            refunded=_amount(cents),
            cases=n,
            top_reasons=_counts(reasons[sku])[:TOP_REASONS],
        )
        for sku, currency, cents, n in top
    ]
