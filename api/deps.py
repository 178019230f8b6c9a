"""What routes depend on: settings, a DB session, the Temporal client and the caller's role."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from aftersales.settings import Settings
from api.errors import Problem
from domain.policy import Policy
from store import service


def get_settings(request: Request) -> Settings:
    """The app's settings."""
    settings: Settings = request.app.state.settings
    return settings


def get_policy(request: Request) -> Policy:
    """The policy loaded at start-up; each case copies it at open."""
    policy: Policy = request.app.state.policy
    return policy


def get_session(request: Request) -> Iterator[Session]:
    """A DB session for one request."""
    engine: Engine = request.app.state.engine
    with Session(engine, expire_on_commit=False) as session:
        yield session


def get_temporal(request: Request) -> Client:
    """The shared Temporal client."""
    client: Client = request.app.state.temporal
    return client


SettingsDep = Annotated[Settings, Depends(get_settings)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
SessionDep = Annotated[Session, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]

_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Principal:
    """Who is calling: a role, and for a customer the one case their token opens."""

    role: str
    case_id: str | None = None


def get_principal(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    settings: SettingsDep,
    session: SessionDep,
) -> Principal:
    """Resolve the bearer key to a role, or a customer token to its case."""
    unauthorized = Problem(
        401, "unauthorized", "Authentication required.", "Send Authorization: Bearer <key>.",
        headers={"WWW-Authenticate": "Bearer"},
    )
    if credentials is None or not credentials.credentials:
        raise unauthorized
    key = credentials.credentials
    role = settings.keys_by_token().get(key)
    if role:
        return Principal(role=role)
    case = service.case_for_token(session, token=key) if len(key) <= 64 else None
    if case is None:
        raise unauthorized
    return Principal(role="customer", case_id=case.id)


def require(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting only these roles (a customer only to its own case)."""

    def check(
        principal: Annotated[Principal, Depends(get_principal)], request: Request
    ) -> Principal:
        if principal.role not in roles:
            raise Problem(403, "forbidden", "This key's role can't do that.", f"Needs one of: {', '.join(roles)}.")
        case_id = request.path_params.get("case_id")
        if principal.role == "customer" and case_id != principal.case_id:
            raise Problem(403, "forbidden", "This token opens another case.")
        return principal

    return check
