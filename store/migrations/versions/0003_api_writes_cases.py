"""the API writes the case at open: claims, restart input, assignee, list indexes

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here, as in 0002: a migration must not change when the application code does.
TERMINAL = frozenset({"closed", "rejected", "cancelled", "expired"})
LIST_FILTERS = ("type", "status", "queue", "assignee", "order_id", "customer_id")
OLD_INDEXES = ("type", "status", "queue", "order_id", "customer_id", "created_at")
MAX_LENGTH = 200


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("assignee", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True)
        )
        for name in OLD_INDEXES:
            batch_op.drop_index(f"ix_case_{name}")
        batch_op.create_index("ix_case_created", ["created_at", "id"], unique=False)
        for name in LIST_FILTERS:
            batch_op.create_index(
                f"ix_case_{name}_created", [name, "created_at", "id"], unique=False
            )

    op.create_table(
        "case_opening",
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("workflow", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("input", sa.JSON(), nullable=False),
        sa.Column("summary", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("details", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.create_table(
        "case_claim",
        sa.Column("type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("order_id", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("sku", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("type", "order_id", "sku"),
    )
    with op.batch_alter_table("case_claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_claim_case_id"), ["case_id"], unique=False)
    op.create_table(
        "tracking_claim",
        sa.Column("tracking_number", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.PrimaryKeyConstraint("tracking_number"),
    )
    with op.batch_alter_table("tracking_claim", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_tracking_claim_case_id"), ["case_id"], unique=False)
    _backfill()


def _backfill() -> None:
    """Assignees from the stored views; claims of the cases still open, oldest case first."""
    bind = op.get_bind()
    cases = sa.table(
        "case",
        sa.column("id", sa.String),
        sa.column("type", sa.String),
        sa.column("status", sa.String),
        sa.column("order_id", sa.String),
        sa.column("assignee", sa.String),
        sa.column("view", sa.JSON),
        sa.column("created_at", sa.DateTime),
    )
    claims: dict[tuple[str, str, str], str] = {}
    tracking: dict[str, str] = {}
    rows = bind.execute(
        sa.select(
            cases.c.id, cases.c.type, cases.c.status, cases.c.order_id, cases.c.view
        ).order_by(cases.c.created_at, cases.c.id)
    ).all()
    for case_id, type_, status, order_id, raw in rows:
        view = _json(raw)
        assignee = view.get("assignee")
        if isinstance(assignee, str) and assignee:
            bind.execute(
                cases.update().where(cases.c.id == case_id).values(assignee=assignee[:MAX_LENGTH])
            )
        if status in TERMINAL:
            continue
        for item in view.get("items") or []:
            sku = item.get("sku") if isinstance(item, dict) else None
            if isinstance(sku, str) and sku:
                claims.setdefault((type_, order_id, sku), case_id)
        for shipment in view.get("shipments") or []:
            number = shipment.get("tracking_number") if isinstance(shipment, dict) else None
            if (
                isinstance(number, str)
                and number
                and len(number) <= MAX_LENGTH
                and shipment.get("booked_by", "customer") == "customer"
            ):
                tracking.setdefault(number, case_id)
    if claims:
        op.bulk_insert(
            sa.table(
                "case_claim",
                sa.column("type", sa.String),
                sa.column("order_id", sa.String),
                sa.column("sku", sa.String),
                sa.column("case_id", sa.String),
            ),
            [{"type": t, "order_id": o, "sku": s, "case_id": c} for (t, o, s), c in claims.items()],
        )
    if tracking:
        op.bulk_insert(
            sa.table(
                "tracking_claim",
                sa.column("tracking_number", sa.String),
                sa.column("case_id", sa.String),
            ),
            [{"tracking_number": n, "case_id": c} for n, c in tracking.items()],
        )


def downgrade() -> None:
    for table in ("tracking_claim", "case_claim"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{table}_case_id"))
        op.drop_table(table)
    op.drop_table("case_opening")
    with op.batch_alter_table("case", schema=None) as batch_op:
        for name in LIST_FILTERS:
            batch_op.drop_index(f"ix_case_{name}_created")
        batch_op.drop_index("ix_case_created")
        for name in OLD_INDEXES:
            batch_op.create_index(f"ix_case_{name}", [name], unique=False)
        batch_op.drop_column("assignee")
