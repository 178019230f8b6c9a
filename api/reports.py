"""The reports: `GET /v1/reports/summary` and each of its tables as CSV.

A thin router: it reads the period and filters, answers a 422 naming the field at fault, and
hands the rest to store.reports, where the SQL is.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from api.contract import AUTHED, problems
from api.deps import Principal, SessionDep, require
from api.errors import validation_problem
from domain.models import CaseType
from store import reports
from store.reports import ReportTable, Summary

router = APIRouter(prefix="/v1/reports", tags=["reports"])

# A date or a date and time; how the period's two ends relate (from before to, at most
# MAX_PERIOD_DAYS apart) is for the server to check, a schema can't compare two values.
ISO_MOMENT: dict[str, Any] = {"anyOf": [{"format": "date"}, {"format": "date-time"}]}
Reader = Annotated[Principal, Depends(require("operator", "agent"))]
From = Annotated[
    str | None,
    Query(
        alias="from",
        max_length=40,
        description="ISO date or datetime; the period starts here (default: 30 days before `to`).",
        json_schema_extra=ISO_MOMENT,
    ),
]
To = Annotated[
    str | None,
    Query(
        max_length=40,
        description="ISO date (the whole day counts) or datetime, excluded (default: now).",
        json_schema_extra=ISO_MOMENT,
    ),
]
Queue = Annotated[str | None, Query(max_length=200)]


def _error(field: str, message: str, kind: str = "value_error") -> dict[str, Any]:
    return {"field": field, "message": message, "type": kind}


def _moment(field: str, raw: str, *, end: bool) -> datetime:
    """A datetime from an ISO date or datetime; a date as an end means the day's end. A time
    without an offset is UTC."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            return datetime.combine(day + timedelta(days=1) if end else day, time(), tzinfo=UTC)
        at = datetime.fromisoformat(raw)
    except ValueError as err:
        raise validation_problem(
            [_error(field, "Must be an ISO date (2026-11-01) or datetime.", "datetime_parsing")]
        ) from err
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def period(raw_from: str | None, raw_to: str | None) -> tuple[datetime, datetime]:
    """The period asked for, checked: `from` before `to`, at most MAX_PERIOD_DAYS long."""
    end = _moment("to", raw_to, end=True) if raw_to else datetime.now(UTC)
    start = (
        _moment("from", raw_from, end=False)
        if raw_from
        else end - timedelta(days=reports.DEFAULT_PERIOD_DAYS)
    )
    if start >= end:
        message = "`from` must come before `to`."
        raise validation_problem([_error("from", message), _error("to", message)])
    if end - start > timedelta(days=reports.MAX_PERIOD_DAYS):
        message = f"The period is longer than {reports.MAX_PERIOD_DAYS} days."
        raise validation_problem([_error("from", message), _error("to", message)])
    return start, end


def _summary(
    session: SessionDep,
    raw_from: str | None,
    raw_to: str | None,
    type: CaseType | None,
    queue: str | None,
) -> Summary:
    start, end = period(raw_from, raw_to)
    return reports.summary(session.connection(), start=start, end=end, type=type, queue=queue)


@router.get(
    "/summary",
    response_model=Summary,
    response_model_by_alias=True,
    responses=problems(*AUTHED),
)
def summary(
    session: SessionDep,
    _: Reader,
    from_: From = None,
    to: To = None,
    type: CaseType | None = None,
    queue: Queue = None,
) -> Summary:
    """Figures of the cases opened in the period: volumes, SLA, times, refunds, outcomes,
    top SKUs and CSAT."""
    return _summary(session, from_, to, type, queue)


@router.get(
    "/summary.csv",
    response_class=Response,
    responses={
        200: {"description": "The table, with a header row.", "content": {"text/csv": {}}},
        **problems(*AUTHED),
    },
)
def summary_csv(
    session: SessionDep,
    _: Reader,
    table: ReportTable,
    from_: From = None,
    to: To = None,
    type: CaseType | None = None,
    queue: Queue = None,
) -> Response:
    """One table of the summary as CSV, with a header row."""
    return csv_response(table, _summary(session, from_, to, type, queue))


def csv_response(table: ReportTable, found: Summary) -> Response:
    """One table of a summary as a CSV download, with a header row."""
    columns, rows = found.table(table)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return Response(
        out.getvalue(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{table.value}.csv"'},
    )
