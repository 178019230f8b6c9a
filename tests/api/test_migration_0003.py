"""Migration 0003 on both databases: claims of the open cases and assignees, from stored views."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text

from store.db import migrate
from tests.api.test_tracking_migration import _upgrade, engine  # noqa: F401  (fixture)


def _view(case_id: str, skus: list[str], tracking: str | None, assignee: str | None) -> str:
    return json.dumps(
        {
            "id": case_id,
            "order": {"id": "SO-1"},
            "items": [{"sku": sku} for sku in skus],
            "shipments": [
                {"direction": "inbound", "tracking_number": tracking, "booked_by": "customer"},
                {"direction": "outbound", "tracking_number": "SELLER-1", "booked_by": "seller"},
            ],
            "assignee": assignee,
        }
    )


def test_0003_claims_what_open_cases_hold(engine: Engine) -> None:  # noqa: F811
    _upgrade(engine, "0002")
    cases = [
        # id, status, minutes ago, skus, customer's tracking number, assignee
        ("R-OPEN0001", "awaiting_shipment", 30, ["A", "B"], "BC-1", "ana"),
        ("R-OPEN0002", "in_transit", 20, ["B", "C"], "BC-1", None),  # a duplicate of old
        ("R-DONE0003", "closed", 10, ["D"], "BC-9", "bo"),
    ]
    with engine.begin() as conn:
        for case_id, status, ago, skus, tracking, assignee in cases:
            conn.execute(
                text(
                    'INSERT INTO "case" (id, token, type, status, order_id, customer_id, queue,'
                    " priority, sla_breached, view, revision, created_at, updated_at) VALUES"
                    " (:id, :token, 'return', :status, 'SO-1', 'C-1', 'cs', 'normal', false,"
                    " :view, 1, :created, :created)"
                ),
                {
                    "id": case_id,
                    "token": f"tok-{case_id}",
                    "status": status,
                    "view": _view(case_id, skus, tracking, assignee),
                    "created": f"2026-11-01 10:{60 - ago:02d}:00+00",
                },
            )
    migrate(engine)
    with engine.connect() as conn:
        claims = conn.execute(text("SELECT type, order_id, sku, case_id FROM case_claim")).all()
        numbers = conn.execute(text("SELECT tracking_number, case_id FROM tracking_claim")).all()
        assignees = conn.execute(text('SELECT id, assignee FROM "case" ORDER BY id')).all()
    # The oldest open case keeps what two cases held; a closed case holds nothing.
    assert sorted(tuple(r) for r in claims) == [
        ("return", "SO-1", "A", "R-OPEN0001"),
        ("return", "SO-1", "B", "R-OPEN0001"),
        ("return", "SO-1", "C", "R-OPEN0002"),
    ]
    assert [tuple(r) for r in numbers] == [("BC-1", "R-OPEN0001")]
    assert [tuple(r) for r in assignees] == [
        ("R-DONE0003", "bo"),
        ("R-OPEN0001", "ana"),
        ("R-OPEN0002", None),
    ]
