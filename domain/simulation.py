"""The policy simulator: decide a period's stored requests again under a candidate policy and
say what would have changed, overall and per type, reason and item category.

Pure: the store hands in each stored case (its request, stored decision, opened time, what it
paid, and the customer's prior cases at its opening); nothing here reads a database or touches
a running case. The definitions of "what happened" and "what the candidate would do" are in
docs/decisions.md ("Issue 11: policy simulator"); `Course` and `_money` below implement them.
"""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, Field

from domain.models import CaseRequest, CaseType, Decision, RuleHit
from domain.money import round_money
from domain.policy import Policy
from domain.rules import evaluate

# A year and a day covers any year, as the reports' period (store.reports.MAX_PERIOD_DAYS).
MAX_PERIOD_DAYS = 366
DEFAULT_SINCE = "90d"
# An agent's review of a case, in minutes, unless the caller says otherwise: reading the
# request, its photos and the customer's history, and deciding.
DEFAULT_MINUTES_PER_REVIEW = 15
MAX_MINUTES_PER_REVIEW = 24 * 60
# Flips listed with their rules (the newest); all of them are counted.
DEFAULT_FLIPS_LISTED = 100
MAX_FLIPS_LISTED = 1000
# The decision fields whose change makes a case "flip" (its money changes are in the figures).
FLIP_FIELDS = (
    "eligible",
    "review",
    "returnless",
    "fast_refund",
    "advanced_exchange",
    "shipping_payer",
    "high_risk",
)

_RELATIVE = re.compile(r"^(\d{1,4})d$")


class PeriodError(ValueError):
    """A period that can't be simulated, with the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def _moment(field: str, raw: str, *, end: bool) -> datetime:
    """An ISO date or datetime; a date as an end takes that day in. No offset means UTC."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=UTC)
        at = datetime.fromisoformat(raw)
    except ValueError:
        raise PeriodError(
            field, "must be a number of days (90d) or an ISO date (2026-11-01) or datetime"
        ) from None
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def period(since: str, until: str | None, *, now: datetime) -> tuple[datetime, datetime]:
    """The period [start, end) asked for: `since` is "<N>d" (the N days before `until`) or an
    ISO date or datetime; `until` an ISO date (taken in) or datetime, or None for `now`."""
    end = _moment("until", until, end=True) if until else now.astimezone(UTC)
    relative = _RELATIVE.match(since.strip())
    if relative:
        days = int(relative.group(1))
        if days < 1:
            raise PeriodError("since", "must be at least 1d")
        start = end - timedelta(days=days)
    else:
        start = _moment("since", since.strip(), end=False)
    if start >= end:
        raise PeriodError("since", "must come before `until`")
    if end - start > timedelta(days=MAX_PERIOD_DAYS):
        raise PeriodError("since", f"the period is longer than {MAX_PERIOD_DAYS} days")
    return start, end


class Course(StrEnum):
    """How a stored case went, which says what the candidate's decision would have paid."""

    # Settled on the terms of its decision: it paid exactly the decision's refund estimate (a
    # full refund, a returnless refund, an exchange's price difference, nothing for a like-
    # for-like exchange or a repair). Under the candidate it would settle on the candidate's.
    AS_DECIDED = "as_decided"
    # Refused at open and never ran: under a candidate that approves it, it is assumed to
    # settle on the candidate's terms.
    REJECTED = "rejected"
    # Anything else: still running, cancelled, expired, or an amount an agent or an
    # inspection set. The candidate can't foresee those: it pays what was paid, if it approves.
    OTHER = "other"


class Skip(StrEnum):
    """Why a stored case of the period is left out of the simulation."""

    # A complaint's resolution (a child case): its agent decided it, not the policy.
    CHILD_CASE = "child_case"
    # Its stored view no longer reads as a request (written by an older, looser version).
    UNREADABLE = "unreadable"
    # A supervisor overrode the policy (an exception, a changed fee or shipping payer): its
    # stored decision is a person's, not the policy's, and would read as a flip under any.
    OVERRIDDEN = "overridden"


