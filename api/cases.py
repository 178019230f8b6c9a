"""Routes of a case: open, read, list, and what agents, customers and integrations say to it.

Reads answer from the database projection. Routes that call Temporal are `async`, do their
DB work in a short session on the threadpool, close it, and only then call Temporal: no
route holds a connection while Temporal answers, and none blocks the event loop.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api import request_ids, temporal_calls
from api.contract import AUTHED, WITH_BODY, problems
from api.deps import (
    CUSTOMER,
    EngineDep,
    Principal,
    SessionDep,
    TemporalDep,
    app_engine,
    app_policy,
    app_settings,
    app_temporal,
    require,
)
from api.errors import (
    CASE_ENDED,
    CASE_NOT_FOUND,
    DUPLICATE_CASE,
    IDEMPOTENCY_KEY_REUSED,
    SUPERVISOR_ONLY,
    TRACKING_NUMBER_TAKEN,
    Problem,
    field_errors,
    validation_problem,
)
from api.temporal_calls import Start
from domain import opening, return_methods
from domain.actions import (
    AgentAction,
    ApproveException,
    Assign,
    CustomerAction,
    InspectionData,
    IntegrationEvent,
    ProvideTracking,
)
from domain.calendar import case_holidays
from domain.complaints import opening_priority
from domain.inspection import mismatch
from domain.models import (
    TERMINAL_STATUSES,
    Acted,
    CaseRequest,
    CaseStatus,
    CaseType,
    CaseView,
    Decision,
)
from domain.names import SUPERVISOR_ACTIONS, SUPERVISOR_TERMS
from domain.policy import Policy
from domain.rules import RISK_TYPES, RISK_WINDOW, evaluate
from store import db, service
from store.tables import Case
from workflows.case import CaseInput
from workflows.registry import WORKFLOWS

router = APIRouter(prefix="/v1", tags=["cases"])

# IDs and tokens from the system's randomness; a workflow opening a child case uses its own.
_RANDOM = secrets.SystemRandom()
CASE_ID_MAX = 32  # store.tables.Case.id
# Conflicting writes of one open: a claim held by a case that ended between the failed insert
# and the look at who holds it. Each retry starts over; three are plenty.
OPEN_ATTEMPTS = 3


class CaseList(BaseModel):
    items: list[CaseView]
    next_cursor: str | None = None


def new_case_id(case_type: CaseType) -> str:
    """A short, human-typable case ID prefixed by its type."""
    return opening.new_case_id(case_type, _RANDOM)


def check_request(request: CaseRequest, policy: Policy | None = None) -> None:
    """422 for what the model alone can't refuse: types not built yet, fields a type needs,
    and (given the policy) a way of sending the item back it doesn't offer."""
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
    if policy is not None:
        errors += return_methods.problems(request, policy)
    if errors:
        raise validation_problem(errors)


def decide(db: service.Db, *, request: CaseRequest, policy: Policy, now: datetime) -> Decision:
    """Evaluate the policy for a would-be case, counting the customer's recent cases."""
    prior = service.recent_case_count(
        db, customer_id=request.customer.id, types=RISK_TYPES, since=now - RISK_WINDOW
    )
    return evaluate(request, policy=policy, now=now, prior_cases=prior)


def _request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def _not_found(case_id: str) -> Problem:
    return Problem(404, CASE_NOT_FOUND, "No such case.", f"No case {case_id}.")


def stored_case(session: Session, case_id: str) -> Case:
    """The case's record; 404 when there is none."""
    # An ID no case can have (too long for the column, control characters such as NUL,
    # which PostgreSQL refuses with an error) names no case: 404, not a failed query.
    unusable = len(case_id) > CASE_ID_MAX or not case_id.isprintable()
    row = None if unusable else service.get_case(session, case_id=case_id)
    if row is None:
        raise _not_found(case_id)
    return row


def read_case(engine: Engine, case_id: str) -> CaseView:
    """The case from its record and timeline rows, in a session of its own (call it on the
    threadpool)."""
    with Session(engine) as session:
        return service.case_view(session, stored_case(session, case_id))


