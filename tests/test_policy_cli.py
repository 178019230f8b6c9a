"""`aftersales policy simulate`: the table, the JSON (the store's report), and a bad candidate,
on a real SQLite file holding the seeded history of tests/support/simulation_cases.py (its
figures are worked out by hand in tests/api/test_policy_simulator.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aftersales.cli import app
from domain.policy import Policy, ReturnsPolicy
from store.db import make_engine, migrate
from store.simulation import simulate_period
from tests.support.simulation_cases import seed

JUNE = datetime(2022, 6, 1, tzinfo=UTC)
PERIOD = ["--since", "2022-06-01", "--until", "2022-06-30"]


@pytest.fixture
def history(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("AFTERSALES_DATABASE_URL", url)
    engine = make_engine(url)
    migrate(engine)
    ids = seed(engine, start=JUNE)
    engine.dispose()
    return ids


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["policy", "simulate", *args])
    return result.exit_code, result.stdout, result.stderr


def test_the_table_and_the_json_show_the_candidates_differences(
    history: dict[str, str], tmp_path: Path
) -> None:
    candidate = tmp_path / "candidate.toml"
    candidate.write_text("[returns]\nwindow_days = 3\n", encoding="utf-8")

    code, out, err = _run(str(candidate), *PERIOD)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith(
        "9 cases opened 2022-06-01 00:00 to 2022-07-01 00:00 UTC (left out: child_case 1)"
    )
    rows = {line.split("  ")[0]: line.split() for line in lines if line[:1].isalpha()}
    # (a) of tests/api/test_policy_simulator.py: A and D fall out of a 3-day window.
    assert rows["Rejected"][-3:] == ["1", "3", "+2"]
    assert rows["Auto-approval rate"][-4:] == ["22.2%", "11.1%", "-11.1", "pt"]
    assert rows["Agent hours"][-3:] == ["1.50", "1.25", "-0.25"]
    assert rows["Refunds"][1:] == ["TWD", "1,870.00", "TWD", "870.00", "TWD", "-1,000.00"]
    assert "Cases whose decision flips: 2" in out
    assert f"{history['A']}  return  changed_mind  apparel" in out
    assert (
        "after   outside_return_window: Delivered 5 days ago; returns are accepted for only 3"
        in out
    )

    code, out, err = _run(str(candidate), *PERIOD, "--json", "--minutes-per-review", "30")
    assert code == 0, err
    engine = make_engine(f"sqlite:///{tmp_path / 'history.db'}")
    with engine.connect() as conn:
        direct = simulate_period(
            conn, Policy(returns=ReturnsPolicy(window_days=3)), start=JUNE,
            end=datetime(2022, 7, 1, tzinfo=UTC), minutes_per_review=30, flips_listed=10,
        )  # fmt: skip
    engine.dispose()
    assert json.loads(out) == direct.model_dump(mode="json")


def test_a_bad_candidate_or_period_exits_2_naming_it(
    history: dict[str, str], tmp_path: Path
) -> None:
    candidate = tmp_path / "candidate.toml"
    candidate.write_text("[returns]\nauto_approve_max_value = -5\n", encoding="utf-8")
    code, out, err = _run(str(candidate), *PERIOD)
    assert code == 2 and out == ""
    assert f"{candidate}: returns.auto_approve_max_value:" in err

    code, _, err = _run(str(tmp_path / "missing.toml"), *PERIOD)
    assert code == 2 and "cannot read" in err

    candidate.write_text("[returns]\nwindow_days = 3\n", encoding="utf-8")
    code, _, err = _run(str(candidate), "--since", "last spring")
    assert code == 2 and "--since" in err
