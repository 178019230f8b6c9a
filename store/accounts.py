"""Agent accounts: who they are, their passwords and API tokens, console sessions and throttling.

Secrets are never stored: a password as its argon2 hash, an API token and a session cookie as
their SHA-256 (both are long random strings, so a fast hash is enough to make a stolen table
useless). Every function takes a session and commits nothing: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlmodel import Session, col, delete, func, select

from domain.names import AgentRole
from store.tables import Agent, AgentToken, ConsoleSession, LoginFailure, utcnow

# A personal token says what it is, so a leaked one is recognisable (and secret scanners
# can find it); the bearer check also skips the DB for keys without it.
TOKEN_PREFIX = "ast_"
SESSION_HOURS = 12
# Failed sign-ins within the window after which more attempts are refused: per email, slow
# enough to stop guessing one password and loose enough for a person's typos; per client
# address, higher, as a whole office may sign in from one address, but enough to stop one
# machine trying a password on every email.
FAILURES_ALLOWED = 5
FAILURES_PER_ADDRESS = 20
FAILURE_WINDOW = timedelta(minutes=15)
PASSWORD_MIN = 10

_hasher = PasswordHasher()


class AccountError(ValueError):
    """A request about an account that can't be done: the message says why, for a person."""


@dataclass(frozen=True)
class SignedIn:
    """An agent as the API and the console see them after authentication."""

    agent_id: int
    email: str
    name: str
    role: AgentRole
    queues: tuple[str, ...]
    locale: str
    csrf_token: str | None = None  # console sessions only

    @property
    def supervisor(self) -> bool:
        """Whether the agent may take supervisor-only actions."""
        return self.role is AgentRole.SUPERVISOR


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _signed_in(agent: Agent, csrf_token: str | None = None) -> SignedIn:
    if agent.id is None:  # a stored row always has one
        raise AccountError("the agent has no id yet")
    return SignedIn(
        agent_id=agent.id,
        email=agent.email,
        name=agent.name,
        role=AgentRole(agent.role),
        queues=tuple(agent.queues),
        locale=agent.locale,
        csrf_token=csrf_token,
    )


def normal_email(email: str) -> str:
    """The form an email is stored and compared in."""
    return email.strip().lower()


def _check_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"a password needs at least {PASSWORD_MIN} characters")


def get_agent(session: Session, *, email: str) -> Agent | None:
    """The agent with this email, enabled or not."""
    return session.exec(select(Agent).where(Agent.email == normal_email(email))).first()


def list_agents(session: Session) -> list[Agent]:
    """Every agent, by email."""
    return list(session.exec(select(Agent).order_by(col(Agent.email))).all())


def add_agent(
    session: Session,
    *,
    email: str,
    name: str,
    role: AgentRole,
    password: str,
    queues: list[str],
    locale: str,
) -> Agent:
    """A new agent; AccountError if the email is taken or the password too short."""
    if "@" not in email:
        raise AccountError(f"{email!r} is not an email address")
    if get_agent(session, email=email) is not None:
        raise AccountError(f"an agent with email {normal_email(email)} exists")
    _check_password(password)
    now = utcnow()
    agent = Agent(
        email=normal_email(email),
        name=name.strip() or normal_email(email),
        role=role.value,
        queues=list(dict.fromkeys(queues)),
        locale=locale,
        password_hash=_hasher.hash(password),
        created_at=now,
        updated_at=now,
    )
    session.add(agent)
    session.flush()
    return agent


def _existing(session: Session, email: str) -> Agent:
    agent = get_agent(session, email=email)
    if agent is None:
        raise AccountError(f"no agent has email {normal_email(email)}")
    return agent


def disable_agent(session: Session, *, email: str) -> Agent:
    """Disable an agent: their sessions end and their tokens stop working."""
    agent = _existing(session, email)
    agent.disabled = True
    return _changed_ending_sessions(session, agent)


def reset_password(session: Session, *, email: str, password: str) -> Agent:
    """Set a new password; the agent's sessions end (their tokens stay)."""
    agent = _existing(session, email)
    _check_password(password)
    agent.password_hash = _hasher.hash(password)
    return _changed_ending_sessions(session, agent)


def _changed_ending_sessions(session: Session, agent: Agent) -> Agent:
    # Whatever changed about an agent's access ends the sessions signed in before it.
    agent.updated_at = utcnow()
    session.exec(delete(ConsoleSession).where(col(ConsoleSession.agent_id) == agent.id))
    session.add(agent)
    return agent


