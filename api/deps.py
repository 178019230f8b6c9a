"""What routes depend on: settings, a DB session, the Temporal client and the caller's role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from api.errors import FORBIDDEN, UNAUTHORIZED, Problem, validation_problem
from api.guesses import count_failed_guess, refuse_if_guessing
from config.settings import Settings
from domain.policy import Policy
from store import accounts, service
from store.accounts import SignedIn

# The dependencies that only read app.state are `async def`: FastAPI runs a plain `def`
# dependency on its threadpool, and four of them cost each request four trips through it
# (a thread handoff and a GIL round each), more CPU than the look-ups themselves.


# A hot route may read these straight from the request instead (api.cases.open_case):
# FastAPI's resolution of each dependency costs the event loop more than the look-up.


def app_settings(request: Request) -> Settings:
    """The app's settings, from the request."""
    settings: Settings = request.app.state.settings
    return settings


def app_policy(request: Request) -> Policy:
    """The app's policy, from the request."""
    policy: Policy = request.app.state.policy
    return policy


def app_engine(request: Request) -> Engine:
    """The app's engine, from the request."""
    engine: Engine = request.app.state.engine
    return engine


def app_temporal(request: Request) -> Client:
    """The app's Temporal client, from the request."""
    client: Client = request.app.state.temporal
    return client


async def get_settings(request: Request) -> Settings:
    """The app's settings."""
    return app_settings(request)


async def get_policy(request: Request) -> Policy:
    """The policy loaded at start-up; each case copies it at open."""
    return app_policy(request)


async def get_engine(request: Request) -> Engine:
    """The shared engine, for routes that open short sessions of their own.

    A route that calls Temporal takes this, not a session: it does its DB work in a
    session it closes first, so no connection is held while Temporal answers.
    """
    return app_engine(request)


def get_session(request: Request) -> Iterator[Session]:
    """A DB session for one request; only for plain `def` routes that never call Temporal."""
    with Session(app_engine(request), expire_on_commit=False) as session:
        yield session


