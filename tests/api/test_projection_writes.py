"""A projection sets only the case columns whose values change, on both databases: every
column it sets rewrites that column's index entries, and the case table has many indexes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, text

from store.db import migrate
from tests.api.test_tracking_migration import engine  # noqa: F401  (fixture)
from tests.support.report_cases import HOUR, open_case

OPENED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def test_a_status_change_sets_only_what_changed(engine: Engine) -> None:  # noqa: F811
    migrate(engine)
    story = open_case(
        engine, opened=OPENED, type="return", reason="size_fit", queue="q-writes",
        items=[("SKU-W", "990.00", 1)],
    )  # fmt: skip
    updates: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith('UPDATE "CASE"') or statement.startswith(
            "UPDATE case"
        ):
            updates.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        story.step(HOUR, status="awaiting_shipment",
                   deadlines={"customer_shipment": timedelta(days=7)})  # fmt: skip
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    [update] = [u for u in updates if "revision" in u]
    set_clause = update.split("WHERE")[0]
    for column in ("status", "next_deadline", "view", "revision", "updated_at"):
        assert column in set_clause, set_clause
    for column in ("customer_email", "order_id", "currency", "items_cents", "type", "queue"):
        assert column not in set_clause, set_clause
    with engine.connect() as conn:
        row = conn.execute(
            text('SELECT status, queue, currency, customer_email FROM "case" WHERE id = :id'),
            {"id": story.case_id},
        ).one()
    # What was not set kept its value; what changed is stored.
    assert row.status == "awaiting_shipment" and row.queue == "q-writes"
    assert row.currency == "TWD" and row.customer_email
