"""`aftersales demo` against a real `aftersales dev` stack, which then stops and restarts."""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from aftersales.dev import DEV_AGENT_EMAIL, DEV_AGENT_PASSWORD
from tests.support.console import signed_in_client
from tests.support.dev_stack import BIN, Ports, clean_env, dev_stack

OPERATOR = {"Authorization": "Bearer dev-operator"}
# Where each of the demo's six stories leaves its case (aftersales/demo.py SCENARIOS).
EXPECTED = Counter(
    {"closed": 1, "inspecting": 1, "resolved": 2, "awaiting_review": 1, "rejected": 1}
)
SUMMARY_LINE = re.compile(r"^[ \t]+(R-[0-9A-Z]{8})[ \t]+([a-z_]+)[ \t]+", re.MULTILINE)


def list_cases(api_url: str) -> dict[str, str]:
    """Every case the records hold, as ID → status."""
    response = httpx.get(f"{api_url}/v1/cases", params={"limit": 200}, headers=OPERATOR, timeout=10)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["next_cursor"] is None
    return {case["id"]: case["status"] for case in body["items"]}


def listed_eventually(api_url: str, expected: dict[str, str]) -> dict[str, str]:
    """The list once it shows the expected statuses (the projection may trail the live query)."""
    deadline = time.monotonic() + 10
    while True:
        listed = list_cases(api_url)
        if listed == expected or time.monotonic() > deadline:
            return listed
        time.sleep(0.2)


@pytest.mark.long
def test_demo_plays_every_story_and_cases_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "dev.log"
    ports = Ports.free()

    with dev_stack(data_dir, ports, log):
        demo = subprocess.run(
            [str(BIN / "aftersales"), "demo", "--api-url", ports.api_url],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=90,
        )
        assert demo.returncode == 0, demo.stdout + demo.stderr
        left = dict(SUMMARY_LINE.findall(demo.stdout))
        assert Counter(left.values()) == EXPECTED, demo.stdout
        assert "Temporal UI" in demo.stdout

        listed = listed_eventually(ports.api_url, left)
        assert listed == left

        # Mid-flight cases show their live state and the deadline they wait on.
        waiting = next(case_id for case_id, status in left.items() if status == "awaiting_review")
        view = httpx.get(f"{ports.api_url}/v1/cases/{waiting}", headers=OPERATOR, timeout=10).json()
        assert [d["name"] for d in view["deadlines"]] == ["review"]
        # It waits in the console's queue, for the dev stack's agent.
        console = f"{ports.api_url}/console"
        with signed_in_client(console, DEV_AGENT_EMAIL, DEV_AGENT_PASSWORD) as browser:
            assert f'id="row-{waiting}"' in browser.get(console, params={"q": waiting}).text

    with dev_stack(data_dir, ports, log):
        assert list_cases(ports.api_url) == left
        # The workflow is still running after the restart: its live query answers.
        view = httpx.get(f"{ports.api_url}/v1/cases/{waiting}", headers=OPERATOR, timeout=10).json()
        assert view["status"] == "awaiting_review"