async def as_updated(engine: Engine, acted: Acted) -> CaseView:
    """The case an update left, from its record and timeline rows.

    An update answers only once the case projected what it did (`acted.revision`), so the
    row already holds it; the update's answer names the revision rather than copying the case
    into the workflow's history once per action.
    """
    return await run_in_threadpool(read_case, engine, acted.id)


def _pending_start(session: Session, row: Case) -> Start | None:
    """What restarting the case's workflow takes, while the worker has never recorded it."""
    if row.revision != 0:
        return None
    stored = service.get_opening(session, case_id=row.id)
    return None if stored is None else Start.from_opening(stored)


@dataclass(frozen=True)
class Opened:
    """The outcome of an open's transaction: the case to answer, and what is left to do."""

    view: CaseView
    start: Start | None
    replayed: bool = False


@dataclass(frozen=True)
class Duplicate:
    """An open case already covers the item; `start` when that case never got going."""

    case_id: str
    order_id: str
    start: Start | None


def _duplicate_problem(duplicate: Duplicate) -> Problem:
    return Problem(
        409,
        DUPLICATE_CASE,
        "An open case already covers this order and item.",
        f"Case {duplicate.case_id} is still open for order {duplicate.order_id}.",
        case_id=duplicate.case_id,
    )


def record_open(
    engine: Engine,
    *,
    request: CaseRequest,
    policy: Policy,
    public_url: str,
    key: str | None,
    body_hash: str,
) -> Opened | Duplicate:
    """Write a new case (record, claims, restart input, idempotency key) in one transaction.

    Blocking: call it on the threadpool. A concurrent open of the same item waits on the
    claim's unique key and then sees the winner (a Duplicate); a concurrent open with the
    same key waits on the key and then replays the winner's case.
    """
    skus = {item.sku for item in request.items}
    # A Core connection: the reads are two or three statements, and a session's bookkeeping
    # cost more than they do. The rarer answers (a replay, a duplicate) read rows through a
    # session on it.
    with engine.connect() as conn:
        for attempt in range(OPEN_ATTEMPTS):
            reuse_id = None
            if key:
                seen = service.get_idempotency(conn, key=key)
                if seen is not None:
                    replay = _replay(conn, seen.case_id, seen.request_hash, body_hash)
                    if replay is not None:
                        return replay
                    # A key stored before the API wrote cases at open, whose case was never
                    # recorded: open it now under the key's case ID, so the key keeps
                    # leading to that one case (a workflow already running under the ID is
                    # found at start and left be).
                    reuse_id = seen.case_id
            # The first try writes without looking for a holder of the items: the claim's
            # unique key refuses a duplicate atomically anyway, and a look first cost every
            # open a statement for the rare one it finds. After a refused write, look.
            holder = (
                service.claim_holder(
                    conn, type=request.type.value, order_id=request.order.id, skus=skus
                )
                if attempt
                else None
            )
            if holder is not None:
                if key and reuse_id is None:
                    # A same-key open may have committed between the key's look-up and the
                    # claim's: look again with a fresh snapshot, so it answers as a replay.
                    conn.rollback()
                    seen = service.get_idempotency(conn, key=key)
                    if seen is not None:
                        replay = _replay(conn, seen.case_id, seen.request_hash, body_hash)
                        if replay is not None:
                            return replay
                return _duplicate(conn, holder, request.order.id)
            now = datetime.now(UTC)
            decision = decide(conn, request=request, policy=policy, now=now)
            start = _new_start(request, decision, policy, public_url, now, case_id=reuse_id or None)
            view = _initial_view(start)
            writes = partial(
                _write_open,
                key=key if reuse_id is None else None,
                body_hash=body_hash,
                request=request,
                skus=skus,
                start=start,
                view=view,
                # Built here, not in the write transaction: that holds the database's lock.
                restart_input=temporal_calls.CASE_INPUT.dump_python(start.input, mode="json"),
            )
            try:
                # The reads end here (on SQLite: the writes take the database's lock; on
                # PostgreSQL they follow in the reads' transaction).
                db.write(engine, writes, reads=conn)
            except IntegrityError:
                # Another open holds the item, or won a race (same key, same item): look
                # again at what it wrote.
                continue
            return Opened(view=view, start=start)
    raise RuntimeError(f"could not open a case for order {request.order.id} after retries")