async def get_temporal(request: Request) -> Client:
    """The shared Temporal client."""
    return app_temporal(request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
SessionDep = Annotated[Session, Depends(get_session)]
EngineDep = Annotated[Engine, Depends(get_engine)]
TemporalDep = Annotated[Client, Depends(get_temporal)]

_bearer = HTTPBearer(auto_error=False)
# The role of a case's own token; customer actions are recorded with it as their actor.
CUSTOMER = "customer"
# The role of an agent's own account (token or console session), supervisors included.
AGENT = "agent"
TOKEN_MAX = 64  # store.tables.Case.token: a longer key is no customer token


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, the name their actions are recorded under, and for a customer
    the one case their token opens, for an agent account the agent."""

    role: str
    actor: str = ""
    case_id: str | None = None
    agent: SignedIn | None = None

    @property
    def supervisor(self) -> bool:
        """Whether the caller is a supervisor's account."""
        return self.agent is not None and self.agent.supervisor


async def get_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    request: Request,
) -> Principal:
    """Resolve the bearer key to a role, or a customer token to its case.

    An API key is a dictionary look-up by its digest, answered on the event loop: as a plain
    function this cost every request a trip through the threadpool. A customer token is looked up
    on the threadpool, in a session of its own closed before the route runs. Settings and
    engine come from the request, not as dependencies: every route checks its caller.
    """
    unauthorized = Problem(
        401,
        UNAUTHORIZED,
        "Authentication required.",
        "Send Authorization: Bearer <key>.",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or not credentials.credentials:
        raise unauthorized
    key = credentials.credentials
    api_key = app_settings(request).api_key_for(key)
    if api_key is not None:
        return Principal(role=api_key.role, actor=api_key.name)
    if key.startswith(accounts.TOKEN_PREFIX):
        agent = await run_in_threadpool(_token_agent, app_engine(request), key)
        if agent is None:
            raise unauthorized
        return Principal(role=AGENT, actor=agent.email, agent=agent)
    # Anything else is a customer token, or a guess at one: a client that has missed too
    # often is refused before the look-up, whatever it sends now.
    refuse_if_guessing(request)
    case_id = None
    if len(key) <= TOKEN_MAX:
        case_id = await run_in_threadpool(_token_case, app_engine(request), key)
    if case_id is None:
        count_failed_guess(request)
        raise unauthorized
    return Principal(role=CUSTOMER, actor=CUSTOMER, case_id=case_id)


def _token_agent(engine: Engine, token: str) -> SignedIn | None:
    with Session(engine) as session:
        return accounts.agent_for_token(session, token=token)


def _token_case(engine: Engine, token: str) -> str | None:
    with Session(engine) as session:
        case = service.case_for_token(session, token=token)
        return case.id if case is not None else None


def require(*roles: str) -> Callable[..., Any]:
    """A dependency admitting only these roles (a customer only to its own case)."""

    async def check(
        principal: Annotated[Principal, Depends(get_principal)], request: Request
    ) -> Principal:
        if principal.role not in roles:
            raise Problem(
                403,
                FORBIDDEN,
                "This key's role can't do that.",
                f"Needs one of: {', '.join(roles)}.",
            )
        case_id = request.path_params.get("case_id")
        if principal.role == CUSTOMER and case_id != principal.case_id:
            raise Problem(403, FORBIDDEN, "This token opens another case.")
        # Checked here, once the caller is known, for every route that takes input.
        await reject_unstorable_input(request)
        return principal

    return check


# Deep enough for any real order, item or event data a client sends along (extra fields
# are kept), and far below the 200 levels at which pydantic's JSON parser gives up: the
# worker decodes a case's input with it, so a deeper body would open a case that can't run.
MAX_JSON_DEPTH = 32


async def reject_unstorable_input(request: Request) -> None:
    """422 for input the API would accept but the database or the worker can't take.

    A NUL character in a query parameter or JSON string: PostgreSQL can't store NUL in
    text, so it failed the query with a 500, or the worker's write of the case, forever,
    leaving the case stuck. A JSON body nested deeper than MAX_JSON_DEPTH: the workflow
    could not decode its input or signal, and the case never ran.
    """
    errors = [
        _nul_error(name)
        for name, value in request.query_params.multi_items()
        if "\x00" in name or "\x00" in value
    ]
    if not _plainly_storable(await request.body()):  # read and cached by the route's body
        try:
            body = await request.json()  # parsed and cached already too
        except (ValueError, RecursionError):
            body = None  # no JSON body (FastAPI has refused a broken one before this runs)
        errors += _body_errors(body)
    if errors:
        raise validation_problem(errors)


def _plainly_storable(raw: bytes) -> bool:
    """Whether the raw body can hold no NUL and no nesting past MAX_JSON_DEPTH, so the walk
    over its parsed values (a tenth of a millisecond of the event loop per open) can't find
    anything.

    In UTF-8 JSON a NUL can only be written as the escape `\\u0000` (a raw one is refused by
    the parser); a body with a zero byte may be UTF-16 or UTF-32, and is walked. Nesting
    past the limit takes more brackets than the limit, whether or not some sit in strings.
    """
    return (
        b"\x00" not in raw
        and b"\\u0000" not in raw
        and raw.count(b"{") + raw.count(b"[") <= MAX_JSON_DEPTH
    )


def _nul_error(field: str) -> dict[str, Any]:
    return {"field": field, "message": "must not contain NUL characters", "type": "string_nul"}


def _body_errors(body: Any) -> list[dict[str, Any]]:
    # Iterative: a body may nest as deep as the JSON parser allows, deeper than recursion.
    nul: set[str] = set()
    deep: set[str] = set()
    stack: list[tuple[Any, tuple[str, ...]]] = [(body, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                nul.add(".".join(path) or "body")
        elif isinstance(value, dict | list) and len(path) >= MAX_JSON_DEPTH:
            # Named by where the nesting starts: the path minus its trailing list indexes.
            named = list(path)
            while named and named[-1].isdigit():
                named.pop()
            deep.add(".".join(named) or "body")
        elif isinstance(value, dict):
            for key, item in value.items():
                stack += [(key, (*path, str(key))), (item, (*path, str(key)))]
        elif isinstance(value, list):
            stack += [(item, (*path, str(index))) for index, item in enumerate(value)]
    return [_nul_error(field) for field in sorted(nul)] + [
        {
            "field": field,
            "message": f"nested deeper than {MAX_JSON_DEPTH} levels",
            "type": "too_deep",
        }
        for field in sorted(deep)
    ]
