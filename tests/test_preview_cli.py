"""`aftersales notifications preview`: a message rendered for a sample case, in any locale."""

from __future__ import annotations

import re
from pathlib import Path

from typer.testing import CliRunner

from aftersales.cli import app

CJK = re.compile(r"[\u4e00-\u9fff]")
runner = CliRunner()


def test_preview_renders_english_subject_and_text() -> None:
    result = runner.invoke(app, ["notifications", "preview", "case_approved"])
    assert result.exit_code == 0, result.output
    first, _, body = result.output.partition("\n")
    assert first.startswith("Subject: ") and "R-7Q2K9MXA" in first
    assert "SO-1001" in body
    assert not CJK.search(result.output)
    assert "<html" not in result.output


def test_preview_renders_zh_tw_for_a_case_type() -> None:
    result = runner.invoke(
        app,
        ["notifications", "preview", "repair_quote", "--locale", "zh-TW", "--case-type", "repair"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Subject: ")
    assert "P-3M7R5TXC" in result.output  # the sample repair, not the return
    assert CJK.search(result.output)


def test_preview_writes_html(tmp_path: Path) -> None:
    out = tmp_path / "approved.html"
    result = runner.invoke(
        app, ["notifications", "preview", "case_approved", "--locale", "zh-TW", "--html", str(out)]
    )
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert 'lang="zh-Hant-TW"' in html
    assert CJK.search(html)


def test_unknown_message_exits_2() -> None:
    result = runner.invoke(app, ["notifications", "preview", "no_such_message"])
    assert result.exit_code == 2
    assert "no_such_message" in result.output and "case_approved" in result.output


def test_unknown_locale_and_case_type_exit_2() -> None:
    result = runner.invoke(app, ["notifications", "preview", "case_approved", "--locale", "fr"])
    assert result.exit_code == 2
    assert "fr" in result.output and "zh-TW" in result.output
    result = runner.invoke(
        app, ["notifications", "preview", "case_approved", "--case-type", "gift"]
    )
    assert result.exit_code == 2
    assert "gift" in result.output