def _write_open(
    session: Session,
    *,
    key: str | None,
    body_hash: str,
    request: CaseRequest,
    skus: set[str],
    start: Start,
    view: CaseView,
    restart_input: dict[str, Any],
) -> None:
    """The writes of one open (key, claims, record, restart input), all or none."""
    if key:
        # The key first: a same-key race fails here, and answers as a replay, not a 409.
        service.save_idempotency(session, key=key, request_hash=body_hash, case_id=view.id)
    service.claim_items(
        session, case_id=view.id, type=request.type.value, order_id=request.order.id, skus=skus
    )
    service.insert_opened_case(session, view=view, token=start.input.token)
    service.save_opening(
        session,
        case_id=view.id,
        workflow=request.type.value,
        input=restart_input,
        summary=start.summary,
        details=start.details,
    )


def _replay(conn: Connection, case_id: str, stored_hash: str, body_hash: str) -> Opened | None:
    if stored_hash != body_hash:
        raise Problem(
            422,
            IDEMPOTENCY_KEY_REUSED,
            "This Idempotency-Key was used with another body.",
            f"The key opened {case_id} with a different request.",
        )
    with Session(bind=conn) as session:
        row = service.get_case(session, case_id=case_id)
        if row is None:
            return None
        view = service.case_view(session, row)
        return Opened(view=view, start=_pending_start(session, row), replayed=True)


def _duplicate(conn: Connection, case_id: str, order_id: str) -> Duplicate:
    with Session(bind=conn) as session:
        row = service.get_case(session, case_id=case_id)
        start = _pending_start(session, row) if row is not None else None
        return Duplicate(case_id=case_id, order_id=order_id, start=start)


def _new_start(
    request: CaseRequest,
    decision: Decision,
    policy: Policy,
    public_url: str,
    now: datetime,
    *,
    case_id: str | None,
) -> Start:
    case_id = case_id or new_case_id(request.type)
    token = opening.new_token(_RANDOM)
    case_input = CaseInput(
        case_id=case_id,
        request=request,
        decision=decision,
        # The copy the case keeps: its order's peak season (if any) sets its timers.
        policy=policy.for_order(request.order),
        token=token,
        status_url=opening.status_url(public_url, token),
        opened_at=now,
        holidays=case_holidays(policy, now),
        queue=_queue(request, policy),
        priority=opening_priority(request),
        recorded=True,
    )
    return Start(
        case_type=request.type,
        input=case_input,
        summary=opening.summary(case_id, request, decision),
        details=opening.details(case_id, request, decision),
    )


def _initial_view(start: Start) -> CaseView:
    case_input = start.input
    return opening.initial_view(
        case_id=case_input.case_id,
        request=case_input.request,
        decision=case_input.decision,
        queue=case_input.queue,
        priority=case_input.priority,
        status_url=case_input.status_url,
        opened_at=case_input.opened_at,
        parent_case_id=case_input.parent_case_id,
    )


def view_response(view: CaseView, status_code: int) -> Response:
    """The case as a JSON answer, serialized once.

    A route returning the model would have FastAPI validate it again against the response
    model and then serialize it: a second pass over every field of a case the route built and
    validated itself. The response model stays on the route for the OpenAPI schema.
    """
    return Response(view.model_dump_json(), status_code=status_code, media_type="application/json")


