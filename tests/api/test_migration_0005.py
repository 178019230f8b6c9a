"""Migration 0005 on both databases: the (queue, status) list index, and its way back."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect, text

from store import service
from store.db import MIGRATIONS, migrate
from tests.api.test_tracking_migration import _upgrade, engine  # noqa: F401  (fixture)

INDEX = "ix_case_queue_status_created"


def _downgrade(db: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


def _indexes(db: Engine) -> dict[str, list[str | None]]:
    return {ix["name"]: ix["column_names"] for ix in inspect(db).get_indexes("case")}


def test_0005_adds_the_queue_status_index_and_keeps_the_rows(engine: Engine) -> None:  # noqa: F811
    _upgrade(engine, "0004")
    assert INDEX not in _indexes(engine)
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO "case" (id, token, type, status, order_id, customer_id, queue,'
                " priority, sla_breached, view, revision, created_at, updated_at) VALUES"
                " ('R-KEEP0001', 'tok-1', 'return', 'inspecting', 'SO-1', 'C-1', 'quality',"
                " 'normal', false, '{}', 1, '2026-11-01 10:00:00+00', '2026-11-01 10:00:00+00')"
            )
        )
    migrate(engine)
    assert _indexes(engine)[INDEX] == ["queue", "status", "created_at", "id"]
    with engine.connect() as conn:
        kept = conn.execute(text("SELECT id FROM \"case\" WHERE queue = 'quality'")).all()
    assert [row[0] for row in kept] == ["R-KEEP0001"]
    if engine.dialect.name == "sqlite":
        # SQLite plans without statistics: the pair's index is the one a queue's list takes.
        query = service.list_query(queue="quality", status="inspecting")
        compiled = query.compile(dialect=engine.dialect)
        with engine.connect() as conn:
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN " + str(compiled), tuple(compiled.params.values())
            ).all()
        assert any(INDEX in str(row[-1]) for row in plan), plan
    _downgrade(engine, "0004")
    assert INDEX not in _indexes(engine)
