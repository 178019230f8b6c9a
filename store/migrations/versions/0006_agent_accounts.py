"""agent accounts (agents, their API tokens, console sessions, failed sign-ins) and the
agents' queue (the cases waiting on an agent, the customer's email to search by)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _string(length: int | None = None) -> sa.types.TypeEngine[str]:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


# Frozen here: a migration must not change when the application code does.
TERMINAL = frozenset({"closed", "rejected", "cancelled", "expired"})


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _backfill() -> None:
    """Customers' emails from the stored views. Rows written before this revision carry no
    `agent_actions`: a case in review, or an escalated one still open, surely waits on an
    agent, and the worker's next write of each case sets the rest."""
    bind = op.get_bind()
    cases = sa.table(
        "case",
        sa.column("id", sa.String),
        sa.column("status", sa.String),
        sa.column("view", sa.JSON),
        sa.column("customer_email", sa.String),
        sa.column("needs_agent", sa.Boolean),
        sa.column("sla_breached", sa.Boolean),
    )
    for case_id, status, breached, raw in bind.execute(
        sa.select(cases.c.id, cases.c.status, cases.c.sla_breached, cases.c.view)
    ).all():
        customer = _json(raw).get("customer")
        email = customer.get("email") if isinstance(customer, dict) else None
        bind.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(
                customer_email=email.lower()[:320] if isinstance(email, str) and email else None,
                needs_agent=status == "awaiting_review"
                or (bool(breached) and status not in TERMINAL),
            )
        )


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("needs_agent", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_index(
            "ix_case_needs_agent_deadline", ["needs_agent", "next_deadline", "id"], unique=False
        )
        batch_op.add_column(sa.Column("customer_email", _string(320), nullable=True))
        batch_op.create_index("ix_case_customer_email", ["customer_email"], unique=False)
    _backfill()
    op.create_table(
        "agent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", _string(320), nullable=False),
        sa.Column("name", _string(200), nullable=False),
        sa.Column("role", _string(16), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=False),
        sa.Column("locale", _string(16), nullable=False),
        sa.Column("password_hash", _string(200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
    )
    op.create_table(
        "agent_token",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("name", _string(200), nullable=False),
        sa.Column("token_hash", _string(64), nullable=False),
        _at("created_at"),
        _at("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_agent_token_agent_id", "agent_token", ["agent_id"], unique=False)
    op.create_table(
        "console_session",
        sa.Column("id", _string(64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", _string(64), nullable=False),
        _at("created_at"),
        _at("expires_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_console_session_agent_id", "console_session", ["agent_id"], unique=False)
    op.create_table(
        "login_failure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", _string(320), nullable=False),
        sa.Column("address", _string(64), nullable=False),
        _at("at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_login_failure_email_at", "login_failure", ["email", "at"], unique=False)
    op.create_index("ix_login_failure_address_at", "login_failure", ["address", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.drop_index("ix_case_customer_email")
        batch_op.drop_column("customer_email")
        batch_op.drop_index("ix_case_needs_agent_deadline")
        batch_op.drop_column("needs_agent")
    op.drop_table("login_failure")
    op.drop_table("console_session")
    op.drop_table("agent_token")
    op.drop_table("agent")
