"""Routes of a case: open, read, list, and what agents, customers and integrations say to it."""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.deps import PolicyDep, Principal, SessionDep, SettingsDep, TemporalDep, require
from api.errors import Problem, field_errors, validation_problem
from domain import opening
from domain.actions import AgentAction, CustomerAction, IntegrationEvent
from domain.calendar import case_holidays
from domain.complaints import opening_priority
from domain.models import (
    CaseRequest,
    CaseStatus,
    CaseType,
    CaseView,
    Decision,
)
from domain.policy import Policy
from domain.rules import evaluate
from store import service
from workflows.case import CaseInput
from workflows.registry import WORKFLOWS

router = APIRouter(prefix="/v1", tags=["cases"])

# IDs and tokens from the system's randomness; a workflow opening a child case uses its own.
_RANDOM = secrets.SystemRandom()
RISK_WINDOW = timedelta(days=90)
CASE_ID_MAX = 32  # store.tables.Case.id
# How long an answer to "open" waits for the worker's first record of the new case.
RECORD_WAIT_SECONDS = 10.0
RISK_TYPES = {CaseType.RETURN.value, CaseType.EXCHANGE.value, CaseType.REFUND.value}


class CaseList(BaseModel):
    items: list[CaseView]
    next_cursor: str | None = None


def new_case_id(case_type: CaseType) -> str:
    """A short, human-typable case ID prefixed by its type."""
    return opening.new_case_id(case_type, _RANDOM)


def check_request(request: CaseRequest) -> None:
    """422 for what the model alone can't refuse: types not built yet, fields a type needs."""
    errors: list[dict[str, Any]] = []
    if request.type not in WORKFLOWS:
        errors.append(
            {
                "field": "type",
                "message": f"{request.type} cases are not available yet",
                "type": "enum",
            }
        )
    if request.type != CaseType.COMPLAINT and request.reason is None:
        errors.append(
            {"field": "reason", "message": "required for this case type", "type": "missing"}
        )
    if request.type == CaseType.COMPLAINT and request.complaint is None:
        errors.append(
            {"field": "complaint", "message": "required for a complaint", "type": "missing"}
        )
    if request.type == CaseType.EXCHANGE and not request.exchange_for:
        errors.append(
            {"field": "exchange_for", "message": "required for an exchange", "type": "missing"}
        )
    if errors:
        raise validation_problem(errors)


def decide(session: SessionDep, *, request: CaseRequest, policy: Policy, now: datetime) -> Decision:
    """Evaluate the policy for a would-be case, counting the customer's recent cases."""
    prior = service.recent_case_count(
        session, customer_id=request.customer.id, types=RISK_TYPES, since=now - RISK_WINDOW
    )
    return evaluate(request, policy=policy, now=now, prior_cases=prior)


def _request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


async def live_view(client: Client, session: SessionDep, case_id: str) -> CaseView:
    """The case from its workflow's `state` query, or its record when the query can't answer."""
    try:
        return await client.get_workflow_handle(case_id).query("state", result_type=CaseView)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            stored = service.get_case(session, case_id=case_id)
            if stored is not None:
                return service.stored_view(stored)
            raise
    stored = service.get_case(session, case_id=case_id)
    if stored is None:
        raise Problem(404, "case-not-found", "No such case.", f"No case {case_id}.")
    return service.stored_view(stored)


def _handle(client: Client, session: SessionDep, case_id: str) -> WorkflowHandle[Any, Any]:
    # An ID no case can have (too long for the column, control characters such as NUL,
    # which PostgreSQL refuses with an error) names no case: 404, not a failed query.
    unusable = len(case_id) > CASE_ID_MAX or not case_id.isprintable()
    if unusable or service.get_case(session, case_id=case_id) is None:
        raise Problem(404, "case-not-found", "No such case.", f"No case {case_id}.")
    return client.get_workflow_handle(case_id)


