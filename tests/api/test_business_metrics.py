"""Business figures on /metrics: counted in SQL on both databases, and served by the API."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, insert

from api import metrics as business_metrics
from store.db import migrate
from store.figures import figures
from store.tables import Case, DeadlineOutcomeRow, Notification, core_table, utcnow
from tests.api.conftest import Api
from tests.api.test_actions import OPENED_MUG
from tests.api.test_tracking_migration import engine  # noqa: F401  (fixture)

ROWS = [  # id, type, status, queue, needs_agent, sla_breached, refund status, cents
    ("R-1", "return", "awaiting_review", "customer_service", True, False, None, None),
    ("R-2", "return", "awaiting_review", "quality", True, True, "failed", 50000),
    ("R-3", "return", "closed", "customer_service", False, True, "succeeded", 99000),
    ("R-4", "return", "closed", "customer_service", False, False, "succeeded", 45050),
    ("C-1", "complaint", "awaiting_review", "quality", True, False, None, None),
    ("C-2", "complaint", "expired", "quality", False, False, None, None),
]
DEADLINES = [  # case, timer, outcome
    ("R-2", "review", "breached"),
    ("R-3", "carrier_pickup", "breached"),
    ("R-3", "review", "met"),
    ("C-1", "first_response", "breached"),
]


def test_the_figures_count_the_records(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    now = utcnow()
    with engine.begin() as conn:
        conn.execute(
            insert(core_table(Case)),
            [
                {"id": i, "token": f"t-{i}", "type": t, "status": s, "order_id": "SO", "queue": q,
                 "customer_id": "C", "priority": "normal", "needs_agent": n, "sla_breached": b,
                 "refund_status": r, "refund_cents": c, "currency": "TWD" if r else None,
                 "outcome": "refund" if r == "succeeded" else None,
                 "view": {}, "revision": 1, "created_at": now, "updated_at": now}
                for i, t, s, q, n, b, r, c in ROWS
            ],
        )  # fmt: skip
        conn.execute(
            insert(core_table(DeadlineOutcomeRow)),
            [
                {"case_id": case, "timer": timer, "due_at": now, "outcome": outcome,
                 "settled_at": now, "type": "return", "queue": "q", "created_at": now}
                for case, timer, outcome in DEADLINES
            ],
        )  # fmt: skip
        conn.execute(
            insert(core_table(Notification)),
            [
                {"id": f"R-1:{n}:email", "case_id": "R-1", "channel": "email", "message": "m",
                 "locale": "en", "recipient": "a@b.c", "status": status, "attempts": 1,
                 "created_at": now, "updated_at": now}
                for n, status in enumerate(["sent", "sent", "failed"])
            ],
        )  # fmt: skip
    with engine.connect() as conn:
        found = figures(conn)
    assert found.cases == {
        ("return", "awaiting_review"): 2,
        ("return", "closed"): 2,
        ("complaint", "awaiting_review"): 1,
        ("complaint", "expired"): 1,
    }
    assert found.outcomes == {("return", "refund"): 2}
    assert found.waiting_on_agent == {"customer_service": 1, "quality": 2}
    # R-3 breached but has ended: no longer anyone's to act on.
    assert found.breached_open == {"return": 1}
    assert found.notifications == {("email", "sent"): 2, ("email", "failed"): 1}
    assert found.breaches == {"review": 1, "carrier_pickup": 1, "first_response": 1}
    assert found.refunds == {("failed", "TWD"): (1, 50000), ("succeeded", "TWD"): (2, 144050)}


def _value(scraped: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", scraped, re.M)
    assert found, f"{name}{{{wanted}}} not in /metrics"
    return float(found.group(1))


async def test_metrics_serve_the_figures(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(business_metrics, "CACHE_SECONDS", 0.0)  # read afresh on every scrape
    case = await api.open(items=OPENED_MUG)
    await api.reach(case["id"], "awaiting_review", recorded=True)
    scraped = (await api.request("GET", "/metrics", None)).text
    assert _value(scraped, "aftersales_cases", type="return", status="awaiting_review") >= 1
    assert _value(scraped, "aftersales_cases_opened", type="return") >= 1
    assert _value(scraped, "aftersales_cases_waiting_on_agent", queue="customer_service") >= 1
    assert _value(scraped, "aftersales_notifications", channel="email", status="sent") >= 1
    assert "process_cpu_seconds_total" in scraped  # the process's own metrics stay
    for family in ("aftersales_sla_breaches", "aftersales_refunds", "aftersales_refund_amount"):
        assert f"# HELP {family} " in scraped