@router.post(
    "/cases",
    status_code=201,
    response_model=CaseView,
    responses={
        200: {"model": CaseView, "description": "The case this Idempotency-Key opened."},
        **problems(*AUTHED, *WITH_BODY, 409, 503),
    },
)
async def open_case(
    request: CaseRequest,
    http: Request,
    _: Annotated[Principal, Depends(require("storefront", "agent"))],
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> Response:
    """Open a case: 201 with the case as written (status `open`), its workflow started.

    The same Idempotency-Key and body answer 200 with the same case, and start its workflow
    if an earlier try wrote the case but could not start it. 409 `duplicate-case` when an
    open case covers the item; 503 `temporal-unavailable` when the workflow can't be started
    now (the case is written: a retry with the same key finishes it).
    """
    # The hottest route: what other routes take as dependencies (engine, settings, policy,
    # client) it reads from the app's state, four dependency resolutions less per open.
    engine, settings, client = app_engine(http), app_settings(http), app_temporal(http)
    policy = app_policy(http)
    check_request(request, policy)
    # Only a stored key's hash is ever compared with it: no key, nothing to hash.
    body_hash = _request_hash(request.model_dump(mode="json")) if idempotency_key else ""
    outcome = await run_in_threadpool(
        record_open,
        engine,
        request=request,
        policy=policy,
        public_url=settings.public_url,
        key=idempotency_key,
        body_hash=body_hash,
    )
    if isinstance(outcome, Duplicate):
        if outcome.start is not None:
            # The open case was written but its workflow may never have started (the API
            # died, Temporal was down): start it now. The answer is the 409 either way.
            with contextlib.suppress(Problem):
                await temporal_calls.start_case(
                    client, outcome.start, task_queue=settings.task_queue
                )
        raise _duplicate_problem(outcome)
    request_ids.bind(case_id=outcome.view.id)
    if outcome.start is not None:
        await temporal_calls.start_case(client, outcome.start, task_queue=settings.task_queue)
    return view_response(outcome.view, 200 if outcome.replayed else 201)


def _queue(request: CaseRequest, policy: Policy) -> str:
    if request.complaint is not None:
        return policy.complaints.routing.get(request.complaint.category, "customer_service")
    return "customer_service"


@router.get("/cases", response_model=CaseList, responses=problems(*AUTHED))
def list_cases(
    session: SessionDep,
    _: Annotated[Principal, Depends(require("agent", "operator"))],
    type: CaseType | None = None,
    status: CaseStatus | None = None,
    order_id: Annotated[str | None, Query(max_length=200)] = None,
    customer_id: Annotated[str | None, Query(max_length=200)] = None,
    queue: Annotated[str | None, Query(max_length=200)] = None,
    assignee: Annotated[str | None, Query(max_length=200)] = None,
    overdue: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=service.CURSOR_PATTERN,
            description="The `next_cursor` of the page before.",
        ),
    ] = None,
) -> CaseList:
    """Cases from the records, newest first, filtered and paged by cursor."""
    try:
        views, next_cursor = service.list_views(
            session,
            type=type.value if type else None,
            status=status.value if status else None,
            order_id=order_id,
            customer_id=customer_id,
            queue=queue,
            assignee=assignee,
            overdue=overdue,
            limit=limit,
            cursor=cursor,
        )
    except ValueError as err:
        raise validation_problem(
            [{"field": "cursor", "message": str(err), "type": "value_error"}]
        ) from err
    return CaseList(items=views, next_cursor=next_cursor)


@router.get("/cases/{case_id}", response_model=CaseView, responses=problems(*AUTHED, 404))
def get_case(
    case_id: str,
    session: SessionDep,
    _: Annotated[Principal, Depends(require("storefront", "agent", "operator", "customer"))],
) -> CaseView:
    """The case from its record: what the worker last wrote (or the open, until then)."""
    return service.case_view(session, stored_case(session, case_id))


def _exists(engine: Engine, case_id: str) -> None:
    with Session(engine) as session:
        stored_case(session, case_id)


def _ended_or_misfit(engine: Engine, case_id: str, inspection: InspectionData | None) -> bool:
    """Whether the case's record shows it ended (404 if there is no such case); 422 naming
    `data.lines` when an inspection's lines don't fit the lines the case takes back."""
    with Session(engine) as session:
        row = stored_case(session, case_id)
        if row.status in TERMINAL_STATUSES:
            return True
        if inspection is None or not inspection.lines:
            return False
        wrong = mismatch(service.case_view(session, row), inspection)
    if wrong is not None:
        raise validation_problem([{"field": "data.lines", "message": wrong, "type": "value_error"}])
    return False


