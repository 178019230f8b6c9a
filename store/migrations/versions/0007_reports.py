"""reports: the case's report columns and their index, deadline outcomes, refunds by SKU

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-09
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen here: a migration must not change when the application code does.
FIRST_RESPONSE_KINDS = ("approved", "rejected", "info_requested", "responded", "offer_made")
REFUND_SUCCEEDED = "refund_succeeded"
ESCALATED = "escalated"
INT_COLUMNS = ("items_cents", "refund_cents")
PLAIN_INT_COLUMNS = ("rating", "first_response_seconds", "refund_seconds", "resolution_seconds")
REPORT_COLUMNS = (
    "type",
    "status",
    "reason",
    "outcome",
    "refund_status",
    "currency",
    "payment_method",
    "rating",
    "created_at",
    "queue",
    "refund_cents",
    "items_cents",
    "first_response_seconds",
    "refund_seconds",
    "resolution_seconds",
    "id",
)
MEASURES = ("first_response", "refund", "resolution")


def _string(length: int | None = None) -> sa.types.TypeEngine[str]:
    return AutoString(length=length)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("case", schema=None) as batch_op:
        batch_op.add_column(sa.Column("currency", _string(3), nullable=True))
        batch_op.add_column(sa.Column("payment_method", _string(40), nullable=True))
        for name in INT_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("refund_status", _string(16), nullable=True))
        batch_op.add_column(sa.Column("outcome", _string(16), nullable=True))
        for name in PLAIN_INT_COLUMNS:
            batch_op.add_column(sa.Column(name, sa.Integer(), nullable=True))
        for name in ("first_response_at", "refunded_at", "resolved_at"):
            batch_op.add_column(_at(name, nullable=True))
        batch_op.create_index("ix_case_report", list(REPORT_COLUMNS), unique=False)
        for m in MEASURES:
            batch_op.create_index(
                f"ix_case_{m}_seconds",
                [f"{m}_seconds", "created_at", "type", "queue"],
                unique=False,
            )
    op.create_table(
        "deadline_outcome",
        sa.Column("case_id", _string(32), nullable=False),
        sa.Column("timer", _string(64), nullable=False),
        _at("due_at"),
        sa.Column("outcome", _string(16), nullable=False),
        _at("settled_at"),
        sa.Column("type", _string(16), nullable=False),
        sa.Column("queue", _string(200), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("case_id", "timer", "due_at"),
    )
    op.create_index(
        "ix_deadline_outcome_report",
        "deadline_outcome",
        ["timer", "outcome", "created_at", "type", "queue"],
        unique=False,
    )
    op.create_index(
        "ix_deadline_outcome_recent",
        "deadline_outcome",
        ["outcome", "due_at", "created_at", "type", "queue"],
        unique=False,
    )
    op.create_table(
        "refund_item",
        sa.Column("case_id", _string(32), nullable=False),
        sa.Column("sku", _string(200), nullable=False),
        sa.Column("cents", sa.BigInteger(), nullable=False),
        sa.Column("currency", _string(3), nullable=False),
        sa.Column("reason", _string(32), nullable=True),
        sa.Column("type", _string(16), nullable=False),
        sa.Column("queue", _string(200), nullable=False),
        _at("created_at"),
        sa.PrimaryKeyConstraint("case_id", "sku"),
    )
    op.create_index(
        "ix_refund_item_report",
        "refund_item",
        ["currency", "sku", "created_at", "type", "queue", "reason", "cents"],
        unique=False,
    )
    _backfill()


def downgrade() -> None:
    op.drop_index("ix_refund_item_report", table_name="refund_item")
    op.drop_table("refund_item")
    op.drop_index("ix_deadline_outcome_recent", table_name="deadline_outcome")
    op.drop_index("ix_deadline_outcome_report", table_name="deadline_outcome")
    op.drop_table("deadline_outcome")
    with op.batch_alter_table("case", schema=None) as batch_op:
        for m in MEASURES:
            batch_op.drop_index(f"ix_case_{m}_seconds")
        batch_op.drop_index("ix_case_report")
        for name in (
            "resolved_at",
            "refunded_at",
            "first_response_at",
            *PLAIN_INT_COLUMNS,
            "outcome",
            "refund_status",
            *INT_COLUMNS,
            "payment_method",
            "currency",
        ):
            batch_op.drop_column(name)


# ---- the backfill: from each stored view and its timeline rows ----------------------------


def _json(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _utc(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _cents(value: Any) -> int | None:
    try:
        return int((Decimal(str(value)) * 100).to_integral_value())
    except (ArithmeticError, ValueError):
        return None


def _seconds(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def _outcome(view: dict[str, Any], refund: dict[str, Any]) -> str | None:
    if refund.get("status") == "succeeded":
        return "kept_item" if _json(view.get("decision")).get("returnless") else "refund"
    if view.get("type") == "exchange" and view.get("resolved_at"):
        return "exchange"
    if view.get("type") == "repair" and _json(view.get("repair")).get("outcome") in (
        "repaired",
        "replaced",
    ):
        return "repair"
    return None


def _lines(view: dict[str, Any]) -> dict[str, int]:
    lines: dict[str, int] = {}
    for item in view.get("items") or []:
        if not isinstance(item, dict) or not isinstance(item.get("sku"), str):
            continue
        line = (_cents(item.get("unit_price")) or 0) * int(item.get("quantity") or 1)
        lines[item["sku"]] = lines.get(item["sku"], 0) + line
    return lines


def _firsts(bind: sa.Connection) -> dict[tuple[str, str], datetime]:
    """Each case's first response and refund success, from its timeline rows."""
    events = sa.table(
        "timeline_event",
        sa.column("case_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("at", sa.DateTime(timezone=True)),
    )
    response = sa.case((events.c.kind == REFUND_SUCCEEDED, "refund"), else_="response")
    rows = bind.execute(
        sa.select(events.c.case_id, response, sa.func.min(events.c.at))
        .where(events.c.kind.in_((*FIRST_RESPONSE_KINDS, REFUND_SUCCEEDED)))
        .group_by(events.c.case_id, response)
    ).all()
    return {(case_id, what): at for case_id, what, at in rows if _utc(at) is not None}


def _breaches(bind: sa.Connection) -> dict[str, list[tuple[str, datetime]]]:
    """Each case's escalated breaches (timer, when), from its timeline rows."""
    events = sa.table(
        "timeline_event",
        sa.column("case_id", sa.String),
        sa.column("kind", sa.String),
        sa.column("at", sa.DateTime(timezone=True)),
        sa.column("data", sa.JSON),
    )
    found: dict[str, list[tuple[str, datetime]]] = {}
    for case_id, at, data in bind.execute(
        sa.select(events.c.case_id, events.c.at, events.c.data).where(events.c.kind == ESCALATED)
    ).all():
        timer = _json(data).get("timer")
        when = _utc(at)
        if isinstance(timer, str) and timer and when is not None:
            found.setdefault(case_id, []).append((timer[:64], when))
    return found


def _backfill() -> None:
    """The report columns from each stored view and its timeline rows; a refunded case's
    refund by SKU; the breaches its timeline escalated. A deadline met before this revision
    left no trace, so only breaches are backfilled: the SLA figures of older periods count
    breaches, and their met share starts with this revision."""
    bind = op.get_bind()
    cases = sa.table(
        "case",
        sa.column("id", sa.String),
        sa.column("type", sa.String),
        sa.column("reason", sa.String),
        sa.column("queue", sa.String),
        sa.column("view", sa.JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        *(sa.column(name, sa.String) for name in ("currency", "payment_method")),
        *(sa.column(name, sa.String) for name in ("refund_status", "outcome")),
        *(sa.column(name, sa.BigInteger) for name in INT_COLUMNS),
        *(sa.column(name, sa.Integer) for name in PLAIN_INT_COLUMNS),
        *(
            sa.column(name, sa.DateTime(timezone=True))
            for name in ("first_response_at", "refunded_at", "resolved_at")
        ),
    )
    firsts = _firsts(bind)
    breaches = _breaches(bind)
    refund_items: list[dict[str, Any]] = []
    outcomes: list[dict[str, Any]] = []
    for case_id, type_, reason, queue, raw, created in bind.execute(
        sa.select(
            cases.c.id,
            cases.c.type,
            cases.c.reason,
            cases.c.queue,
            cases.c.view,
            cases.c.created_at,
        )
    ).all():
        view = _json(raw)
        opened = _utc(created)
        order = _json(view.get("order"))
        refund = _json(view.get("refund"))
        rating = view.get("rating")
        resolved = _utc(view.get("resolved_at"))
        responded = _utc(firsts.get((case_id, "response")))
        refunded = (
            _utc(firsts.get((case_id, "refund")) or view.get("updated_at"))
            if refund.get("status") == "succeeded"
            else None
        )
        lines = _lines(view)
        refund_cents = _cents(refund.get("amount")) if refund else None
        currency = order.get("currency") if isinstance(order.get("currency"), str) else None
        method = order.get("payment_method")
        bind.execute(
            cases.update()
            .where(cases.c.id == case_id)
            .values(
                currency=currency[:3] if currency else None,
                payment_method=method[:40] if isinstance(method, str) else None,
                items_cents=sum(lines.values()),
                refund_cents=refund_cents,
                refund_status=str(refund["status"])[:16] if refund.get("status") else None,
                outcome=_outcome(view, refund),
                rating=rating if isinstance(rating, int) else None,
                resolved_at=resolved,
                resolution_seconds=_seconds(opened, resolved),
                first_response_at=responded,
                first_response_seconds=_seconds(opened, responded),
                refunded_at=refunded,
                refund_seconds=_seconds(opened, refunded),
            )
        )
        if refunded is not None and refund_cents is not None and opened is not None and lines:
            whole = sum(lines.values())
            shares = {s: (refund_cents * n // whole if whole else 0) for s, n in lines.items()}
            shares[list(shares)[-1]] += refund_cents - sum(shares.values())
            refund_items += [
                {
                    "case_id": case_id,
                    "sku": sku[:200],
                    "cents": share,
                    "currency": (refund.get("currency") or currency or "")[:3],
                    "reason": reason,
                    "type": type_,
                    "queue": queue,
                    "created_at": opened,
                }
                for sku, share in shares.items()
            ]
        listed = {
            d.get("name"): _utc(d.get("due_at"))
            for d in view.get("deadlines") or []
            if isinstance(d, dict)
        }
        seen: set[tuple[str, datetime]] = set()
        for timer, at in breaches.get(case_id, []):
            # The breached deadline, if the case still lists it overdue; else the breach's
            # own time, when its timer fired.
            due = listed.get(timer) or at
            if opened is None or (timer, due) in seen:
                continue
            seen.add((timer, due))
            outcomes.append(
                {
                    "case_id": case_id,
                    "timer": timer,
                    "due_at": due,
                    "outcome": "breached",
                    "settled_at": at,
                    "type": type_,
                    "queue": queue,
                    "created_at": opened,
                }
            )
    if refund_items:
        op.bulk_insert(
            sa.table(
                "refund_item",
                sa.column("case_id", sa.String),
                sa.column("sku", sa.String),
                sa.column("cents", sa.BigInteger),
                sa.column("currency", sa.String),
                sa.column("reason", sa.String),
                sa.column("type", sa.String),
                sa.column("queue", sa.String),
                sa.column("created_at", sa.DateTime(timezone=True)),
            ),
            refund_items,
        )
    if outcomes:
        op.bulk_insert(
            sa.table(
                "deadline_outcome",
                sa.column("case_id", sa.String),
                sa.column("timer", sa.String),
                sa.column("due_at", sa.DateTime(timezone=True)),
                sa.column("outcome", sa.String),
                sa.column("settled_at", sa.DateTime(timezone=True)),
                sa.column("type", sa.String),
                sa.column("queue", sa.String),
                sa.column("created_at", sa.DateTime(timezone=True)),
            ),
            outcomes,
        )
