"""`aftersales demo` against a real `aftersales dev` stack, which then stops and restarts."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

BIN = Path(sys.executable).parent
OPERATOR = {"Authorization": "Bearer dev-operator"}
# Where each of the demo's six stories leaves its case (aftersales/demo.py SCENARIOS).
EXPECTED = Counter(
    {"closed": 1, "inspecting": 1, "resolved": 2, "awaiting_review": 1, "rejected": 1}
)
SUMMARY_LINE = re.compile(r"^[ \t]+(R-[0-9A-Z]{8})[ \t]+([a-z_]+)[ \t]+", re.MULTILINE)


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    """This environment without AFTERSALES_* settings, with the venv's binaries on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSALES_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Ports:
    """The dev stack's three ports."""

    api: int
    temporal: int
    ui: int

    @property
    def api_url(self) -> str:
        """Where the API answers."""
        return f"http://127.0.0.1:{self.api}"


def _log_tail(log: Path, data_dir: Path) -> str:
    parts = [log.read_text(errors="replace")[-3000:]]
    temporal_log = data_dir / "temporal.log"
    if temporal_log.exists():
        parts.append(temporal_log.read_text(errors="replace")[-2000:])
    return "\n---\n".join(parts)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def dev_stack(data_dir: Path, ports: Ports, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run `aftersales dev` until /readyz answers; on leaving, require a clean Ctrl-C exit."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                str(BIN / "aftersales"),
                "dev",
                "--data-dir",
                str(data_dir),
                "--api-port",
                str(ports.api),
                "--temporal-port",
                str(ports.temporal),
                "--ui-port",
                str(ports.ui),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            # Its own process group, so the Temporal server it starts can be found and reaped.
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 45
        while True:
            assert process.poll() is None, f"dev stack exited early:\n{_log_tail(log, data_dir)}"
            try:
                if httpx.get(f"{ports.api_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"not ready in 45 s:\n{_log_tail(log, data_dir)}"
            time.sleep(0.2)
        yield process
        # What Ctrl-C does: uvicorn returns, the worker drains, Temporal is terminated.
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        # uvicorn re-raises the Ctrl-C it handled once it has shut down; typer turns that into
        # 130, the shell's code for "stopped by SIGINT". Either is a clean stop; a crash is not.
        assert code in (0, 130), f"exit {code}:\n{_log_tail(log, data_dir)}"
        assert "Traceback" not in log.read_text(errors="replace"), _log_tail(log, data_dir)
        for _ in range(50):
            if not _group_alive(process.pid):
                break
            time.sleep(0.1)
        assert not _group_alive(process.pid), "a process of the dev stack (Temporal?) outlived it"
    finally:
        if _group_alive(process.pid):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


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


def test_demo_plays_every_story_and_cases_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "dev.log"
    ports = Ports(api=free_port(), temporal=free_port(), ui=free_port())

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

    with dev_stack(data_dir, ports, log):
        assert list_cases(ports.api_url) == left
        # The workflow is still running after the restart: its live query answers.
        view = httpx.get(f"{ports.api_url}/v1/cases/{waiting}", headers=OPERATOR, timeout=10).json()
        assert view["status"] == "awaiting_review"