@router.post("/cases", status_code=201, response_model=CaseView)
async def open_case(
    request: CaseRequest,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    policy: PolicyDep,
    client: TemporalDep,
    _: Annotated[Principal, Depends(require("storefront", "agent"))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> CaseView:
    """Open a case; the same Idempotency-Key and body answer with the same case."""
    check_request(request)
    body_hash = _request_hash(request.model_dump(mode="json"))
    if idempotency_key and service.get_idempotency(session, key=idempotency_key):
        response.status_code = 200
        return await _replay(client, session, key=idempotency_key, body_hash=body_hash)
    duplicate = service.open_duplicate(
        session,
        type=request.type.value,
        order_id=request.order.id,
        skus={item.sku for item in request.items},
    )
    if duplicate:
        raise Problem(
            409,
            "duplicate-case",
            "An open case already covers this order and item.",
            f"Case {duplicate} is still open for order {request.order.id}.",
            case_id=duplicate,
        )
    now = datetime.now(UTC)
    case_id = new_case_id(request.type)
    if idempotency_key:
        try:
            service.save_idempotency(
                session, key=idempotency_key, request_hash=body_hash, case_id=case_id
            )
            session.commit()
        except IntegrityError:
            # Another request with this key won the race; answer as its repeat.
            session.rollback()
            response.status_code = 200
            return await _replay(client, session, key=idempotency_key, body_hash=body_hash)
    token = opening.new_token(_RANDOM)
    case_input = CaseInput(
        case_id=case_id,
        request=request,
        decision=decide(session, request=request, policy=policy, now=now),
        policy=policy,
        token=token,
        status_url=opening.status_url(settings.public_url, token),
        opened_at=now,
        holidays=case_holidays(policy, now),
        queue=_queue(request, policy),
        priority=opening_priority(request),
    )
    handle = await client.start_workflow(
        WORKFLOWS[request.type].run,  # type: ignore[attr-defined]
        case_input,
        id=case_id,
        task_queue=settings.task_queue,
        static_summary=opening.summary(case_id, request, case_input.decision),
        static_details=opening.details(case_id, request, case_input.decision),
    )
    await _until_recorded(session, case_id)
    return await handle.query("state", result_type=CaseView)


async def _until_recorded(session: SessionDep, case_id: str) -> None:
    """Wait until the worker has written the new case's first record (its first step).

    Until then the case's status-URL token opens nothing, GET answers 404, and the same
    request sent again opens a duplicate instead of a 409: answering 201 only once the
    record exists keeps what the answer promises. A slow worker only delays the answer.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RECORD_WAIT_SECONDS
    delay = 0.01
    while service.get_case(session, case_id=case_id) is None:
        if loop.time() > deadline:
            return
        session.rollback()  # end any snapshot, so the next look sees the worker's commit
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.2)


async def _replay(client: Client, session: SessionDep, *, key: str, body_hash: str) -> CaseView:
    seen = service.get_idempotency(session, key=key)
    assert seen is not None
    if seen.request_hash != body_hash:
        raise Problem(
            422,
            "idempotency-key-reused",
            "This Idempotency-Key was used with another body.",
            f"The key opened {seen.case_id} with a different request.",
        )
    return await live_view(client, session, seen.case_id)


def _queue(request: CaseRequest, policy: Policy) -> str:
    if request.complaint is not None:
        return policy.complaints.routing.get(request.complaint.category, "customer_service")
    return "customer_service"


@router.get("/cases", response_model=CaseList)
async def list_cases(
    session: SessionDep,
    _: Annotated[Principal, Depends(require("agent", "operator"))],
    type: CaseType | None = None,
    status: CaseStatus | None = None,
    order_id: Annotated[str | None, Query(max_length=200)] = None,
    customer_id: Annotated[str | None, Query(max_length=200)] = None,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> CaseList:
    """Cases from the records, newest first, filtered and paged by cursor."""
    try:
        rows, next_cursor = service.list_cases(
            session,
            type=type.value if type else None,
            status=status.value if status else None,
            order_id=order_id,
            customer_id=customer_id,
            queue=queue,
            overdue=overdue,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as err:
        raise validation_problem(
            [{"field": "cursor", "message": str(err), "type": "value_error"}]
        ) from err
    return CaseList(items=[service.stored_view(row) for row in rows], next_cursor=next_cursor)


@router.get("/cases/{case_id}", response_model=CaseView)
async def get_case(
    case_id: str,
    session: SessionDep,
    client: TemporalDep,
    _: Annotated[Principal, Depends(require("storefront", "agent", "operator", "customer"))],
) -> CaseView:
    """The live case."""
    _handle(client, session, case_id)
    return await live_view(client, session, case_id)


async def _update(handle: WorkflowHandle[Any, Any], name: str, body: BaseModel) -> CaseView:
    try:
        return await handle.execute_update(name, body, result_type=CaseView)
    except WorkflowUpdateFailedError as err:
        cause = err.cause
        message = cause.message if isinstance(cause, ApplicationError) else str(cause)
        raise Problem(
            409, "action_not_allowed", "The case can't take this action now.", message
        ) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise Problem(409, "action_not_allowed", "The case has ended.", err.message) from err
        raise


@router.post("/cases/{case_id}/actions", response_model=CaseView)
async def act(
    case_id: str,
    action: Annotated[AgentAction, Body()],
    session: SessionDep,
    client: TemporalDep,
    _: Annotated[Principal, Depends(require("agent"))],
) -> CaseView:
    """An agent action; 409 `action_not_allowed` when the case can't take it now."""
    return await _update(_handle(client, session, case_id), "action", action)


@router.post("/cases/{case_id}/customer-actions", response_model=CaseView)
async def customer_act(
    case_id: str,
    action: Annotated[CustomerAction, Body()],
    session: SessionDep,
    client: TemporalDep,
    _: Annotated[Principal, Depends(require("customer"))],
) -> CaseView:
    """A customer action, with the case's own token."""
    return await _update(_handle(client, session, case_id), "customer_action", action)


class Accepted(BaseModel):
    accepted: Literal[True] = True
    event_id: str


@router.post("/cases/{case_id}/events", status_code=202, response_model=Accepted)
async def report_event(
    case_id: str,
    event: IntegrationEvent,
    session: SessionDep,
    client: TemporalDep,
    _: Annotated[Principal, Depends(require("integration"))],
) -> Accepted:
    """An integration event; a repeated `event_id` is accepted and ignored."""
    try:
        event.parsed()
    except ValidationError as err:
        raise validation_problem(field_errors(err.errors(), prefix=("data",))) from err
    handle = _handle(client, session, case_id)
    try:
        await handle.signal("event", event)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise Problem(
                409, "case-ended", "The case has ended and takes no more events."
            ) from err
        raise
    return Accepted(event_id=event.event_id)
