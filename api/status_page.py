"""The customer's status page: one case, opened by its token, with no-JavaScript forms.

The token in the path is the credential (it is the last segment of the case's status_url),
so the page needs no bearer key. Errors answer as HTML pages, except that a client asking
for JSON (an Accept header naming JSON and not HTML) gets the API's problem+json.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api import request_ids
from api.cases import read_case, take_customer_action
from api.console.i18n import negotiate
from api.contract import problems
from api.deps import TOKEN_MAX, EngineDep, PolicyDep, SessionDep, TemporalDep
from api.errors import CASE_NOT_FOUND, Problem, field_errors, validation_problem
from api.guesses import count_failed_guess, refuse_if_guessing
from domain.actions import (
    Accept,
    CustomerAction,
    CustomerCancel,
    Decline,
    ProvideTracking,
    Rate,
    Reply,
    SwitchVariant,
)
from domain.models import CaseStatus, CaseType, CaseView
from domain.policy import Policy
from notifications.codes import qr_svg
from notifications.render import render_page
from store import service

router = APIRouter(tags=["status page"])

PAGE = "status_page.html.j2"
FORM = "application/x-www-form-urlencoded"
# The form fields each action reads; anything else a form sends is ignored.
FORM_FIELDS: dict[str, tuple[str, ...]] = {
    "reply": ("message",),
    "provide_tracking": ("carrier", "tracking_number"),
    # A refund offer taken as store credit sends `resolution=store_credit`.
    "accept": ("resolution",),
    "decline": (),
    "rate": ("score", "comment"),
    "cancel": (),
    "switch_variant": ("sku",),
}
# The actions a form may take, as `action` names them.
FORM_ACTIONS = (Reply, ProvideTracking, Accept, Decline, Rate, CustomerCancel, SwitchVariant)
_ACTION = TypeAdapter[Any](CustomerAction)


def form_schema() -> dict[str, Any]:
    """The JSON schema of the page's form: one object per action, with the fields it reads
    (the customer-actions body's constraints, without what a form can't carry)."""
    branches = []
    for model in FORM_ACTIONS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        action = schema["properties"]["action"]["const"]
        kept = ("action", *FORM_FIELDS[action])
        branches.append(
            {
                "type": "object",
                "title": schema["title"],
                "properties": {k: v for k, v in schema["properties"].items() if k in kept},
                "required": [k for k in schema.get("required", []) if k in kept],
            }
        )
    return {"oneOf": branches}


# The statuses each case type passes through on its way to a close, in order. Side statuses
# (awaiting_customer) and early ends (rejected, cancelled, expired) are shown where the case
# stands when it reaches them: after review.
PATHS: dict[CaseType, tuple[CaseStatus, ...]] = {
    CaseType.RETURN: (
        CaseStatus.OPEN,
        CaseStatus.AWAITING_REVIEW,
        CaseStatus.AWAITING_SHIPMENT,
        CaseStatus.IN_TRANSIT,
        CaseStatus.INSPECTING,
        CaseStatus.REFUND_PENDING,
        CaseStatus.RESOLVED,
        CaseStatus.CLOSED,
    ),
    CaseType.EXCHANGE: (
        CaseStatus.OPEN,
        CaseStatus.AWAITING_REVIEW,
        CaseStatus.AWAITING_SHIPMENT,
        CaseStatus.IN_TRANSIT,
        CaseStatus.INSPECTING,
        CaseStatus.REPLACEMENT_SHIPPED,
        CaseStatus.RESOLVED,
        CaseStatus.CLOSED,
    ),
    CaseType.REFUND: (
        CaseStatus.OPEN,
        CaseStatus.AWAITING_REVIEW,
        CaseStatus.REFUND_PENDING,
        CaseStatus.RESOLVED,
        CaseStatus.CLOSED,
    ),
    CaseType.REPAIR: (
        CaseStatus.OPEN,
        CaseStatus.AWAITING_REVIEW,
        CaseStatus.AWAITING_SHIPMENT,
        CaseStatus.IN_TRANSIT,
        CaseStatus.INSPECTING,
        CaseStatus.REPAIRING,
        CaseStatus.REPLACEMENT_SHIPPED,
        CaseStatus.RESOLVED,
        CaseStatus.CLOSED,
    ),
    CaseType.COMPLAINT: (
        CaseStatus.OPEN,
        CaseStatus.AWAITING_REVIEW,
        CaseStatus.RESOLVED,
        CaseStatus.CLOSED,
    ),
}
# The token is in the URL: keep it out of Referer headers, caches and other sites' frames.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
}
# The drop-off code's QR image: the code never changes, so the browser keeps it (privately:
# its URL holds the token) instead of asking again on every visit of the page.
IMAGE_HEADERS = {
    "Cache-Control": "private, max-age=86400",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
}
DROPOFF_IMAGE = "dropoff.svg"


def steps(view: CaseView) -> list[dict[str, str]]:
    """The case's timeline of statuses, each `done`, `current` or `todo`."""
    path = list(PATHS.get(view.type, PATHS[CaseType.RETURN]))
    if view.status not in path:
        path.insert(path.index(CaseStatus.AWAITING_REVIEW) + 1, view.status)
        # An early end is the last step: nothing after it will happen.
        if view.status in (CaseStatus.REJECTED, CaseStatus.CANCELLED, CaseStatus.EXPIRED):
            path = path[: path.index(view.status) + 1]
    current = path.index(view.status)
    return [
        {
            "status": status.value,
            "state": "done" if i < current else "current" if i == current else "todo",
        }
        for i, status in enumerate(path)
    ]


