"""`aftersales agents`: the team's accounts, managed from the shell of the service's host."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlmodel import Session

from config.settings import Settings
from domain.models import Locale
from domain.names import AgentRole
from store import accounts
from store.db import make_engine, migrate

agents_app = typer.Typer(help="Agent accounts: add, list, disable, reset passwords, API tokens.")

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the password from the first line of stdin (for scripts), not a prompt",
    ),
]


@contextmanager
def _session() -> Iterator[Session]:
    """A session on the configured database, migrated first; commits if the block succeeds."""
    engine = make_engine(Settings().database_url)
    try:
        migrate(engine)
        with Session(engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except accounts.AccountError as err:
                session.rollback()
                typer.echo(f"error: {err}", err=True)
                raise typer.Exit(1) from err
    finally:
        engine.dispose()


def _password(from_stdin: bool) -> str:
    # Never an argument: argv shows in `ps` and in shell history.
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@agents_app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The agent's email: their sign-in and identity")],
    name: Annotated[str, typer.Option(help="The name colleagues know them by")] = "",
    role: Annotated[AgentRole, typer.Option(help="agent or supervisor")] = AgentRole.AGENT,
    queue: Annotated[
        list[str] | None, typer.Option(help="A queue they work (repeat for several)")
    ] = None,
    locale: Annotated[Locale, typer.Option(help="The console's language for them")] = Locale.EN,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add an agent; asks for their first password."""
    password = _password(password_stdin)
    with _session() as session:
        agent = accounts.add_agent(
            session,
            email=email,
            name=name,
            role=role,
            password=password,
            queues=queue or ["customer_service"],
            locale=locale.value,
        )
        typer.echo(f"added {agent.email} ({agent.role}, queues: {', '.join(agent.queues)})")


@agents_app.command("list")
def list_() -> None:
    """List every agent: email, name, role, queues, language, and whether disabled."""
    with _session() as session:
        for agent in accounts.list_agents(session):
            state = "disabled" if agent.disabled else "active"
            typer.echo(
                f"{agent.email}\t{agent.name}\t{agent.role}\t{','.join(agent.queues)}\t"
                f"{agent.locale}\t{state}"
            )


@agents_app.command("disable")
def disable(email: Annotated[str, typer.Argument(help="The agent's email")]) -> None:
    """Disable an agent: their sessions end at once and their API tokens stop working."""
    with _session() as session:
        agent = accounts.disable_agent(session, email=email)
        typer.echo(f"disabled {agent.email}")


@agents_app.command("reset-password")
def reset_password(
    email: Annotated[str, typer.Argument(help="The agent's email")],
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a new password for an agent; their console sessions end."""
    password = _password(password_stdin)
    with _session() as session:
        agent = accounts.reset_password(session, email=email, password=password)
        typer.echo(f"password reset for {agent.email}")


@agents_app.command("token")
def token(
    email: Annotated[str, typer.Argument(help="The agent's email")],
    name: Annotated[str, typer.Option(help="What the token is for, e.g. helpdesk")] = "api",
) -> None:
    """Create a personal API token for an agent; it is shown this once."""
    with _session() as session:
        secret = accounts.add_token(session, email=email, name=name)
    typer.echo(secret)


@agents_app.command("revoke-tokens")
def revoke_tokens(
    email: Annotated[str, typer.Argument(help="The agent's email")],
    name: Annotated[str | None, typer.Option(help="Only the tokens of this name")] = None,
) -> None:
    """Revoke an agent's API tokens (all of them, or those of one name)."""
    with _session() as session:
        count = accounts.revoke_tokens(session, email=email, name=name)
        typer.echo(f"revoked {count} token(s) of {accounts.normal_email(email)}")
