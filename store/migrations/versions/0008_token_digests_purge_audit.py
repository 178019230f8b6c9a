"""customer tokens kept as their SHA-256; the purge audit table

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-16
"""

import hashlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: a migration must not change when the application code does.
BATCH = 1000
CASES = sa.table("case", sa.column("id", sa.String), sa.column("token", sa.String))


def _string(length: int | None = None) -> sa.types.TypeEngine[str]:
    return AutoString(length=length)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _hash_tokens() -> None:
    """Replace each stored token by its digest, a batch at a time (keyset by id)."""
    conn = op.get_bind()
    after = ""
    while True:
        rows = conn.execute(
            sa.select(CASES.c.id, CASES.c.token)
            .where(CASES.c.id > after)
            .order_by(CASES.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        conn.execute(
            CASES.update().where(CASES.c.id == sa.bindparam("key")),
            [{"key": row.id, "token": _digest(row.token)} for row in rows],
        )
        after = rows[-1].id


def upgrade() -> None:
    _hash_tokens()
    op.create_table(
        "purge_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", _string(200), nullable=False),
        sa.Column("reference", _string(200), nullable=True),
        sa.Column("case_ids", sa.JSON(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("workflows_terminated", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )


def downgrade() -> None:
    # A digest can't be turned back into its token: the customers' links of cases stored
    # before the downgrade stop opening their pages, which is the safe way to fail.
    op.drop_table("purge_audit")