@dataclass(frozen=True)
class StoredCase:
    """A stored case as the simulator needs it."""

    id: str
    request: CaseRequest
    decision: Decision
    opened_at: datetime
    # The customer's return / exchange / refund cases in the 90 days before it opened.
    prior_cases: int
    # What its succeeded refund paid (0 when none did), in the order's currency.
    refunded: Decimal
    # Whether it reached an outcome (store.projection.outcome): a refund, the item kept, an
    # exchange or a repair.
    settled: bool
    # What it gave in store credit instead, bonus included (0 when none).
    credited: Decimal = Decimal(0)

    @property
    def course(self) -> Course:
        """How the case went (docs/decisions.md, "Issue 11: policy simulator")."""
        credit = self.decision.store_credit
        if credit is not None and self.settled and self.credited == credit.total:
            return Course.AS_DECIDED
        if (
            credit is None
            and self.settled
            and self.refunded == self.decision.refund_estimate.amount
        ):
            return Course.AS_DECIDED
        if not self.decision.eligible and self.refunded == 0 and self.credited == 0:
            return Course.REJECTED
        return Course.OTHER


class Figures(BaseModel):
    """One side's figures (what happened, or the candidate's), or the change between them."""

    cases: int = 0
    eligible: int = 0
    rejected: int = 0
    auto_approved: int = 0
    manual_review: int = 0
    # Auto-approved cases over all cases decided, 0..1 (4 decimals).
    auto_approval_rate: float = 0.0
    # The manual reviews at the minutes per review asked for, in hours (2 decimals).
    review_hours: float = 0.0
    returnless: int = 0
    fast_refund: int = 0
    high_risk: int = 0
    # Money per currency (the orders' own): refunds paid, store credit issued (bonus
    # included), restocking fees kept.
    refunds: dict[str, Decimal] = {}
    store_credit: dict[str, Decimal] = {}
    fees: dict[str, Decimal] = {}


class Comparison(BaseModel):
    """What happened, what the candidate would do, and the change, for one group of cases."""

    # The group's key: a case type, a reason or an item category; None where the cases have
    # none (a complaint's reason, an item without a category), "all" for the overall figures.
    key: str | None
    happened: Figures
    candidate: Figures
    change: Figures
    flips: int = 0


class FieldChange(BaseModel):
    """One decision field that flips: its value as stored and under the candidate."""

    field: str
    before: str
    after: str


class Flip(BaseModel):
    """A case whose decision flips, with the rules that fired before and after."""

    case_id: str
    type: CaseType
    reason: str | None
    categories: list[str]
    opened_at: datetime
    changes: list[FieldChange]
    rules_before: list[RuleHit]
    rules_after: list[RuleHit]


class SimulationReport(BaseModel):
    """The differences a candidate policy would have made to a period's cases."""

    start: datetime
    end: datetime
    minutes_per_review: int
    # Cases decided again; child cases (a complaint's resolution, decided by its agent) and
    # stored requests that can't be read again are left out and counted here.
    cases: int
    skipped: dict[str, int]
    overall: Comparison
    by_type: list[Comparison]
    by_reason: list[Comparison]
    by_category: list[Comparison]
    # How many cases flip, and how many per change ("review: auto -> manual").
    flips: int
    flip_counts: dict[str, int]
    # The newest flips, newest first, up to the number asked for.
    flips_listed: list[Flip]


MinutesPerReview = Annotated[int, Field(ge=1, le=MAX_MINUTES_PER_REVIEW)]


@dataclass(frozen=True)
class Paid:
    """What one case paid back (a refund, or store credit with its bonus) and kept (a fee)."""

    refund: Decimal = Decimal(0)
    credit: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)


