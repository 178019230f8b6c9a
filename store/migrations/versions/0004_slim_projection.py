"""slim projection: timeline entries keep their data, the stored view no timeline; outbox

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def upgrade() -> None:
    with op.batch_alter_table("timeline_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data", sa.JSON(), nullable=True))
    op.create_table(
        "outbox_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
        sa.Column("case_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("event_type", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("outbox_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outbox_event_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_outbox_event_due", ["status", "next_attempt_at"], unique=False)
    _move_timelines()


def _move_timelines() -> None:
    """Each stored view's timeline data onto its rows; the views keep no timeline."""
    bind = op.get_bind()
    cases = sa.table("case", sa.column("id", sa.String), sa.column("view", sa.JSON))
    events = sa.table(
        "timeline_event",
        sa.column("case_id", sa.String),
        sa.column("seq", sa.Integer),
        sa.column("data", sa.JSON),
    )
    for case_id, raw in bind.execute(sa.select(cases.c.id, cases.c.view)).all():
        view = _json(raw)
        timeline = view.pop("timeline", None)
        if timeline is None:
            continue
        for seq, entry in enumerate(timeline):
            data = entry.get("data") if isinstance(entry, dict) else None
            if data:
                bind.execute(
                    events.update()
                    .where(events.c.case_id == case_id, events.c.seq == seq)
                    .values(data=data)
                )
        bind.execute(cases.update().where(cases.c.id == case_id).values(view=view))


def downgrade() -> None:
    op.drop_table("outbox_event")
    with op.batch_alter_table("timeline_event", schema=None) as batch_op:
        batch_op.drop_column("data")
