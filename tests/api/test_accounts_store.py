"""Agent accounts in the store, on both databases: passwords, throttling, sessions, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from domain.names import AgentRole
from store import accounts
from store.db import migrate
from store.tables import Agent
from tests.api.test_tracking_migration import engine  # noqa: F401  (fixture)

PASSWORD = "correct horse battery"
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(engine: Engine) -> Engine:  # noqa: F811
    migrate(engine)
    with Session(engine) as session:
        accounts.add_agent(
            session,
            email="Ann@Shop.example",
            name="Ann",
            role=AgentRole.SUPERVISOR,
            password=PASSWORD,
            queues=["returns", "returns", "quality"],
            locale="zh-TW",
        )
        session.commit()
    return engine


def _login(db: Engine, password: str, *, address: str = "10.0.0.1", at: datetime = NOW) -> object:
    with Session(db) as session:
        if accounts.throttled(session, email="ann@shop.example", address=address, now=at):
            return "throttled"
        agent = accounts.authenticate(
            session, email=" ANN@shop.example ", password=password, address=address, now=at
        )
        session.commit()
        return agent


def test_the_password_is_stored_hashed_and_signs_in(db: Engine) -> None:
    with Session(db) as session:
        stored = session.exec(select(Agent)).one()
    assert stored.email == "ann@shop.example" and stored.queues == ["returns", "quality"]
    assert PASSWORD not in stored.password_hash and stored.password_hash.startswith("$argon2")
    agent = _login(db, PASSWORD)
    assert isinstance(agent, accounts.SignedIn)
    assert (agent.email, agent.role, agent.locale) == ("ann@shop.example", "supervisor", "zh-TW")
    assert agent.supervisor
    assert _login(db, "wrong password!") is None


def test_failed_sign_ins_are_throttled_by_email_and_by_address(db: Engine) -> None:
    for attempt in range(accounts.FAILURES_ALLOWED):
        assert _login(db, f"guess {attempt}", at=NOW + timedelta(seconds=attempt)) is None
    # The right password no longer helps, from any address, until the window has passed.
    assert _login(db, PASSWORD, address="10.0.0.2") == "throttled"
    later = NOW + accounts.FAILURE_WINDOW + timedelta(minutes=1)
    assert isinstance(_login(db, PASSWORD, at=later), accounts.SignedIn)
    # One address guessing at many emails is stopped too.
    with Session(db) as session:
        for n in range(accounts.FAILURES_PER_ADDRESS):
            accounts.authenticate(
                session, email=f"x{n}@shop.example", password="nope", address="10.9.9.9", now=later
            )
        session.commit()
        assert accounts.throttled(session, email="ann@shop.example", address="10.9.9.9", now=later)
        assert not accounts.throttled(
            session, email="ann@shop.example", address="10.0.0.3", now=later
        )


def test_a_session_lives_until_logout_expiry_disable_or_password_reset(db: Engine) -> None:
    with Session(db) as session:
        agent = accounts.get_agent(session, email="ann@shop.example")
        assert agent is not None and agent.id is not None
        cookie, csrf = accounts.start_session(session, agent_id=agent.id, now=NOW)
        other, _ = accounts.start_session(session, agent_id=agent.id, now=NOW)
        session.commit()
        live = accounts.agent_for_session(session, cookie=cookie, now=NOW)
        assert live is not None and live.csrf_token == csrf
        expired = NOW + timedelta(hours=accounts.SESSION_HOURS, seconds=1)
        assert accounts.agent_for_session(session, cookie=cookie, now=expired) is None
        accounts.end_session(session, cookie=cookie)
        session.commit()
        assert accounts.agent_for_session(session, cookie=cookie, now=NOW) is None
        assert accounts.agent_for_session(session, cookie=other, now=NOW) is not None
        accounts.reset_password(session, email="ann@shop.example", password="a new passphrase")
        session.commit()
        assert accounts.agent_for_session(session, cookie=other, now=NOW) is None


def test_tokens_stop_with_revocation_or_a_disabled_agent(db: Engine) -> None:
    with Session(db) as session:
        token = accounts.add_token(session, email="ann@shop.example", name="helpdesk")
        second = accounts.add_token(session, email="ann@shop.example", name="scripts")
        session.commit()
        assert token.startswith(accounts.TOKEN_PREFIX)
        found = accounts.agent_for_token(session, token=token)
        assert found is not None and found.email == "ann@shop.example"
        assert accounts.revoke_tokens(session, email="ann@shop.example", name="helpdesk") == 1
        session.commit()
        assert accounts.agent_for_token(session, token=token) is None
        assert accounts.agent_for_token(session, token=second) is not None
        accounts.disable_agent(session, email="ann@shop.example")
        session.commit()
        assert accounts.agent_for_token(session, token=second) is None
        with pytest.raises(accounts.AccountError, match="disabled"):
            accounts.add_token(session, email="ann@shop.example", name="again")


def test_bad_accounts_are_refused_with_a_reason(db: Engine) -> None:
    with Session(db) as session:
        for email, password, reason in (
            ("ann@shop.example", PASSWORD, "exists"),
            ("bob@shop.example", "short", "at least"),
            ("not-an-email", PASSWORD, "not an email"),
        ):
            with pytest.raises(accounts.AccountError, match=reason):
                accounts.add_agent(
                    session,
                    email=email,
                    name="",
                    role=AgentRole.AGENT,
                    password=password,
                    queues=[],
                    locale="en",
                )