@dataclass
class _Tally:
    """Running counts and sums of one side of one group."""

    cases: int = 0
    eligible: int = 0
    auto: int = 0
    manual: int = 0
    returnless: int = 0
    fast_refund: int = 0
    high_risk: int = 0
    refunds: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    credit: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    fees: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, decision: Decision, currency: str, paid: Paid) -> None:
        self.cases += 1
        self.eligible += decision.eligible
        self.auto += decision.eligible and decision.review == "auto"
        self.manual += decision.eligible and decision.review == "manual"
        self.returnless += decision.returnless
        self.fast_refund += decision.fast_refund
        self.high_risk += decision.high_risk
        self.refunds[currency] += paid.refund
        self.credit[currency] += paid.credit
        self.fees[currency] += paid.fee

    def figures(self, minutes_per_review: int) -> Figures:
        return Figures(
            cases=self.cases,
            eligible=self.eligible,
            rejected=self.cases - self.eligible,
            auto_approved=self.auto,
            manual_review=self.manual,
            auto_approval_rate=round(self.auto / self.cases, 4) if self.cases else 0.0,
            review_hours=round(self.manual * minutes_per_review / 60, 2),
            returnless=self.returnless,
            fast_refund=self.fast_refund,
            high_risk=self.high_risk,
            refunds=_cents(self.refunds),
            store_credit=_cents(self.credit),
            fees=_cents(self.fees),
        )


def _cents(amounts: dict[str, Decimal]) -> dict[str, Decimal]:
    # Every amount travels with two decimals (domain.models.Amount), so sums show them too.
    return {currency: round_money(amounts[currency], 2) for currency in sorted(amounts)}


def _change(before: Figures, after: Figures) -> Figures:
    def money(a: dict[str, Decimal], b: dict[str, Decimal]) -> dict[str, Decimal]:
        return {c: b.get(c, Decimal(0)) - a.get(c, Decimal(0)) for c in sorted({*a, *b})}

    return Figures(
        cases=after.cases - before.cases,
        eligible=after.eligible - before.eligible,
        rejected=after.rejected - before.rejected,
        auto_approved=after.auto_approved - before.auto_approved,
        manual_review=after.manual_review - before.manual_review,
        auto_approval_rate=round(after.auto_approval_rate - before.auto_approval_rate, 4),
        review_hours=round(after.review_hours - before.review_hours, 2),
        returnless=after.returnless - before.returnless,
        fast_refund=after.fast_refund - before.fast_refund,
        high_risk=after.high_risk - before.high_risk,
        refunds=money(before.refunds, after.refunds),
        store_credit=money(before.store_credit, after.store_credit),
        fees=money(before.fees, after.fees),
    )


@dataclass
class _Group:
    happened: _Tally = field(default_factory=_Tally)
    candidate: _Tally = field(default_factory=_Tally)
    flips: int = 0

    def comparison(self, key: str | None, minutes_per_review: int) -> Comparison:
        happened = self.happened.figures(minutes_per_review)
        candidate = self.candidate.figures(minutes_per_review)
        return Comparison(
            key=key,
            happened=happened,
            candidate=candidate,
            change=_change(happened, candidate),
            flips=self.flips,
        )


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "none" if value is None else str(value)


def flipped_fields(before: Decision, after: Decision) -> list[FieldChange]:
    """The decision fields (FLIP_FIELDS) whose value differs."""
    return [
        FieldChange(
            field=name, before=_show(getattr(before, name)), after=_show(getattr(after, name))
        )
        for name in FLIP_FIELDS
        if getattr(before, name) != getattr(after, name)
    ]


def _money(case: StoredCase, candidate: Decision) -> tuple[Paid, Paid]:
    """What happened and what the candidate would pay, for one case."""
    stored = case.decision
    course = case.course
    happened_fee = stored.restocking_fee.amount if course is Course.AS_DECIDED else Decimal(0)
    happened = Paid(refund=case.refunded, credit=case.credited, fee=happened_fee)
    if not candidate.eligible:
        return happened, Paid()
    if course is Course.OTHER:
        return happened, Paid(refund=case.refunded, credit=case.credited)
    # As decided, or refused at open: settled on the candidate's own terms, in credit when the
    # customer chose it (the candidate's bonus included).
    fee = candidate.restocking_fee.amount
    if candidate.store_credit is not None:
        return happened, Paid(credit=candidate.store_credit.total, fee=fee)
    return happened, Paid(refund=candidate.refund_estimate.amount, fee=fee)