def _assignee(engine: Engine, case_id: str) -> str | None:
    """The case's assignee as last recorded; 404 if there is no such case."""
    with Session(engine) as session:
        return stored_case(session, case_id).assignee


def _items_taken(engine: Engine, case_id: str) -> Duplicate | None:
    """Another open case that took this (rejected) case's items since, if one did."""
    with Session(engine) as session:
        # The row alone: its type, order and items (no timeline, no delivery log).
        row = stored_case(session, case_id)
        holder = service.claim_holder(
            session,
            type=row.type,
            order_id=row.order_id,
            skus={item["sku"] for item in row.view["items"]},
        )
    if holder is None or holder == case_id:
        return None
    return Duplicate(case_id=holder, order_id=row.order_id, start=None)


def check_supervisor_only(principal: Principal, action: AgentAction) -> None:
    """403 when anyone but a supervisor's own account approves an exception or changes the
    policy's terms: the decision names the supervisor who did (docs/decisions.md)."""
    terms = {name for name in SUPERVISOR_TERMS if getattr(action, name, None) is not None}
    if principal.supervisor or not (action.action in SUPERVISOR_ACTIONS or terms):
        return
    what = (
        "approve an exception"
        if action.action in SUPERVISOR_ACTIONS
        else "change " + (" and ".join(sorted(terms)))
    )
    raise Problem(
        403,
        SUPERVISOR_ONLY,
        f"Only a supervisor can {what}.",
        "Sign in with a supervisor's account, or use a supervisor's personal API token.",
    )


def check_reassign(principal: Principal, action: AgentAction, held_by: str | None) -> None:
    """403 when an agent's own account assigns a case another agent holds: only a
    supervisor reassigns. An agent takes an unassigned case, or hands on their own."""
    if principal.agent is None or principal.supervisor or not isinstance(action, Assign):
        return
    if held_by is not None and held_by != principal.agent.email:
        raise Problem(
            403,
            SUPERVISOR_ONLY,
            "Only a supervisor can reassign a case another agent holds.",
            f"The case is assigned to {held_by}.",
        )


@router.post(
    "/cases/{case_id}/actions",
    response_model=CaseView,
    responses=problems(*AUTHED, *WITH_BODY, 404, 409, 503),
)
async def act(
    case_id: str,
    action: Annotated[AgentAction, Body()],
    engine: EngineDep,
    client: TemporalDep,
    principal: Annotated[Principal, Depends(require("agent"))],
) -> CaseView:
    """An agent action, recorded as the caller's (an `actor` in the body is ignored); 409
    `action-not-allowed` when the case can't take it now, 403 when only a supervisor may."""
    return await take_agent_action(engine, client, principal, case_id, action)


async def take_agent_action(
    engine: Engine, client: Client, principal: Principal, case_id: str, action: AgentAction
) -> CaseView:
    """Send an agent action as the principal's own, and answer with the case it left."""
    check_supervisor_only(principal, action)
    held_by = await run_in_threadpool(_assignee, engine, case_id)
    check_reassign(principal, action, held_by)
    if isinstance(action, ApproveException):
        # A reopened case holds its items again: not while another open case holds them.
        taken = await run_in_threadpool(_items_taken, engine, case_id)
        if taken is not None:
            raise _duplicate_problem(taken)
    action = action.model_copy(update={"actor": principal.actor})
    acted = await temporal_calls.update(client, case_id, temporal_calls.UPDATE_ACTION, action)
    return await as_updated(engine, acted)


def _tracking_taken(number: str) -> Problem:
    return Problem(
        409,
        TRACKING_NUMBER_TAKEN,
        "This tracking number belongs to another open case.",
        "Another open case reported this tracking number; check the number on the receipt.",
        errors=[
            {
                "field": "tracking_number",
                "message": "belongs to another open case",
                "type": "taken",
            }
        ],
    )