def add_token(session: Session, *, email: str, name: str) -> str:
    """A new personal API token for the agent; the only time it is shown."""
    agent = _existing(session, email)
    if agent.id is None or agent.disabled:
        raise AccountError(f"{agent.email} is disabled")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        AgentToken(agent_id=agent.id, name=name, token_hash=_sha256(token), created_at=utcnow())
    )
    return token


def revoke_tokens(session: Session, *, email: str, name: str | None = None) -> int:
    """Revoke the agent's tokens (those of one name, or all); how many were revoked."""
    agent = _existing(session, email)
    query = select(AgentToken).where(
        AgentToken.agent_id == agent.id, col(AgentToken.revoked_at).is_(None)
    )
    if name is not None:
        query = query.where(AgentToken.name == name)
    tokens = session.exec(query).all()
    now = utcnow()
    for token in tokens:
        token.revoked_at = now
        session.add(token)
    return len(tokens)


def agent_for_token(session: Session, *, token: str) -> SignedIn | None:
    """The enabled agent a personal API token belongs to, or None."""
    row = session.exec(
        select(Agent)
        .join(AgentToken, col(AgentToken.agent_id) == col(Agent.id))
        .where(
            AgentToken.token_hash == _sha256(token),
            col(AgentToken.revoked_at).is_(None),
            col(Agent.disabled).is_(False),
        )
    ).first()
    return _signed_in(row) if row is not None else None


def throttled(session: Session, *, email: str, address: str, now: datetime) -> bool:
    """Whether sign-ins for this email or from this address are refused for now."""
    since = now - FAILURE_WINDOW
    for column, value, allowed in (
        (LoginFailure.email, normal_email(email), FAILURES_ALLOWED),
        (LoginFailure.address, address, FAILURES_PER_ADDRESS),
    ):
        count = session.exec(
            select(func.count()).where(column == value, col(LoginFailure.at) > since)
        ).one()
        if count >= allowed:
            return True
    return False


def authenticate(
    session: Session, *, email: str, password: str, address: str, now: datetime
) -> SignedIn | None:
    """The agent if the password is theirs and they are enabled; a failure is recorded.

    The caller checks `throttled` first. An unknown email costs a hash too, so the answer's
    time doesn't tell which emails exist.
    """
    agent = get_agent(session, email=email)
    stored = agent.password_hash if agent is not None else _dummy_hash()
    try:
        _hasher.verify(stored, password)
        matched = agent is not None and not agent.disabled
    except (VerificationError, InvalidHashError):
        matched = False
    if not matched or agent is None:
        session.add(LoginFailure(email=normal_email(email), address=address, at=now))
        # Keep the table small: failures older than the window no longer count.
        session.exec(delete(LoginFailure).where(col(LoginFailure.at) < now - FAILURE_WINDOW))
        return None
    if _hasher.check_needs_rehash(agent.password_hash):
        agent.password_hash = _hasher.hash(password)
        session.add(agent)
    return _signed_in(agent)


@cache
def _dummy_hash() -> str:
    # Made on first use: an import (every CLI command, the API's start) shouldn't pay a hash.
    return _hasher.hash(secrets.token_urlsafe(16))


def start_session(session: Session, *, agent_id: int, now: datetime) -> tuple[str, str]:
    """A new console session: the cookie's value and the session's CSRF token."""
    cookie = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        ConsoleSession(
            id=_sha256(cookie),
            agent_id=agent_id,
            csrf_token=csrf,
            created_at=now,
            expires_at=now + timedelta(hours=SESSION_HOURS),
        )
    )
    # Sessions past their time are of no use to anyone: clear them as new ones start.
    session.exec(delete(ConsoleSession).where(col(ConsoleSession.expires_at) < now))
    return cookie, csrf


def agent_for_session(session: Session, *, cookie: str, now: datetime) -> SignedIn | None:
    """The enabled agent of a live console session, with its CSRF token; or None."""
    row = session.exec(
        select(Agent, ConsoleSession)
        .join(ConsoleSession, col(ConsoleSession.agent_id) == col(Agent.id))
        .where(
            ConsoleSession.id == _sha256(cookie),
            col(ConsoleSession.expires_at) > now,
            col(Agent.disabled).is_(False),
        )
    ).first()
    if row is None:
        return None
    agent, console = row
    return _signed_in(agent, console.csrf_token)


def end_session(session: Session, *, cookie: str) -> None:
    """Sign out: the session's cookie no longer works."""
    session.exec(delete(ConsoleSession).where(col(ConsoleSession.id) == _sha256(cookie)))
