"""`aftersales dev` as real processes: it stops under load, and nothing outlives a killed one."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support.console import signed_in_client
from tests.support.dev_stack import (
    BIN,
    STOP_BUDGET,
    Ports,
    alive,
    clean_env,
    dev_stack,
    free_port,
    gone_by,
    kill_all,
    log_tail,
    start_dev,
)
from tests.support.factory import request_body

STOREFRONT = {"Authorization": "Bearer dev-storefront"}
BURST = 50


async def _burst(api_url: str, client: httpx.AsyncClient) -> list[asyncio.Task[httpx.Response]]:
    now = datetime.now(UTC)
    return [
        asyncio.create_task(
            client.post(f"{api_url}/v1/cases", json=request_body(now=now), headers=STOREFRONT)
        )
        for _ in range(BURST)
    ]


@pytest.mark.long
async def test_sigterm_under_a_burst_of_opens_stops_every_process(tmp_path: Path) -> None:
    data_dir, log, ports = tmp_path / "data", tmp_path / "dev.log", Ports.free()
    dev = start_dev(data_dir, ports, log)
    try:
        # API, worker and Temporal are processes of their own, so a busy API can't starve the
        # worker's event loop, or the reverse.
        assert len(dev.children) == 3, dev.children
        assert len({dev.child(" api "), dev.child(" worker "), dev.child("start-dev")}) == 3
        limits = httpx.Limits(max_connections=BURST)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            tasks = await _burst(ports.api_url, client)
            # Let the burst reach the API (its first answer, or a second at most), not finish.
            await asyncio.wait(tasks, timeout=1.0, return_when=asyncio.FIRST_COMPLETED)
            in_flight = sum(not t.done() for t in tasks)
            dev.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_BUDGET
            # Off the loop: the requests still in flight have to see the server go away.
            code = await asyncio.to_thread(dev.process.wait, STOP_BUDGET)
            left = await asyncio.to_thread(gone_by, dev.pids, ports, deadline)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert in_flight > 0, "the burst was over before SIGTERM; nothing was under load"
        assert code == 0, f"exit {code} ({in_flight} opens in flight):\n{log_tail(log, data_dir)}"
        assert not left, f"still there {STOP_BUDGET} s after SIGTERM: {left}\n{dev.children}"
    finally:
        kill_all(dev.pids)
        if dev.process.poll() is None:
            dev.process.wait(timeout=10)


@pytest.mark.long
def test_a_killed_stack_takes_its_children_along_and_starts_again(tmp_path: Path) -> None:
    data_dir, log, ports = tmp_path / "data", tmp_path / "dev.log", Ports.free()
    dev = start_dev(data_dir, ports, log)
    try:
        temporal = dev.child("start-dev")
        # No chance to clean up: only the kernel can tell the children.
        dev.process.kill()
        dev.process.wait(timeout=10)
        left = gone_by(list(dev.children), ports, time.monotonic() + STOP_BUDGET)
        assert not left, f"outlived a SIGKILLed dev stack: {left}\n{dev.children}"
        assert not alive(temporal)
    finally:
        kill_all(dev.pids)

    # The ports are free, so the next start works, on the same data.
    with dev_stack(data_dir, ports, log):
        assert httpx.get(f"{ports.api_url}/readyz", timeout=5).status_code == 200
        _the_printed_console_login_signs_in(log, ports)
        # (Reusing this stack's Temporal saves a third start-up in this file.)
        _status_tokens_never_reach_the_access_log(tmp_path, data_dir, ports)


def _the_printed_console_login_signs_in(log: Path, ports: Ports) -> None:
    """The banner names the console and a login; that login opens the console."""
    deadline = time.monotonic() + 10
    # The banner follows the API's readiness by a moment.
    while not (lines := [x for x in log.read_text().splitlines() if "  Console  " in x]):
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)
    line = lines[-1]
    found = re.search(r"(http://\S+/console)\s+sign in as (\S+) / (\S+)", line)
    assert found, line
    url, email, password = found.groups()
    with signed_in_client(url, email, password) as browser:
        queue = browser.get(url)
        assert queue.status_code == 200 and "Cases waiting on an agent" in queue.text


def _status_tokens_never_reach_the_access_log(tmp_path: Path, data_dir: Path, ports: Ports) -> None:
    """A real case's status page, served by a standalone `aftersales api`, logged redacted."""
    opened = httpx.post(
        f"{ports.api_url}/v1/cases",
        json=request_body(now=datetime.now(UTC)),
        headers=STOREFRONT,
        timeout=30,
    )
    assert opened.status_code == 201, opened.text
    token = opened.json()["status_url"].rsplit("/", 1)[1]
    assert len(token) >= 16

    # The standalone API, as deployed: its access log is on.
    api_port, api_log = free_port(), tmp_path / "api.log"
    env = {
        **clean_env(),
        "AFTERSALES_TEMPORAL_ADDRESS": f"127.0.0.1:{ports.temporal}",
        "AFTERSALES_DATABASE_URL": f"sqlite:///{data_dir / 'aftersales.db'}",
        # The dev stack's database and keys: a dev API, not a deployed one.
        "AFTERSALES_DEV_MODE": "true",
    }
    with api_log.open("ab") as out:
        api = subprocess.Popen(
            [str(BIN / "aftersales"), "api", "--port", str(api_port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        base = f"http://127.0.0.1:{api_port}"
        deadline = time.monotonic() + 60
        while True:
            assert api.poll() is None, api_log.read_text()
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, api_log.read_text()
            time.sleep(0.2)
        page = httpx.get(f"{base}/status/{token}", timeout=10)
        assert page.status_code == 200
        assert httpx.get(f"{base}/status/{token}?lang=en", timeout=10).status_code == 200
        posted = httpx.post(f"{base}/status/{token}/actions", data={}, timeout=10)
        assert posted.status_code < 500
    finally:
        api.send_signal(signal.SIGTERM)
        try:
            api.wait(timeout=STOP_BUDGET)
        finally:
            kill_all([api.pid])

    written = api_log.read_text(errors="replace")
    assert token not in written
    assert '"GET /status/<redacted> HTTP/1.1" 200' in written, written
    assert '"GET /status/<redacted>?lang=en HTTP/1.1" 200' in written, written
    assert '"POST /status/<redacted>/actions HTTP/1.1"' in written, written
    # Other paths are logged as they are.
    assert '"GET /readyz HTTP/1.1" 200' in written, written