def claim_tracking(engine: Engine, *, case_id: str, number: str) -> bool:
    """Hold a tracking number for the case before its action is sent; 409 if another open
    case holds it. True when this call claimed it (so a refusal must give it back)."""
    with Session(engine) as session:
        if set(service.open_cases_for_tracking(session, tracking_number=number)) - {case_id}:
            raise _tracking_taken(number)
        try:
            claimed = service.claim_tracking_number(
                session, tracking_number=number, case_id=case_id
            )
            session.commit()
        except IntegrityError as err:
            # A concurrent report of the same number won: it is that case's now.
            session.rollback()
            holders = service.open_cases_for_tracking(session, tracking_number=number)
            if set(holders) - {case_id}:
                raise _tracking_taken(number) from err
            return False
    return claimed


def release_tracking(engine: Engine, *, case_id: str, number: str) -> None:
    """Give back a tracking number the case did not take."""
    with Session(engine) as session:
        service.release_tracking_number(session, tracking_number=number, case_id=case_id)
        session.commit()


async def take_customer_action(
    engine: Engine, client: Client, case_id: str, action: CustomerAction
) -> CaseView:
    """Send a customer action, recorded as the customer's whatever its body said.

    A reported tracking number is claimed for the case first (409 `tracking-number-taken`
    naming `tracking_number` when another open case holds it), and given back if the case
    refuses the action.
    """
    action = action.model_copy(update={"actor": CUSTOMER})
    claimed: str | None = None
    if isinstance(action, ProvideTracking):
        number = action.tracking_number
        if await run_in_threadpool(claim_tracking, engine, case_id=case_id, number=number):
            claimed = number
    try:
        acted = await temporal_calls.update(
            client, case_id, temporal_calls.UPDATE_CUSTOMER_ACTION, action
        )
    except Problem:
        if claimed is not None:
            await run_in_threadpool(release_tracking, engine, case_id=case_id, number=claimed)
        raise
    return await as_updated(engine, acted)


@router.post(
    "/cases/{case_id}/customer-actions",
    response_model=CaseView,
    responses=problems(*AUTHED, *WITH_BODY, 404, 409, 503),
)
async def customer_act(
    case_id: str,
    action: Annotated[CustomerAction, Body()],
    engine: EngineDep,
    client: TemporalDep,
    _: Annotated[Principal, Depends(require("customer"))],
) -> CaseView:
    """A customer action, with the case's own token; an `actor` in the body is ignored."""
    await run_in_threadpool(_exists, engine, case_id)
    return await take_customer_action(engine, client, case_id, action)


class Accepted(BaseModel):
    accepted: Literal[True] = True
    event_id: str


def case_ended() -> Problem:
    """409: the case has ended and takes no more events."""
    return Problem(409, CASE_ENDED, "The case has ended and takes no more events.")


@router.post(
    "/cases/{case_id}/events",
    status_code=202,
    response_model=Accepted,
    responses=problems(*AUTHED, *WITH_BODY, 404, 409, 503),
)
async def report_event(
    case_id: str,
    event: IntegrationEvent,
    engine: EngineDep,
    client: TemporalDep,
    _: Annotated[Principal, Depends(require("integration"))],
) -> Accepted:
    """An integration event; a repeated `event_id` is accepted and ignored."""
    try:
        data = event.parsed()
    except ValidationError as err:
        raise validation_problem(field_errors(err.errors(), prefix=("data",))) from err
    # A rejected case's workflow still runs while it may take a supervisor's exception, but
    # it takes no events: its record says it ended.
    inspection = data if isinstance(data, InspectionData) else None
    if await run_in_threadpool(_ended_or_misfit, engine, case_id, inspection):
        raise case_ended()
    if not await temporal_calls.signal(client, case_id, temporal_calls.SIGNAL_EVENT, event):
        raise case_ended()
    return Accepted(event_id=event.event_id)
