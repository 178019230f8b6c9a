"""Migration 0006 on both databases (agent accounts, the agents' queue), and the migrations at
head building exactly the tables the models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

import store.tables  # noqa: F401  (registers every table on the metadata)
from store.db import migrate
from tests.api.test_migration_0005 import _downgrade
from tests.api.test_tracking_migration import _upgrade, engine  # noqa: F401  (fixture)

ACCOUNT_TABLES = {"agent", "agent_token", "console_session", "login_failure"}


def test_migrations_at_head_match_the_models(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert differences == []


def _insert(
    db: Engine, case_id: str, status: str, email: str | None, breached: bool = False
) -> None:
    customer = f'"email": "{email}"' if email else '"locale": "en"'
    with db.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO "case" (id, token, type, status, order_id, customer_id, queue,'
                " priority, sla_breached, view, revision, created_at, updated_at) VALUES"
                " (:id, :token, 'return', :status, 'SO-1', 'C-1', 'customer_service', 'normal',"
                " :breached, :view, 1, '2026-11-01 10:00:00+00', '2026-11-01 10:00:00+00')"
            ),
            {"id": case_id, "token": f"tok-{case_id}", "status": status, "breached": breached,
             "view": '{"customer": {"id": "C-1", ' + customer + "}}"},
        )  # fmt: skip


def test_0006_adds_accounts_and_backfills_the_queue_columns(engine: Engine) -> None:  # noqa: F811
    _upgrade(engine, "0005")
    _insert(engine, "R-REVIEW01", "awaiting_review", "Ann@Example.COM")
    _insert(engine, "R-SHIPPING", "awaiting_shipment", None)
    # Escalated for a missed deadline: an agent's, until it ends.
    _insert(engine, "R-BREACHED", "awaiting_shipment", None, breached=True)
    _insert(engine, "R-ENDEDLATE", "expired", None, breached=True)
    migrate(engine)
    assert set(inspect(engine).get_table_names()) >= ACCOUNT_TABLES
    with engine.connect() as conn:
        rows = conn.execute(
            text('SELECT id, needs_agent, customer_email FROM "case" ORDER BY id')
        ).all()
    assert [tuple(row) for row in rows] == [
        ("R-BREACHED", True, None),
        ("R-ENDEDLATE", False, None),
        ("R-REVIEW01", True, "ann@example.com"),
        ("R-SHIPPING", False, None),
    ]
    _downgrade(engine, "0005")
    assert not ACCOUNT_TABLES & set(inspect(engine).get_table_names())
    assert "needs_agent" not in {c["name"] for c in inspect(engine).get_columns("case")}
    migrate(engine)
    assert "agent" in inspect(engine).get_table_names()
