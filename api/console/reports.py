"""The console's reports page: the team's figures for a period, as tables and SVG charts.

The same figures as `GET /v1/reports/summary` (store.reports, one SQL pass), drawn on the
server: every chart has its numbers beside it, and every table downloads as CSV.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from api.console.auth import ConsoleAgentDep
from api.console.charts import bar_chart
from api.console.pages import console_page
from api.deps import app_engine
from api.errors import Problem
from api.reports import csv_response, period
from domain.models import CaseType
from store import reports
from store.reports import ReportTable, Summary

router = APIRouter(tags=["console"], include_in_schema=False)
_TEXT_MAX = 200


def _read(engine: Engine, raw_from: str | None, raw_to: str | None, type: CaseType | None,
          queue: str | None) -> Summary:  # fmt: skip
    start, end = period(raw_from, raw_to)
    with engine.connect() as conn:
        return reports.summary(conn, start=start, end=end, type=type, queue=queue)


def _known_type(value: str | None) -> CaseType | None:
    return CaseType(value) if value in {t.value for t in CaseType} else None


def _hours(seconds: float | int | None) -> str:
    if seconds is None:
        return "—"
    hours = seconds / 3600
    return f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"


def _charts(found: Summary) -> dict[str, Any]:
    volumes = found.volumes
    return {
        "by_type": bar_chart([(c.key or "—", c.count) for c in volumes.by_type], title="type"),
        "by_status": bar_chart(
            [(c.key or "—", c.count) for c in volumes.by_status], title="status"
        ),
        "by_reason": bar_chart(
            [(c.key or "—", c.count) for c in volumes.by_reason], title="reason"
        ),
        "sla": bar_chart(
            [(t.timer, round(t.met_pct or 0, 1)) for t in found.sla.timers], title="SLA met %"
        ),
        "outcomes": bar_chart(
            [(o.outcome, o.count) for o in found.outcomes.shares], title="outcomes"
        ),
        "csat": bar_chart([(c.key or "—", c.count) for c in found.csat.distribution], title="CSAT"),
    }


@router.get("/console/reports", response_class=HTMLResponse)
async def reports_page(
    request: Request,
    signed_in: ConsoleAgentDep,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
    queue: Annotated[str | None, Query(max_length=_TEXT_MAX)] = None,
) -> Response:
    """The team's figures for a period (the last 30 days by default), optionally by type and
    queue."""
    case_type = _known_type(type)
    queue = (queue or "").strip() or None  # an empty field filters nothing
    given = (("from", from_), ("to", to), ("type", case_type), ("queue", queue))
    params = {name: value for name, value in given if value}
    context: dict[str, Any] = {
        "filters": {"from": from_ or "", "to": to or "", "type": case_type, "queue": queue or ""},
        "types": [t.value for t in CaseType],
        "query": urlencode(params),
        "tables": [t.value for t in ReportTable],
        "hours": _hours,
    }
    try:
        found = await run_in_threadpool(_read, app_engine(request), from_, to, case_type, queue)
    except Problem as problem:
        # A period that can't be (from after to, too long): the form again, saying why.
        errors = problem.errors or [{"message": problem.detail}]
        return console_page(
            "reports.html.j2", signed_in, {**context, "error": errors[0]["message"]}, 422
        )
    return console_page(
        "reports.html.j2", signed_in, {**context, "report": found, "charts": _charts(found)}
    )


@router.get("/console/reports.csv")
async def reports_csv(
    request: Request,
    _: ConsoleAgentDep,
    table: ReportTable,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    type: Annotated[str | None, Query(max_length=32)] = None,
    queue: Annotated[str | None, Query(max_length=_TEXT_MAX)] = None,
) -> Response:
    """One table of the reports page as CSV."""
    queue = (queue or "").strip() or None
    found = await run_in_threadpool(_read, app_engine(request), from_, to, _known_type(type), queue)
    return csv_response(table, found)
