"""Migration 0007 on both databases: the report columns backfilled from stored views and
their timeline rows, refunds by SKU, escalated breaches; and its way back."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy import Engine, inspect

from store.db import migrate
from store.projection import utc
from tests.api.test_migration_0005 import _downgrade
from tests.api.test_tracking_migration import _upgrade, engine  # noqa: F401  (fixture)

OPENED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
CASES = sa.table(
    "case",
    *(sa.column(n, sa.String) for n in ("id", "token", "type", "status", "order_id")),
    *(sa.column(n, sa.String) for n in ("customer_id", "reason", "queue", "priority")),
    sa.column("sla_breached", sa.Boolean),
    sa.column("view", sa.JSON),
    sa.column("revision", sa.Integer),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
EVENTS = sa.table(
    "timeline_event",
    sa.column("case_id", sa.String),
    sa.column("seq", sa.Integer),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("kind", sa.String),
    sa.column("actor", sa.String),
    sa.column("message", sa.String),
    sa.column("data", sa.JSON),
)


def _view(case_id: str, **fields: object) -> dict[str, object]:
    return {
        "id": case_id,
        "type": "return",
        "order": {"id": "SO-1", "currency": "TWD", "payment_method": "line_pay"},
        "customer": {"id": "C-1"},
        "items": [
            {"sku": "SKU-A", "unit_price": "300.00", "quantity": 2},
            {"sku": "SKU-B", "unit_price": "400.00", "quantity": 1},
        ],
        "decision": {"returnless": False},
        "created_at": OPENED.isoformat(),
        "updated_at": (OPENED + timedelta(days=3)).isoformat(),
        **fields,
    }


def _insert(db: Engine, case_id: str, status: str, view: dict[str, object]) -> None:
    with db.begin() as conn:
        conn.execute(
            CASES.insert().values(
                id=case_id, token=f"tok-{case_id}", type="return", status=status,
                order_id="SO-1", customer_id="C-1", reason="defective", queue="cs",
                priority="normal", sla_breached=False, view=json.loads(json.dumps(view)),
                revision=3, created_at=OPENED, updated_at=OPENED,
            )
        )  # fmt: skip


def _event(db: Engine, case_id: str, seq: int, hours: int, kind: str, **data: str) -> None:
    with db.begin() as conn:
        conn.execute(
            EVENTS.insert().values(
                case_id=case_id, seq=seq, at=OPENED + timedelta(hours=hours), kind=kind,
                actor="someone", message="", data=data or None,
            )
        )  # fmt: skip


def test_0007_backfills_the_report_columns_and_goes_back(engine: Engine) -> None:  # noqa: F811
    _upgrade(engine, "0006")
    refunded = _view(
        "R-REFUNDED",
        status="resolved",
        refund={"amount": "700.00", "currency": "TWD", "status": "succeeded"},
        resolved_at=(OPENED + timedelta(hours=50)).isoformat(),
        rating=4,
    )
    _insert(engine, "R-REFUNDED", "resolved", refunded)
    _event(engine, "R-REFUNDED", 0, 0, "opened")
    _event(engine, "R-REFUNDED", 1, 2, "approved")
    _event(engine, "R-REFUNDED", 2, 5, "note")
    _event(engine, "R-REFUNDED", 3, 48, "refund_succeeded")
    # Still in transit, its transit deadline breached (escalated) and listed overdue.
    due = OPENED + timedelta(days=2)
    transit = _view("R-INTRANSIT", deadlines=[{"name": "transit", "due_at": due.isoformat()}])
    _insert(engine, "R-INTRANSIT", "in_transit", transit)
    _event(engine, "R-INTRANSIT", 0, 1, "approved")
    _event(engine, "R-INTRANSIT", 1, 48, "escalated", timer="transit")
    _event(engine, "R-INTRANSIT", 2, 49, "escalated")  # an agent's: no timer, no breach
    migrate(engine)

    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(
                "SELECT id, currency, payment_method, items_cents, refund_cents, refund_status,"
                " outcome, rating, first_response_seconds, refund_seconds, resolution_seconds"
                ' FROM "case" ORDER BY id'
            )
        ).all()
        items = conn.execute(
            sa.text("SELECT case_id, sku, cents, currency, reason FROM refund_item ORDER BY sku")
        ).all()
        breaches = conn.execute(
            sa.text("SELECT case_id, timer, outcome, type, due_at FROM deadline_outcome")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("R-INTRANSIT", "TWD", "line_pay", 100000, None, None, None, None, 3600, None, None),
        ("R-REFUNDED", "TWD", "line_pay", 100000, 70000, "succeeded", "refund", 4,
         7200, 48 * 3600, 50 * 3600),
    ]  # fmt: skip
    # 700 over lines of 600 and 400.
    assert [tuple(r) for r in items] == [
        ("R-REFUNDED", "SKU-A", 42000, "TWD", "defective"),
        ("R-REFUNDED", "SKU-B", 28000, "TWD", "defective"),
    ]
    assert [tuple(r)[:4] for r in breaches] == [("R-INTRANSIT", "transit", "breached", "return")]
    stored_due = breaches[0][4]
    # SQLite hands back the stored text, PostgreSQL an aware datetime.
    assert utc(datetime.fromisoformat(str(stored_due))) == due

    _downgrade(engine, "0006")
    tables = set(inspect(engine).get_table_names())
    assert not {"deadline_outcome", "refund_item"} & tables
    columns = {c["name"] for c in inspect(engine).get_columns("case")}
    assert not {"outcome", "refund_cents", "first_response_at", "resolved_at"} & columns
    assert "ix_case_report" not in {ix["name"] for ix in inspect(engine).get_indexes("case")}
    migrate(engine)
    assert "ix_case_report" in {ix["name"] for ix in inspect(engine).get_indexes("case")}
