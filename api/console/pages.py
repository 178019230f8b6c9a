"""The agent console's pages: the queue, a case, its actions, bulk actions, live updates.

Server-rendered from the projection, like every read. Forms post to the same actions the API
takes (`api.cases.take_agent_action`), so the console can do nothing the API can't, and the
actor is always the signed-in agent. Pages poll small fragments to stay live (see
static/console.js); without JavaScript they still work, a reload away.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.cases import stored_case, take_agent_action
from api.console.auth import PAGE_HEADERS, CheckedAgentDep, ConsoleAgent, ConsoleAgentDep
from api.console.canned import TEXT_FIELDS, CannedReply, choices
from api.console.forms import FormRefused, form_fields, parse_action
from api.console.i18n import render
from api.deps import AGENT, Principal, app_engine, app_settings, app_temporal
from api.errors import Problem
from domain.actions import Approve, Assign
from domain.models import CaseStatus, CaseType, CaseView, Locale, Priority
from domain.names import AGENT_DECISIONS, SUPERVISOR_ACTIONS
from store import service
from store.queue import QueueFilters, QueuePage, overdue, queue_page
from store.tables import utcnow

router = APIRouter(tags=["console"], include_in_schema=False)

BULK_ACTIONS = ("assign", "approve")
BULK_MAX = 100
_TEXT_MAX = 200


def _principal(signed_in: ConsoleAgent) -> Principal:
    agent = signed_in.agent
    return Principal(role=AGENT, actor=agent.email, agent=agent)


def console_page(
    name: str, signed_in: ConsoleAgent, context: dict[str, Any], status: int = 200
) -> Response:
    """A console page for the signed-in agent, in their language."""
    html = render(
        name,
        signed_in.locale,
        {"me": signed_in.agent, "csrf_token": signed_in.csrf_token, "now": utcnow(), **context},
    )
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)


# ---- the queue -------------------------------------------------------------------------


def _filters(
    type: str | None, status: str | None, queue: str | None, assignee: str | None,
    priority: str | None, q: str | None,
) -> QueueFilters:  # fmt: skip
    def known(value: str | None, names: Iterable[StrEnum]) -> str | None:
        # An unknown value (a stale bookmark) filters nothing rather than failing the page.
        return value if value in {m.value for m in names} else None

    return QueueFilters(
        type=known(type, CaseType),
        status=known(status, CaseStatus),
        queue=(queue or None) and queue[:_TEXT_MAX],
        assignee=(assignee or None) and assignee[:_TEXT_MAX],
        priority=known(priority, Priority),
        search=(q or "").strip()[:_TEXT_MAX] or None,
    )


def _read_queue(engine: Engine, filters: QueueFilters, me: str, page: int) -> QueuePage:
    with Session(engine) as session:
        return queue_page(session, filters=filters, me=me, page=page)


def _queue_context(found: QueuePage, filters: QueueFilters, now: datetime) -> dict[str, Any]:
    params = {k: v for k, v in filters.__dict__.items() if v and k != "search"}
    if filters.search:
        params["q"] = filters.search
    return {
        "queue": found,
        "filters": filters,
        "rows": [{"case": view, "overdue": overdue(view, now)} for view in found.cases],
        "query": urlencode(params),
        "types": [t.value for t in CaseType],
        "statuses": [s.value for s in CaseStatus],
        "priorities": [p.value for p in Priority],
        "bulk_actions": BULK_ACTIONS,
    }


@router.get("/console", response_class=HTMLResponse)
async def queue(
    request: Request,
    signed_in: ConsoleAgentDep,
    type: Annotated[str | None, Query(max_length=32)] = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    queue: Annotated[str | None, Query(max_length=_TEXT_MAX)] = None,
    assignee: Annotated[str | None, Query(max_length=_TEXT_MAX)] = None,
    priority: Annotated[str | None, Query(max_length=16)] = None,
    q: Annotated[str | None, Query(max_length=_TEXT_MAX)] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    fragment: bool = False,
) -> Response:
    """The cases waiting on an agent, overdue first; `fragment` answers the list alone."""
    filters = _filters(type, status, queue, assignee, priority, q)
    found = await run_in_threadpool(
        _read_queue, app_engine(request), filters, signed_in.agent.email, page
    )
    context = _queue_context(found, filters, utcnow())
    return console_page("queue_rows.html.j2" if fragment else "queue.html.j2", signed_in, context)


# ---- a case ----------------------------------------------------------------------------


def _read_case_page(engine: Engine, case_id: str) -> tuple[CaseView, list[Any], int]:
    with Session(engine) as session:
        row = stored_case(session, case_id)
        return (
            service.case_view(session, row),
            service.deliveries(session, case_id=case_id),
            (row.revision),
        )


def _temporal_link(request: Request, case_id: str) -> str:
    settings = app_settings(request)
    base = settings.temporal_ui_url or f"http://localhost:{settings.dev_ui_port}"
    return f"{base.rstrip('/')}/namespaces/{settings.temporal_namespace}/workflows/{case_id}"


def _canned(request: Request, action: str, view: CaseView, agent_locale: Locale) -> list[Any]:
    replies: list[CannedReply] = request.app.state.canned
    return choices(replies, action, agent=agent_locale, case=view)


def _case_context(
    request: Request,
    signed_in: ConsoleAgent,
    view: CaseView,
    deliveries: list[Any],
    revision: int,
    *,
    errors: dict[str, list[dict[str, Any]]] | None = None,
    error: str | None = None,
    values: dict[str, str] | None = None,
    chosen: str | None = None,
) -> dict[str, Any]:
    supervisor = _principal(signed_in).supervisor
    # What only a supervisor may do is offered to supervisors only (the API refuses the rest).
    actions = [a for a in view.agent_actions if supervisor or a not in SUPERVISOR_ACTIONS]
    return {
        "case": view,
        "revision": revision,
        "deliveries": deliveries,
        "actions": [
            {
                "name": a,
                "fields": form_fields(a, supervisor=supervisor),
                "canned": _canned(request, a, view, signed_in.locale),
                "canned_field": TEXT_FIELDS.get(a),
            }
            for a in actions
        ],
        "decisions": [a for a in actions if a in AGENT_DECISIONS],
        "temporal_url": _temporal_link(request, view.id),
        "overdue": overdue(view, utcnow()),
        "errors": errors or {},
        "error": error,
        "values": values or {},
        "chosen": chosen,
        "images": [e for e in view.evidence if _image(e)],
        "other_evidence": [e for e in view.evidence if not _image(e)],
    }


def _image(url: str) -> bool:
    lowered = url.lower().split("?", 1)[0]
    return lowered.startswith(("https://", "http://")) and lowered.endswith(
        (".png", ".jpg", ".jpeg", ".gif", ".webp")
    )


@router.get("/console/cases/{case_id}", response_class=HTMLResponse)
async def case_page(
    case_id: str, request: Request, signed_in: ConsoleAgentDep, fragment: bool = False
) -> Response:
    """A case: who and what, the decision and why, deadlines, timeline, messages, actions."""
    view, deliveries, revision = await run_in_threadpool(
        _read_case_page, app_engine(request), case_id
    )
    context = _case_context(request, signed_in, view, deliveries, revision)
    return console_page("case_main.html.j2" if fragment else "case.html.j2", signed_in, context)


def _read_revision(engine: Engine, case_id: str) -> dict[str, Any]:
    with Session(engine) as session:
        row = stored_case(session, case_id)
        return {"revision": row.revision, "status": row.status}


@router.get("/console/cases/{case_id}/revision")
async def case_revision(case_id: str, request: Request, _: ConsoleAgentDep) -> Response:
    """The revision of the case's record: the page polls it and redraws when it moves.

    One row read, no timeline or delivery log: every open case page asks every 2 s.
    """
    state = await run_in_threadpool(_read_revision, app_engine(request), case_id)
    return JSONResponse(state)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    values: dict[str, str] = {}
    for name, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(name, value.replace("\x00", ""))
    return values


@router.post("/console/cases/{case_id}/actions", response_class=HTMLResponse)
async def case_action(case_id: str, request: Request, signed_in: CheckedAgentDep) -> Response:
    """Take an action from the case page: 303 back to the page, or the page with why not."""
    engine, client = app_engine(request), app_temporal(request)
    values = await _form(request)
    chosen = values.get("action", "")
    try:
        action = parse_action(chosen, values)
        await take_agent_action(engine, client, _principal(signed_in), case_id, action)
    except FormRefused as refused:
        return await _refused_page(
            request, signed_in, engine, case_id, 422, values, chosen, errors=refused.errors
        )
    except Problem as problem:
        if problem.status == 404:
            raise
        return await _refused_page(
            request, signed_in, engine, case_id, problem.status, values, chosen,
            error=problem.detail or problem.title,
        )  # fmt: skip
    return RedirectResponse(f"/console/cases/{case_id}", status_code=303)


async def _refused_page(
    request: Request,
    signed_in: ConsoleAgent,
    engine: Engine,
    case_id: str,
    status: int,
    values: dict[str, str],
    chosen: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    error: str | None = None,
) -> Response:
    view, deliveries, revision = await run_in_threadpool(_read_case_page, engine, case_id)
    by_field: dict[str, list[dict[str, Any]]] = {}
    for item in errors or []:
        by_field.setdefault(item["field"], []).append(item)
    context = _case_context(
        request, signed_in, view, deliveries, revision,
        errors=by_field, error=error, values=values, chosen=chosen,
    )  # fmt: skip
    return console_page("case.html.j2", signed_in, context, status)


# ---- bulk actions ----------------------------------------------------------------------


async def _one(
    engine: Engine, client: Client, principal: Principal, case_id: str, action: Any
) -> dict[str, Any]:
    try:
        view = await take_agent_action(engine, client, principal, case_id, action)
    except Problem as problem:
        return {"case_id": case_id, "ok": False, "status": problem.status,
                "message": problem.detail or problem.title}  # fmt: skip
    return {"case_id": case_id, "ok": True, "status": 200, "case_status": view.status.value}


@router.post("/console/bulk", response_class=HTMLResponse)
async def bulk(request: Request, signed_in: CheckedAgentDep) -> Response:
    """Assign or approve the selected cases; each case reports its own result."""
    form = await request.form()
    chosen = str(form.get("action", ""))
    case_ids = [str(v)[:_TEXT_MAX] for v in form.getlist("case_id")][:BULK_MAX]
    assignee = str(form.get("agent", "")).strip() or signed_in.agent.email
    if chosen not in BULK_ACTIONS or not case_ids:
        results = [{"case_id": "-", "ok": False, "status": 422,
                    "message": "Choose cases and an action (assign or approve)."}]  # fmt: skip
        return console_page("bulk.html.j2", signed_in, {"results": results, "action": chosen}, 422)
    action: Any = (
        Assign(action="assign", agent=assignee[:_TEXT_MAX])
        if chosen == "assign"
        else Approve(action="approve")
    )
    engine, client, principal = app_engine(request), app_temporal(request), _principal(signed_in)
    # One at a time: each is its own update, and the order of results is the order chosen.
    results = [await _one(engine, client, principal, case_id, action) for case_id in case_ids]
    return console_page("bulk.html.j2", signed_in, {"results": results, "action": chosen})
