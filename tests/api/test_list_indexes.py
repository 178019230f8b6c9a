"""Lists use an index for each filter on PostgreSQL: the plans of the real list queries.

Thirty thousand cases, analyzed, then EXPLAIN of the query store.service.list_views runs for
each filter: the plan names the filter's index and scans no table whole.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import Engine, text

from store import service
from store.db import make_engine, migrate

ROWS = 30_000
STATUSES = (
    "open",
    "awaiting_review",
    "awaiting_customer",
    "awaiting_shipment",
    "in_transit",
    "inspecting",
    "refund_pending",
    "resolved",
    "closed",
    "rejected",
    "cancelled",
    "expired",
)
FILL = f"""
INSERT INTO "case" (id, token, type, status, order_id, customer_id, queue, assignee, priority,
                    sla_breached, next_deadline, view, revision, created_at, updated_at)
SELECT 'R-' || lpad(i::text, 8, '0'), 'tok-' || i,
       (ARRAY['return','exchange','refund','repair','complaint'])[1 + i % 5],
       (ARRAY[{", ".join(f"'{s}'" for s in STATUSES)}])[1 + i % {len(STATUSES)}],
       'SO-' || i, 'C-' || (i % 3000),
       (ARRAY['customer_service','returns_desk','quality','vip'])[1 + i % 4],
       CASE WHEN i % 3 = 0 THEN NULL ELSE 'agent-' || (i % 40) END,
       'normal', false,
       CASE WHEN i % 2 = 0 THEN now() + ((i % 1000) - 100) * interval '1 hour' END,
       '{{}}', 1, now() - i * interval '1 minute', now()
FROM generate_series(1, {ROWS}) AS i
"""


@pytest.fixture(scope="module")
def engine(postgres_url: str) -> Iterator[Engine]:
    """A fresh PostgreSQL database at the newest schema, filled and analyzed."""
    server, _, _ = postgres_url.rpartition("/")
    name = f"plans_{secrets.token_hex(4)}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    engine = make_engine(f"{server}/{name}")
    migrate(engine)
    with engine.begin() as conn:
        conn.execute(text(FILL))
        conn.execute(text('ANALYZE "case"'))
    yield engine
    engine.dispose()


def _plan(engine: Engine, **filters: Any) -> str:
    query = service.list_query(**filters)
    compiled = query.compile(dialect=engine.dialect)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).all()
    return "\n".join(row[0] for row in rows)


def _cursor(at: datetime, case_id: str) -> str:
    return service._encode_cursor(at, case_id)


PAGE_CURSOR = _cursor(datetime.now(UTC) - timedelta(days=3), "R-00004000")


@pytest.mark.parametrize(
    ("filters", "index"),
    [
        ({}, "ix_case_created"),
        ({"type": "exchange"}, "ix_case_type_created"),
        ({"status": "awaiting_review"}, "ix_case_status_created"),
        ({"queue": "quality"}, "ix_case_queue_created"),
        ({"assignee": "agent-7"}, "ix_case_assignee_created"),
        ({"order_id": "SO-1234"}, "ix_case_order_id_created"),
        ({"customer_id": "C-42"}, "ix_case_customer_id_created"),
        ({"status": "in_transit", "cursor": PAGE_CURSOR}, "ix_case_status_created"),
        # A queue's work list: one index range, not two bitmaps ANDed and a sort.
        ({"queue": "quality", "status": "inspecting"}, "ix_case_queue_status_created"),
        ({"overdue": True}, None),
        ({"overdue": False}, None),
    ],
    ids=lambda value: ",".join(value) if isinstance(value, dict) else str(value),
)
def test_list_query_plan_uses_the_filters_index(
    engine: Engine, filters: dict[str, Any], index: str | None
) -> None:
    plan = _plan(engine, **filters)
    assert "Seq Scan" not in plan, plan
    assert "Index" in plan, plan
    if index is not None:
        assert f" {index} " in plan, plan
