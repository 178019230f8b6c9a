"""The report figures on a seeded dataset with hand-computed answers, on both databases:
store.reports directly on fresh databases, and `GET /v1/reports/summary` over the real stack."""

from __future__ import annotations

import csv
import io
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from domain.models import CaseType
from store import reports
from store.db import migrate
from tests.api.conftest import Api, assert_problem
from tests.api.test_tracking_migration import engine  # noqa: F401  (fixture)
from tests.support.report_cases import DAY, Story, seed

MARCH = datetime(2026, 3, 1, tzinfo=UTC)
APRIL = datetime(2026, 4, 1, tzinfo=UTC)


def _counts(counts: list[Any]) -> dict[str | None, int]:
    return {c.key: c.count for c in counts}


def test_summary_figures_match_the_hand_computed_answers(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    ids = seed(engine, start=MARCH, queue="q-main", other_queue="q-other")
    with engine.connect() as conn:
        s = reports.summary(conn, start=MARCH, end=APRIL)

    assert s.cases == 8  # A-H; I opened in February
    assert _counts(s.volumes.by_type) == {"return": 5, "exchange": 1, "repair": 1, "refund": 1}
    assert s.volumes.by_type[0].key == "return"  # largest first
    assert _counts(s.volumes.by_status) == {"resolved": 6, "rejected": 1, "cancelled": 1}
    assert _counts(s.volumes.by_reason) == {
        "defective": 3, "changed_mind": 2, "size_fit": 1, "wrong_item": 1, "missing_item": 1,
    }  # fmt: skip

    # review: A, D, E, F, G met; B's passed; H was cancelled (neither).
    sla = {t.timer: (t.met, t.breached, t.met_pct) for t in s.sla.timers}
    assert sla == {
        "review": (5, 1, 83.33),
        "customer_shipment": (2, 0, 100.0),
        "transit": (0, 1, 0.0),
    }
    assert [t.timer for t in s.sla.timers] == ["review", "customer_shipment", "transit"]
    assert s.sla.breaches == 2
    assert [(b.case_id, b.timer) for b in s.sla.recent_breaches] == [
        (ids["D"], "transit"),
        (ids["B"], "review"),
    ]
    assert s.sla.recent_breaches[0].due_at == datetime(2026, 3, 7, tzinfo=UTC)

    times = {d.measure: (d.count, d.median_seconds, d.p90_seconds) for d in s.times}
    # first response: 60, 1800, 3600, 3600, 7200, 10800, 86400
    assert times["first_response"] == (7, 3600, 86400)
    # refund: 60, 3600, 172800, 345600, 432000
    assert times["refund"] == (5, 172800, 432000)
    # resolution: 60, 3600, 172800, 345600, 345600, 432000: the median is the middle pair's mean
    assert times["resolution"] == (6, 259200, 432000)

    assert [(r.currency, r.count, r.total) for r in s.refunds.totals] == [
        ("TWD", 4, Decimal("3300.00")),
        ("USD", 1, Decimal("100.00")),
    ]
    assert [(r.currency, r.method, r.count, r.total) for r in s.refunds.by_method] == [
        ("TWD", "card", 3, Decimal("2500.00")),
        ("TWD", "line_pay", 1, Decimal("800.00")),
        ("USD", "paypal", 1, Decimal("100.00")),
    ]

    shares = {o.outcome: (o.count, o.share) for o in s.outcomes.shares}
    assert shares == {
        "exchange": (1, 0.1667),
        "refund": (4, 0.6667),
        "store_credit": (0, 0.0),
        "repair": (0, 0.0),
        "kept_item": (1, 0.1667),
    }
    # Kept: B 200 + D 2000 + G 300; refunded: A 1000 + B 800 + C 300 + G 1200.
    assert [(r.currency, r.kept, r.refunded) for r in s.outcomes.revenue] == [
        ("TWD", Decimal("2500.00"), Decimal("3300.00")),
        ("USD", Decimal("0.00"), Decimal("100.00")),
    ]

    # SKU-A: A 1000 + C 300 + G's 800 share; SKU-B: B 800 + G's 400 share.
    skus = [(k.sku, k.currency, k.refunded, k.cases, _counts(k.top_reasons)) for k in s.top_skus]
    assert skus == [
        ("SKU-A", "TWD", Decimal("2100.00"), 3, {"defective": 2, "changed_mind": 1}),
        ("SKU-B", "TWD", Decimal("1200.00"), 2, {"defective": 1, "size_fit": 1}),
        ("SKU-E", "USD", Decimal("100.00"), 1, {"missing_item": 1}),
    ]

    assert (s.csat.count, s.csat.average) == (5, 3.8)
    assert _counts(s.csat.distribution) == {"1": 0, "2": 1, "3": 1, "4": 1, "5": 2}


def test_summary_filters_by_type_and_queue(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    seed(engine, start=MARCH, queue="q-main", other_queue="q-other")
    with engine.connect() as conn:
        returns = reports.summary(
            conn, start=MARCH, end=APRIL, type=CaseType.RETURN, queue="q-main"
        )
        other = reports.summary(conn, start=MARCH, end=APRIL, queue="q-other")
        repairs = reports.summary(conn, start=MARCH, end=APRIL, type=CaseType.REPAIR)
        empty = reports.summary(conn, start=APRIL, end=datetime(2026, 5, 1, tzinfo=UTC))

    assert returns.cases == 5  # A, B, C, G, H (C had no review; H was cancelled in it)
    assert {t.timer: (t.met, t.breached) for t in returns.sla.timers} == {
        "review": (2, 1), "customer_shipment": (2, 0),
    }  # fmt: skip
    assert [(r.currency, r.total) for r in returns.refunds.totals] == [("TWD", Decimal("3300.00"))]
    assert [k.sku for k in returns.top_skus] == ["SKU-A", "SKU-B"]
    assert (returns.csat.count, returns.csat.average) == (4, 3.5)
    assert other.cases == repairs.cases == 1
    assert {t.timer: t.met for t in other.sla.timers} == {"review": 1}
    assert [d.median_seconds for d in other.times] == [1800, None, None]
    assert other.top_skus == [] and other.refunds.totals == []
    assert empty.cases == 0 and empty.csat.average is None and empty.sla.timers == []
    assert all(o.share is None for o in empty.outcomes.shares)


def test_a_case_moved_to_another_queue_takes_its_figures_along(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    ids = seed(engine, start=MARCH, queue="q-main", other_queue="q-other")
    Story(engine, ids["A"], MARCH, revision=5).step(7 * DAY, queue="q-moved")
    with engine.connect() as conn:
        moved = reports.summary(conn, start=MARCH, end=APRIL, queue="q-moved")
        main = reports.summary(conn, start=MARCH, end=APRIL, queue="q-main")
    assert moved.cases == 1
    assert {t.timer: t.met for t in moved.sla.timers} == {"review": 1, "customer_shipment": 1}
    assert [(k.sku, k.refunded) for k in moved.top_skus] == [("SKU-A", Decimal("1000.00"))]
    # SKU-A keeps C's 300 and G's 800 share; SKU-B (B 800, G's 400) now leads.
    assert [(k.sku, k.refunded) for k in main.top_skus] == [
        ("SKU-B", Decimal("1200.00")),
        ("SKU-A", Decimal("1100.00")),
        ("SKU-E", Decimal("100.00")),
    ]


# ---- over HTTP ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeded(api: Api) -> dict[str, Any]:
    """The dataset in March 2024 (no other test opens cases then), in queues of its own."""
    queue = f"reports-{secrets.token_hex(4)}"
    other = f"{queue}-other"
    ids = seed(api.engine, start=datetime(2024, 3, 1, tzinfo=UTC), queue=queue, other_queue=other)
    return {"queue": queue, "other": other, "ids": ids}


PERIOD = {"from": "2024-03-01", "to": "2024-03-31"}


async def test_summary_over_http(api: Api, seeded: dict[str, Any]) -> None:
    response = await api.request(
        "GET", "/v1/reports/summary", "operator", params={**PERIOD, "queue": seeded["queue"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    # `to` as a date takes the whole day in.
    assert body["period"] == {"from": "2024-03-01T00:00:00Z", "to": "2024-04-01T00:00:00Z"}
    assert body["queue"] == seeded["queue"] and body["type"] is None
    assert body["cases"] == 7  # E is in the other queue
    assert body["refunds"]["totals"] == [
        {"currency": "TWD", "count": 4, "total": "3300.00"},
        {"currency": "USD", "count": 1, "total": "100.00"},
    ]
    assert body["csat"]["average"] == 3.8
    assert body["sla"]["recent_breaches"][0]["case_id"] == seeded["ids"]["D"]

    agent = await api.request(
        "GET",
        "/v1/reports/summary",
        "agent",
        params={**PERIOD, "queue": seeded["other"], "type": "repair"},
    )
    assert agent.status_code == 200, agent.text
    assert agent.json()["cases"] == 1
    assert agent.json()["volumes"]["by_status"] == [{"key": "rejected", "count": 1}]


async def test_summary_csv_exports_each_table(api: Api, seeded: dict[str, Any]) -> None:
    params = {**PERIOD, "queue": seeded["queue"]}
    response = await api.request(
        "GET", "/v1/reports/summary.csv", "operator", params={**params, "table": "top_skus"}
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [
        (r["sku"], r["currency"], r["refunded"], r["cases"], r["top_reasons"]) for r in rows
    ] == [
        ("SKU-A", "TWD", "2100.00", "3", "defective:2 changed_mind:1"),
        ("SKU-B", "TWD", "1200.00", "2", "defective:1 size_fit:1"),
        ("SKU-E", "USD", "100.00", "1", "missing_item:1"),
    ]
    for table in reports.ReportTable:
        answer = await api.request(
            "GET", "/v1/reports/summary.csv", "operator", params={**params, "table": table.value}
        )
        assert answer.status_code == 200, (table, answer.text)
        assert answer.text.splitlines()[0], table  # a header row, always
    sla = await api.request(
        "GET", "/v1/reports/summary.csv", "operator", params={**params, "table": "sla"}
    )
    assert sla.text.splitlines() == [
        "timer,met,breached,met_pct",
        "review,4,1,80.0",
        "customer_shipment,2,0,100.0",
        "transit,0,1,0.0",
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2024-04-01", "to": "2024-03-01"}, "from"),
        ({"from": "2023-01-01", "to": "2024-03-01"}, "to"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2024-13-01"}, "to"),
        ({"type": "warranty"}, "type"),
        ({"queue": "q" * 201}, "queue"),
    ],
    ids=["from-after-to", "over-366-days", "bad-from", "bad-to", "bad-type", "long-queue"],
)
async def test_bad_filters_are_422_naming_the_field(
    api: Api, params: dict[str, str], field: str
) -> None:
    for path, extra in (("/v1/reports/summary", {}), ("/v1/reports/summary.csv", {"table": "sla"})):
        response = await api.request("GET", path, "operator", params={**params, **extra})
        assert_problem(response, 422, field=field, type_suffix="validation-error")


async def test_unknown_csv_table_is_422_naming_table(api: Api) -> None:
    for params in ({"table": "everything"}, {}):
        response = await api.request("GET", "/v1/reports/summary.csv", "operator", params=params)
        assert_problem(response, 422, field="table")


async def test_default_period_is_the_last_30_days(api: Api) -> None:
    response = await api.request("GET", "/v1/reports/summary", "agent")
    assert response.status_code == 200, response.text
    period = response.json()["period"]
    start = datetime.fromisoformat(period["from"])
    end = datetime.fromisoformat(period["to"])
    assert (end - start).days == 30
    assert abs((datetime.now(UTC) - end).total_seconds()) < 60
