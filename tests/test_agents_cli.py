"""`aftersales agents`: add, list, tokens, password reset and disable, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from aftersales.cli import app
from store import accounts
from store.db import make_engine


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'agents.db'}"
    monkeypatch.setenv("AFTERSALES_DATABASE_URL", url)
    return url


def _run(*args: str, password: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["agents", *args], input=password)
    return result.exit_code, result.output


def test_an_agent_is_added_listed_given_a_token_and_disabled(database: str) -> None:
    code, out = _run(
        "add", "Mei@Shop.example", "--name", "Mei", "--role", "supervisor",
        "--queue", "complaints", "--locale", "zh-TW", "--password-stdin",
        password="a fine passphrase\n",
    )  # fmt: skip
    assert code == 0, out
    assert "added mei@shop.example (supervisor, queues: complaints)" in out
    code, out = _run("list")
    assert out.split("\n")[0].split("\t") == [
        "mei@shop.example", "Mei", "supervisor", "complaints", "zh-TW", "active"
    ]  # fmt: skip
    code, token = _run("token", "mei@shop.example", "--name", "helpdesk")
    assert code == 0 and token.strip().startswith(accounts.TOKEN_PREFIX)
    engine = make_engine(database)
    with Session(engine) as session:
        assert accounts.agent_for_token(session, token=token.strip()) is not None
    assert _run("reset-password", "mei@shop.example", "--password-stdin",
                password="another passphrase\n")[0] == 0  # fmt: skip
    assert _run("disable", "mei@shop.example")[0] == 0
    with Session(engine) as session:
        assert accounts.agent_for_token(session, token=token.strip()) is None
    assert _run("list")[1].rstrip().endswith("disabled")
    engine.dispose()


def test_mistakes_exit_non_zero_with_the_reason(database: str) -> None:
    code, out = _run("add", "lee@shop.example", "--password-stdin", password="short\n")
    assert code == 1 and "at least" in out
    code, out = _run("disable", "nobody@shop.example")
    assert code == 1 and "no agent has email nobody@shop.example" in out
    code, out = _run("add", "lee@shop.example", "--role", "boss", "--password-stdin",
                     password="a fine passphrase\n")  # fmt: skip
    assert code == 2 and "boss" in out
