"""tracking numbers of cases, for carrier webhooks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_LENGTH = 200


def _numbers(view: Any) -> set[str]:
    # The same rule as store.service.tracking_numbers, frozen here: a migration must not
    # change when the application code does.
    if isinstance(view, str):
        view = json.loads(view)
    found = [s.get("tracking_number") for s in view.get("shipments") or []]
    found.append((view.get("order") or {}).get("tracking_number"))
    return {n for n in found if isinstance(n, str) and n and len(n) <= MAX_LENGTH}


def upgrade() -> None:
    op.create_table(
        "tracking_number",
        sa.Column("tracking_number", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("tracking_number", "case_id"),
    )
    with op.batch_alter_table("tracking_number", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracking_number_case_id"), ["case_id"], unique=False)

    # Backfill from the cases stored before this table existed.
    bind = op.get_bind()
    cases = sa.table("case", sa.column("id", sa.String), sa.column("view", sa.JSON))
    numbers = sa.table(
        "tracking_number", sa.column("tracking_number", sa.String), sa.column("case_id", sa.String)
    )
    rows = [
        {"tracking_number": number, "case_id": case_id}
        for case_id, view in bind.execute(sa.select(cases.c.id, cases.c.view))
        for number in sorted(_numbers(view))
    ]
    if rows:
        op.bulk_insert(numbers, rows)


def downgrade() -> None:
    with op.batch_alter_table("tracking_number", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_tracking_number_case_id"))
    op.drop_table("tracking_number")