class Simulator:
    """Decides stored cases again under a candidate policy, one at a time, and tallies."""

    def __init__(
        self,
        candidate: Policy,
        *,
        minutes_per_review: int = DEFAULT_MINUTES_PER_REVIEW,
        flips_listed: int = DEFAULT_FLIPS_LISTED,
    ) -> None:
        self.candidate = candidate
        self.minutes_per_review = minutes_per_review
        self.flips_listed = flips_listed
        self.overall = _Group()
        self.groups: dict[str, dict[str | None, _Group]] = {
            "type": defaultdict(_Group),
            "reason": defaultdict(_Group),
            "category": defaultdict(_Group),
        }
        self.skipped: dict[str, int] = defaultdict(int)
        self.flips = 0
        self.flip_counts: dict[str, int] = defaultdict(int)
        # The newest flips: a min-heap by (opened, id), so the oldest leaves first.
        self._listed: list[tuple[datetime, str, Flip]] = []

    def skip(self, why: Skip) -> None:
        """Count a stored case left out of the simulation, and why."""
        self.skipped[why.value] += 1

    def add(self, case: StoredCase) -> Decision:
        """Decide a stored case again under the candidate and tally it; the new decision."""
        request = case.request
        candidate = evaluate(
            request, policy=self.candidate, now=case.opened_at, prior_cases=case.prior_cases
        )
        happened, would = _money(case, candidate)
        currency = request.order.currency
        changes = flipped_fields(case.decision, candidate)
        categories = sorted({item.category or "" for item in request.items})
        reason = request.reason.value if request.reason else None
        groups = [
            self.overall,
            self.groups["type"][request.type.value],
            self.groups["reason"][reason],
            # A case counts once in each category its items hold: the rows overlap.
            *(self.groups["category"][c or None] for c in categories),
        ]
        for group in groups:
            group.happened.add(case.decision, currency, happened)
            group.candidate.add(candidate, currency, would)
            group.flips += bool(changes)
        if changes:
            self.flips += 1
            for change in changes:
                self.flip_counts[f"{change.field}: {change.before} -> {change.after}"] += 1
            self._keep(
                Flip(
                    case_id=case.id,
                    type=request.type,
                    reason=reason,
                    categories=[c for c in categories if c],
                    opened_at=case.opened_at,
                    changes=changes,
                    rules_before=case.decision.rules,
                    rules_after=candidate.rules,
                )
            )
        return candidate

    def _keep(self, flip: Flip) -> None:
        if self.flips_listed <= 0:
            return
        entry = (flip.opened_at, flip.case_id, flip)
        if len(self._listed) < self.flips_listed:
            heapq.heappush(self._listed, entry)
        elif entry[:2] > self._listed[0][:2]:
            heapq.heapreplace(self._listed, entry)

    def report(self, start: datetime, end: datetime) -> SimulationReport:
        """The figures of every case added so far."""
        minutes = self.minutes_per_review

        def rows(name: str) -> list[Comparison]:
            groups = self.groups[name]
            # Most cases first, then by key, so the busiest groups lead every table.
            keys = sorted(groups, key=lambda k: (-groups[k].happened.cases, k or ""))
            return [groups[k].comparison(k, minutes) for k in keys]

        listed = sorted(self._listed, key=lambda e: e[:2], reverse=True)
        return SimulationReport(
            start=start,
            end=end,
            minutes_per_review=minutes,
            cases=self.overall.happened.cases,
            skipped=dict(sorted(self.skipped.items())),
            overall=self.overall.comparison("all", minutes),
            by_type=rows("type"),
            by_reason=rows("reason"),
            by_category=rows("category"),
            flips=self.flips,
            flip_counts=dict(sorted(self.flip_counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            flips_listed=[flip for _, _, flip in listed],
        )


def simulate(
    cases: Iterable[StoredCase | Skip],
    candidate: Policy,
    *,
    start: datetime,
    end: datetime,
    minutes_per_review: int = DEFAULT_MINUTES_PER_REVIEW,
    flips_listed: int = DEFAULT_FLIPS_LISTED,
) -> SimulationReport:
    """Decide every stored case again under `candidate` and report the differences."""
    simulator = Simulator(
        candidate, minutes_per_review=minutes_per_review, flips_listed=flips_listed
    )
    for case in cases:
        if isinstance(case, Skip):
            simulator.skip(case)
        else:
            simulator.add(case)
    return simulator.report(start, end)
