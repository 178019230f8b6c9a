"""An operator finds a case in the real Temporal UI by its search attributes (DESIGN 9).

Headless Chromium (Debian's `chromium`, driven by Playwright) against the UI the dev server
serves; `.ci/run` installs Chromium when the machine has none.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright, expect
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.connectors import connectors_from_settings
from aftersales.binaries import find
from aftersales.temporal import search_attribute_keys
from aftersales.worker import build_worker
from domain.models import CaseView
from domain.opening import details, summary
from store.db import make_engine, migrate
from tests.conftest import stack_settings
from tests.support.factory import case_input
from tests.support.http_peers import Peers
from tests.support.mail import MailSink
from tests.support.ports import free_port
from workflows.registry import workflow_for

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UI_TIMEOUT_MS = 20_000


@pytest.fixture(scope="module")
async def ui_server() -> AsyncIterator[tuple[WorkflowEnvironment, int]]:
    """A dev server of its own with the Temporal UI on, and the UI's port."""
    port = free_port()
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=search_attribute_keys(),
        ui=True,
        ui_port=port,
        port=free_port(),
    )
    yield env, port
    await env.shutdown()


async def _status(env: WorkflowEnvironment, case_id: str, status: str) -> None:
    """Wait until the case's state shows `status`."""
    handle = env.client.get_workflow_handle(case_id)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while (await handle.query("state", result_type=CaseView)).status.value != status:
        assert loop.time() < deadline, f"{case_id} never reached {status}"
        await asyncio.sleep(0.1)


async def _find_in_ui(page: Page, ui: str, case_id: str, status: str, text: str) -> None:
    """Filter the workflow list by status, open the case, and see its summary."""
    query = quote(f'CaseStatus="{status}"')
    await page.goto(f"{ui}/namespaces/default/workflows?query={query}")
    row = page.get_by_role("link", name=case_id)
    # Visibility trails the workflow a little: reload until the row shows.
    for _ in range(10):
        try:
            await expect(row.first).to_be_visible(timeout=3_000)
            break
        except AssertionError:
            await page.reload()
    await expect(row.first).to_be_visible(timeout=UI_TIMEOUT_MS)
    await row.first.click()
    await page.wait_for_url(f"**/workflows/{case_id}/**", timeout=UI_TIMEOUT_MS)
    # UI 2.54 shows the static summary and details under the workflow's User Metadata tab.
    await page.get_by_text("User Metadata", exact=True).first.click()
    await _until_shown(page, text)


async def _until_shown(page: Page, text: str) -> None:
    """Wait until some frame of the page shows `text` (the UI renders summaries in iframes)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + UI_TIMEOUT_MS / 1000
    while True:
        for frame in page.frames:
            with contextlib.suppress(PlaywrightError):
                if await frame.get_by_text(text).first.is_visible():
                    return
        assert loop.time() < deadline, f"the page never showed {text!r}"
        await asyncio.sleep(0.2)


@pytest.mark.long
async def test_case_is_found_and_opened_in_the_temporal_ui(
    ui_server: tuple[WorkflowEnvironment, int],
    http_peers: Peers,
    mail: MailSink,
    tmp_path: Path,
) -> None:
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}; this test drives the Temporal UI with it. "
            "Install it (Debian: apt-get install chromium; .ci/run does this).",
            pytrace=False,
        )
    env, ui_port = ui_server
    settings = stack_settings(tmp_path, http_peers, mail, task_queue="aftersales-ui")
    engine = make_engine(settings.database_url)
    migrate(engine)
    connectors = connectors_from_settings(settings)
    case = case_input(now=datetime.now(UTC))
    text = summary(case.case_id, case.request, case.decision)
    try:
        with ThreadPoolExecutor(max_workers=4) as executor:
            worker = build_worker(
                env.client,
                settings=settings,
                engine=engine,
                connectors=connectors,
                executor=executor,
            )
            async with worker:
                await env.client.start_workflow(
                    workflow_for(case.request.type).run,  # type: ignore[attr-defined]
                    case,
                    id=case.case_id,
                    task_queue=settings.task_queue,
                    static_summary=text,
                    static_details=details(case.case_id, case.request, case.decision),
                )
                await _status(env, case.case_id, "awaiting_shipment")
                async with async_playwright() as playwright:
                    browser = await playwright.chromium.launch(
                        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                    )
                    page = await browser.new_page()
                    try:
                        await _find_in_ui(
                            page,
                            f"http://127.0.0.1:{ui_port}",
                            case.case_id,
                            "awaiting_shipment",
                            text,
                        )
                    except BaseException:
                        shot = tmp_path / "temporal-ui.png"
                        await page.screenshot(path=str(shot), full_page=True)
                        print(f"screenshot of the failure: {shot}")
                        raise
                    finally:
                        await browser.close()
                await env.client.get_workflow_handle(case.case_id).terminate("test over")
    finally:
        await connectors.aclose()
        engine.dispose()