def _timezone(view: CaseView, policy: Policy) -> str:
    # The customer's own zone when it is a real one, else the shop's.
    name = view.customer.timezone
    if name:
        try:
            ZoneInfo(name)
            return name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return policy.timezone


def page(
    view: CaseView,
    policy: Policy,
    token: str,
    *,
    status_code: int = 200,
    error: str | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> HTMLResponse:
    """The status page of one case in its customer's locale."""
    # A reminder's deadline is ours, not the customer's: show the deadline it reminds of.
    deadlines = [d for d in view.deadlines if not d.name.endswith("_reminder")]
    deadline = min(deadlines or view.deadlines, key=lambda d: d.due_at, default=None)
    inbound = [s for s in view.shipments if s.direction == "inbound"]
    dropoff = next((s.dropoff for s in inbound if s.dropoff is not None), None)
    html = render_page(
        PAGE,
        str(view.customer.locale),
        {
            "case": view.model_dump(mode="json"),
            "steps": steps(view),
            "deadline": deadline.model_dump(mode="json") if deadline else None,
            "tz": _timezone(view, policy),
            "actions": view.customer_actions,
            # The customer ships it themselves: show where to.
            "return_address": (
                policy.returns.return_address
                if "provide_tracking" in view.customer_actions
                or any(s.booked_by == "customer" for s in inbound)
                else None
            ),
            "action_url": f"/status/{token}/actions",
            # The drop-off's QR image, while the code is still of use.
            "dropoff_image": (
                f"/status/{token}/{DROPOFF_IMAGE}"
                if dropoff is not None and view.status == CaseStatus.AWAITING_SHIPMENT
                else None
            ),
            "error": error,
            "errors": errors or [],
        },
    )
    return HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return "json" in accept and "html" not in accept


def _not_found(request: Request) -> Response:
    problem = Problem(404, CASE_NOT_FOUND, "No such case.", "No case opens with this link.")
    if _wants_json(request):
        return problem.response()
    html = render_page("status_not_found.html.j2", _locale(request), {})
    return HTMLResponse(html, status_code=404, headers=PAGE_HEADERS)


def _locale(request: Request) -> str:
    # No case, so no customer locale: the browser's first language we have, else en.
    return negotiate(None, request.headers.get("accept-language", "")).value


def _guarded_case(request: Request, session: Session, token: str) -> CaseView | None:
    """The case of the token, counting a miss against the client (429 once it has too many)."""
    refuse_if_guessing(request)
    view = _case_for(session, token)
    if view is None:
        count_failed_guess(request)
    return view


def _case_for(session: Session, token: str) -> CaseView | None:
    # A token no case can have (too long, control characters such as NUL, which PostgreSQL
    # refuses with an error) opens nothing: 404, not a failed query.
    if not token or len(token) > TOKEN_MAX or not token.isprintable():
        return None
    case = service.case_for_token(session, token=token)
    if case is None:
        return None
    # The customer's lines log the case, never the token in the path (aftersales.logs).
    request_ids.bind(case_id=case.id)
    return service.case_view(session, case)


def _case_id(request: Request, engine: Engine, token: str) -> str | None:
    with Session(engine) as session:
        view = _guarded_case(request, session, token)
    return view.id if view else None


@router.get(
    "/status/{token}",
    response_class=HTMLResponse,
    responses={**problems(404, html=True), **problems(429)},
)
def status_page(
    token: str,
    request: Request,
    session: SessionDep,
    policy: PolicyDep,
) -> Response:
    """The customer's status page, from the case's record; an unknown token answers 404."""
    view = _guarded_case(request, session, token)
    if view is None:
        return _not_found(request)
    return page(view, policy, token)


@router.get(
    f"/status/{{token}}/{DROPOFF_IMAGE}",
    response_class=Response,
    responses={
        200: {"description": "The QR image.", "content": {"image/svg+xml": {}}},
        **problems(404, html=True),
        **problems(429),
    },
)
def dropoff_image(token: str, request: Request, session: SessionDep) -> Response:
    """The case's drop-off code as a QR image (SVG, made here); 404 without a drop-off."""
    view = _guarded_case(request, session, token)
    codes = [s.dropoff.code for s in view.shipments if s.dropoff] if view else []
    if not codes:
        return _not_found(request)
    return Response(qr_svg(codes[0]), media_type="image/svg+xml", headers=IMAGE_HEADERS)


async def _form_action(request: Request) -> dict[str, str]:
    """The posted form as a customer action's fields (only those its action reads)."""
    form = await request.form()
    values: dict[str, str] = {}
    for name, value in form.multi_items():
        if isinstance(value, UploadFile):
            raise _FormError([{"field": name, "message": "files are not taken", "type": "file"}])
        if "\x00" in value:
            # PostgreSQL can't store NUL in text: the case's record would fail to write.
            raise _FormError(
                [{"field": name, "message": "must not contain NUL characters", "type": "nul"}]
            )
        values.setdefault(name, value)
    action = values.get("action", "")
    wanted = FORM_FIELDS.get(action, ())
    # Taken as typed, as the customer-actions route takes them: the form's schema is that
    # route's, so what one accepts the other does (docs/decisions.md).
    return {"action": action} | {k: v for k, v in values.items() if k in wanted}


class _FormError(Exception):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("invalid form")
        self.errors = errors


@router.post(
    "/status/{token}/actions",
    status_code=303,
    response_class=RedirectResponse,
    responses={
        303: {
            "description": "Taken: back to the page.",
            "headers": {"Location": {"schema": {"type": "string"}}},
        },
        # A JSON client gets problem+json, a browser the page again with why.
        **problems(400, 413, 429, html=False),
        **problems(404, 409, 422, 503, html=True),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FORM: {"schema": form_schema()}},
        }
    },
)
async def status_action(
    token: str,
    request: Request,
    engine: EngineDep,
    client: TemporalDep,
    policy: PolicyDep,
) -> Response:
    """Take a customer action from the page's form, then 303 back to the page.

    A form that doesn't validate answers the page with the errors and 422; an action the
    case can't take now answers the page with why and 409 (problem+json for JSON clients).
    """
    case_id = await run_in_threadpool(_case_id, request, engine, token)
    if case_id is None:
        return _not_found(request)
    try:
        fields = await _form_action(request)
        action = _ACTION.validate_python(fields)
    except _FormError as err:
        return await _refused(request, engine, policy, token, case_id, 422, err.errors)
    except ValidationError as err:
        errors = field_errors(err.errors(), body=fields)
        return await _refused(request, engine, policy, token, case_id, 422, errors)
    try:
        await take_customer_action(engine, client, case_id, action)
    except Problem as problem:
        if _wants_json(request):
            return problem.response()
        view = await run_in_threadpool(read_case, engine, case_id)
        message = problem.detail or problem.title
        return page(view, policy, token, status_code=problem.status, error=message)
    return RedirectResponse(f"/status/{token}", status_code=303)


async def _refused(
    request: Request,
    engine: Engine,
    policy: Policy,
    token: str,
    case_id: str,
    status_code: int,
    errors: list[dict[str, Any]],
) -> Response:
    """The page again with the form's errors (or a problem for a JSON client)."""
    if _wants_json(request):
        return validation_problem(errors).response()
    view = await run_in_threadpool(read_case, engine, case_id)
    return page(view, policy, token, status_code=status_code, errors=errors)
