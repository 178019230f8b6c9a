"""Reports count store credit as its own outcome, with the credit issued (issue 11), on both
databases; a complaint's coupon is not store credit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from domain.names import Kind
from store import reports
from store.db import migrate
from tests.api.test_tracking_migration import engine  # noqa: F401  (fixture)
from tests.support.report_cases import DAY, open_case

MAY = datetime(2026, 5, 1, tzinfo=UTC)
JUNE = datetime(2026, 6, 1, tzinfo=UTC)


def _credit(amount: str, bonus: str, kind: str = "store_credit") -> dict[str, Any]:
    return {
        "amount": amount,
        "bonus": bonus,
        "currency": "TWD",
        "status": "issued",
        "credit_id": "sc_1",
        "code": "SC-1",
        "kind": kind,
    }


def test_store_credit_share_counts_credited_cases_and_amounts(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    day = MAY + DAY

    def opened(n: int, type: str, price: str, reason: str | None = "size_fit") -> Any:
        return open_case(
            engine,
            opened=day + n * DAY,
            type=type,
            reason=reason,
            queue="q-credit",
            items=[("SKU-C", price, 1)],
        )

    refunded = opened(0, "return", "1000.00")
    refunded.step(
        2 * DAY,
        status="resolved",
        refund={"amount": "1000.00", "currency": "TWD", "status": "succeeded"},
        resolved_at=(refunded.opened + 2 * DAY).isoformat(),
        entries=((Kind.REFUND_SUCCEEDED, "payment", {}),),
    )
    for n, (price, bonus) in enumerate((("990.00", "99.00"), ("500.00", "50.00")), start=1):
        credited = opened(n, "return", price)
        # Requested first: not yet an outcome.
        credited.step(DAY, store_credit={**_credit(price, bonus), "status": "requested"})
        credited.step(
            DAY + timedelta(minutes=1),
            status="resolved",
            store_credit=_credit(price, bonus),
            resolved_at=(credited.opened + DAY).isoformat(),
            entries=((Kind.STORE_CREDIT_ISSUED, "storefront", {}),),
        )
    coupon = opened(3, "complaint", "400.00", reason=None)
    coupon.step(DAY, status="resolved", store_credit=_credit("150.00", "0.00", kind="coupon"))

    with engine.connect() as conn:
        s = reports.summary(conn, start=MAY, end=JUNE, queue="q-credit")

    shares = {o.outcome: (o.count, o.share) for o in s.outcomes.shares}
    assert shares["store_credit"] == (2, 0.6667)
    assert shares["refund"] == (1, 0.3333)
    # Credit is not a refund: the refund figures hold the one refund only.
    assert [(r.currency, r.count, r.total) for r in s.refunds.totals] == [
        ("TWD", 1, Decimal("1000.00"))
    ]
    # Kept: the credited items (990 + 500); credited: 1089 + 550, bonuses included.
    assert [(r.currency, r.kept, r.refunded, r.credited) for r in s.outcomes.revenue] == [
        ("TWD", Decimal("1490.00"), Decimal("1000.00"), Decimal("1639.00"))
    ]
