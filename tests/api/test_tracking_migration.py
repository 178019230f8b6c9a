"""Migration 0002 on both databases: the tracking-number table, backfilled from stored cases."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from store.db import MIGRATIONS, make_engine, migrate
from store.tables import TrackingNumber

VIEW = (
    '{"id": "R-OLDCASE1", "order": {"id": "SO-1", "tracking_number": "OUT-1"},'
    ' "shipments": [{"direction": "inbound", "tracking_number": "BC-1"},'
    ' {"direction": "outbound", "tracking_number": null}]}'
)


def _upgrade(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of each kind (on PostgreSQL, a fresh one beside the suite's)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        base: str = request.getfixturevalue("postgres_url")
        server, _, _ = base.rpartition("/")
        name = f"migration_{secrets.token_hex(4)}"
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        url = f"{server}/{name}"
    engine = make_engine(url)
    yield engine
    engine.dispose()


def test_0002_backfills_tracking_numbers_of_stored_cases(engine: Engine) -> None:
    _upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO "case" (id, token, type, status, order_id, customer_id, queue,'
                " priority, sla_breached, view, revision, created_at, updated_at) VALUES"
                " ('R-OLDCASE1', 'tok', 'return', 'in_transit', 'SO-1', 'C-1', 'cs', 'normal',"
                " false, :view, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ),
            {"view": VIEW},
        )
    migrate(engine)  # what the API and worker run at start-up: up to head
    with engine.connect() as conn:
        rows = conn.execute(
            text(f"SELECT tracking_number, case_id FROM {TrackingNumber.__tablename__}")
        ).all()
    assert sorted(tuple(r) for r in rows) == [("BC-1", "R-OLDCASE1"), ("OUT-1", "R-OLDCASE1")]
