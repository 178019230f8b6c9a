"""A customer's personal data out of the projection, for a data-deletion request.

Every row of the customer's cases goes, in every table that holds a case's rows: found as
the tables with a `case_id` column, so a table added later is purged without a change here.
The purge leaves one `purge_audit` row, which holds no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, Table, delete, func, select

from store.tables import Case, PurgeAudit, core_table, utcnow

_CASES = core_table(Case)
_AUDIT = core_table(PurgeAudit)


def customer_cases(conn: Connection, *, customer_id: str) -> list[str]:
    """The IDs of the customer's cases, with the child cases opened from them."""
    found = set(conn.scalars(select(_CASES.c.id).where(_CASES.c.customer_id == customer_id)))
    # A child case (a complaint's) names its parent: it is the same customer's, whatever
    # customer ID it was stored with.
    new = set(found)
    while new:
        new = set(
            conn.scalars(
                select(_CASES.c.id).where(
                    _CASES.c.parent_case_id.in_(sorted(new)), _CASES.c.id.not_in(sorted(found))
                )
            )
        )
        found |= new
    return sorted(found)


def case_tables() -> list[Table]:
    """Every table holding rows of a case (a `case_id` column), then the case table itself."""
    tables = [
        table
        for table in _CASES.metadata.sorted_tables
        if "case_id" in table.c and table is not _AUDIT
    ]
    return [*tables, _CASES]


@dataclass
class Purged:
    """What a purge deleted: the cases, the rows of each table, and its audit entry's ID."""

    case_ids: list[str]
    rows: dict[str, int] = field(default_factory=dict)
    audit_id: int | None = None

    @property
    def total(self) -> int:
        """Rows deleted in all."""
        return sum(self.rows.values())


def purge_cases(
    conn: Connection,
    *,
    case_ids: list[str],
    actor: str,
    reference: str | None,
    workflows_terminated: int,
) -> Purged:
    """Delete every row of these cases and write the audit entry, in the caller's transaction."""
    purged = Purged(case_ids=sorted(case_ids))
    for table in case_tables():
        key = table.c.id if table is _CASES else table.c.case_id
        # In chunks: a customer with thousands of cases stays under every driver's limit on
        # bound parameters.
        deleted = 0
        for start in range(0, len(purged.case_ids), 500):
            chunk = purged.case_ids[start : start + 500]
            deleted += conn.execute(delete(table).where(key.in_(chunk))).rowcount
        purged.rows[table.name] = deleted
    purged.audit_id = conn.execute(
        _AUDIT.insert()
        .values(
            at=utcnow(),
            actor=actor,
            reference=reference,
            case_ids=purged.case_ids,
            rows=purged.rows,
            workflows_terminated=workflows_terminated,
        )
        .returning(_AUDIT.c.id)
    ).scalar_one()
    return purged


def audit_entries(conn: Connection) -> list[PurgeAudit]:
    """Every purge's audit entry, oldest first."""
    return [
        PurgeAudit.model_validate(row._mapping)
        for row in conn.execute(select(_AUDIT).order_by(_AUDIT.c.id))
    ]


def remaining(conn: Connection, *, case_ids: list[str]) -> dict[str, int]:
    """Rows left of these cases, by table (only tables with some): empty after a purge."""
    left: dict[str, int] = {}
    for table in case_tables():
        key = table.c.id if table is _CASES else table.c.case_id
        count = conn.execute(select(func.count()).where(key.in_(case_ids))).scalar_one()
        if count:
            left[table.name] = count
    return left
