"""docs/console.md shows the console's screens: every picture it names is in docs/console/
(tests/test_console_browser.py takes them; `make screenshots` refreshes them)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).parents[1] / "docs"


def test_every_screenshot_docs_console_md_shows_exists() -> None:
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (DOCS / "console.md").read_text())
    assert {"console/exception.png", "console/simulator.png", "console/credit.png"} <= set(shown)
    assert [name for name in shown if not (DOCS / name).is_file()] == []
