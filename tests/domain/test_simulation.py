"""The simulator's own rules, without a database: the period, each case's course and what the
candidate pays for it, and the listed flips."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from domain.models import CaseRequest
from domain.policy import Policy, ReturnsPolicy
from domain.rules import evaluate
from domain.simulation import Course, PeriodError, Skip, StoredCase, period, simulate
from tests.support.factory import request_body

NOW = datetime(2026, 5, 20, 12, 0, tzinfo=UTC)
STRICT = Policy(returns=ReturnsPolicy(window_days=1))


def test_the_period_is_days_before_until_or_dates() -> None:
    assert period("90d", None, now=NOW) == (NOW - timedelta(days=90), NOW)
    assert period("2026-05-01", "2026-05-10", now=NOW) == (
        datetime(2026, 5, 1, tzinfo=UTC),
        datetime(2026, 5, 11, tzinfo=UTC),  # the `until` day is taken in
    )
    assert period("7d", "2026-05-10T08:00:00+08:00", now=NOW) == (
        datetime(2026, 5, 3, 0, tzinfo=UTC),
        datetime(2026, 5, 10, 0, tzinfo=UTC),
    )
    for since, until, field in (
        ("0d", None, "since"),
        ("367d", None, "since"),
        ("soon", None, "since"),
        ("2026-05-10", "2026-05-01", "since"),
        ("1d", "later", "until"),
    ):
        with pytest.raises(PeriodError) as raised:
            period(since, until, now=NOW)
        assert raised.value.field == field


def _case(refunded: str, *, settled: bool, case_id: str, hours: int = 0) -> StoredCase:
    """A return of a 990 T-shirt delivered 3 days before it opened (in the default window)."""
    opened = NOW + timedelta(hours=hours)
    request = CaseRequest.model_validate(request_body(now=opened))
    decision = evaluate(request, policy=Policy(), now=opened, prior_cases=0)
    return StoredCase(
        id=case_id, request=request, decision=decision, opened_at=opened, prior_cases=0,
        refunded=Decimal(refunded), settled=settled,
    )  # fmt: skip


def test_what_the_candidate_pays_follows_the_course_of_each_case() -> None:
    full = _case("990.00", settled=True, case_id="R-FULL", hours=1)
    partial = _case("500.00", settled=True, case_id="R-PART", hours=2)  # an inspection's amount
    running = _case("0", settled=False, case_id="R-RUN", hours=3)
    assert [c.course for c in (full, partial, running)] == [
        Course.AS_DECIDED, Course.OTHER, Course.OTHER,
    ]  # fmt: skip
    refused = full.decision.model_copy(update={"eligible": False, "review": "none"})
    rejected = StoredCase(**{**full.__dict__, "id": "R-REJ", "decision": refused, "refunded": 0,
                             "settled": False})  # fmt: skip
    assert rejected.course is Course.REJECTED

    # Under the same policy: the paid amounts stay; the refused case is refused again.
    same = simulate([full, partial, running, Skip.CHILD_CASE], Policy(), start=NOW, end=NOW)
    assert same.overall.candidate.refunds == {"TWD": Decimal("1490.00")}
    assert (same.cases, same.skipped, same.flips) == (3, {"child_case": 1}, 0)
    # A candidate that approves what was refused: it settles on the candidate's terms.
    loose = simulate([rejected], Policy(), start=NOW, end=NOW).overall
    assert (loose.happened.refunds, loose.candidate.refunds) == (
        {"TWD": Decimal("0")}, {"TWD": Decimal("990.00")},
    )  # fmt: skip
    # A 1-day window refuses all of them: nothing is paid, whatever their course.
    strict = simulate([full, partial, running], STRICT, start=NOW, end=NOW, flips_listed=2)
    assert strict.overall.change.refunds == {"TWD": Decimal("-1490.00")}
    assert strict.flips == 3
    assert [f.case_id for f in strict.flips_listed] == ["R-RUN", "R-PART"]  # the newest two
