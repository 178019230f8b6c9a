"""Exactly once as the customer sees it: a worker killed mid-delivery, and SMS retries.

The kill test runs real workers as subprocesses against a Temporal dev server and the real
SMTP sink; the first worker dies (`os._exit`) after the SMTP server accepted `case_received`
and before the delivery log recorded it. The next worker must not send it again.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from aftersales.binaries import find
from aftersales.temporal import search_attribute_keys
from notifications.email import message_id_header
from store import service
from store.db import make_engine, migrate, session_scope
from store.tables import Notification
from tests.conftest import OPS_EMAIL, SECRET, Stack
from tests.support.crash_worker import CRASH_ENV
from tests.support.factory import case_input
from tests.support.http_peers import Peers
from tests.support.mail import MailSink
from tests.support.ports import free_port
from tests.workflows.helpers import reach
from workflows.registry import workflow_for

ROOT = Path(__file__).resolve().parents[2]
RECOVERY_SECONDS = 60.0
PENDING_ACTIVITY_STATE_STARTED = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED


@pytest.fixture(scope="module")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server of our own, so killed workers touch nothing else."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=search_attribute_keys(),
        ui=False,
        port=free_port(),
    )
    yield env
    await env.shutdown()


class Workers:
    """Worker subprocesses started by one test, all killed at the end."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.procs: list[asyncio.subprocess.Process] = []

    async def start(self, **extra: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.support.crash_worker",
            cwd=ROOT,
            env={**self.env, **extra},
        )
        self.procs.append(proc)
        return proc

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@pytest.fixture
def workers_env(
    tmp_path: Path, http_peers: Peers, mail: MailSink, dev_server: WorkflowEnvironment
) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSALES_")}
    env.update(
        {
            "AFTERSALES_DATABASE_URL": f"sqlite:///{tmp_path / 'aftersales.db'}",
            "AFTERSALES_TEMPORAL_ADDRESS": dev_server.client.service_client.config.target_host,
            "AFTERSALES_TEMPORAL_NAMESPACE": dev_server.client.namespace,
            "AFTERSALES_TASK_QUEUE": f"exactly-once-{os.getpid()}",
            "AFTERSALES_PAYMENT_URL": http_peers.url,
            "AFTERSALES_CARRIER_URL": http_peers.url,
            "AFTERSALES_WEBHOOK_URL": http_peers.webhook_url,
            "AFTERSALES_SMS_URL": http_peers.sms_url,
            "AFTERSALES_SMTP_URL": mail.url,
            "AFTERSALES_WEBHOOK_SECRET": SECRET,
            "AFTERSALES_OPS_EMAIL": OPS_EMAIL,
        }
    )
    yield env


def _row(engine: Any, notification_id: str) -> Notification | None:
    with session_scope(engine) as session:
        return session.get(Notification, notification_id)


async def _until_status(
    engine: Any, notification_id: str, statuses: set[str], timeout: float
) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        row = await asyncio.to_thread(_row, engine, notification_id)
        if row is not None and row.status in statuses:
            return row.status
        if loop.time() > deadline:
            raise AssertionError(
                f"{notification_id} is {row.status if row else 'missing'}, not {statuses}"
            )
        await asyncio.sleep(0.2)


async def _fail_dead_attempt(client: Client, handle: WorkflowHandle[Any, Any], kind: str) -> None:
    """Fail the started attempt of the case's pending `kind` activity, as a timeout would."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        pending = (await handle.describe()).raw_description.pending_activities
        started = [
            a
            for a in pending
            if a.activity_type.name == kind and a.state == PENDING_ACTIVITY_STATE_STARTED
        ]
        if started:
            break
        if loop.time() > deadline:
            raise AssertionError(f"no started {kind} attempt: {pending}")
        await asyncio.sleep(0.1)
    attempt = client.get_async_activity_handle(
        workflow_id=handle.id, run_id=None, activity_id=started[0].activity_id
    )
    await attempt.fail(ApplicationError("the worker running this attempt was killed"))


async def _settled_log(engine: Any, case_id: str, *, count: int, timeout: float = 30) -> list[Any]:
    """The case's delivery log once it has `count` rows and none is still being sent."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        with session_scope(engine) as session:
            log = service.deliveries(session, case_id=case_id)
        if len(log) >= count and all(r.status in service.DELIVERY_SETTLED for r in log):
            return log
        if loop.time() > deadline:
            raise AssertionError(f"delivery log not settled: {[(r.id, r.status) for r in log]}")
        await asyncio.sleep(0.1)


def _copies(mail: MailSink, notification_id: str) -> int:
    header = message_id_header(notification_id)
    return sum(1 for m in mail.messages if m["Message-ID"] == header)


@pytest.mark.long
async def test_worker_killed_after_smtp_accepted_never_sends_twice(
    dev_server: WorkflowEnvironment, workers_env: dict[str, str], mail: MailSink
) -> None:
    engine = make_engine(workers_env["AFTERSALES_DATABASE_URL"])
    migrate(engine)
    workers = Workers(workers_env)
    case = case_input(now=datetime.now(UTC))
    received = f"{case.case_id}:case_received.1:email"
    try:
        crashing = await workers.start(**{CRASH_ENV: "case_received"})
        handle = await dev_server.client.start_workflow(
            workflow_for(case.request.type).run,  # type: ignore[attr-defined]
            case,
            id=case.case_id,
            task_queue=workers_env["AFTERSALES_TASK_QUEUE"],
        )
        # The worker dies for real: the SMTP server has the message, the log doesn't know.
        assert await asyncio.wait_for(crashing.wait(), timeout=60) == 1
        assert _copies(mail, received) == 1
        row = await asyncio.to_thread(_row, engine, received)
        assert row is not None and row.status == "in_doubt"

        await workers.start()
        # In service the server notices the dead worker when the attempt's start-to-close
        # timeout (60 s) runs out. The test ends that attempt itself, as the timeout would,
        # rather than sit a minute: what is under test is the retry that follows.
        await _fail_dead_attempt(dev_server.client, handle, "notify_customer")
        # The retry settles the row unsent.
        status = await _until_status(
            engine, received, {"sent", "sent_unconfirmed"}, RECOVERY_SECONDS
        )
        assert status == "sent_unconfirmed"
        view = await reach(handle, "awaiting_shipment", timeout=30)
        assert view.id == case.case_id

        log = {r.id: r for r in await _settled_log(engine, case.case_id, count=2)}
        assert log[received].status == "sent_unconfirmed"
        assert log[received].attempts == 2
        # Later messages go out normally on the new worker.
        later = [r for r in log.values() if r.id != received and r.channel == "email"]
        assert later and all(r.status == "sent" for r in later)
        for r in later:
            assert _copies(mail, r.id) == 1
        # The customer got case_received exactly once, by Message-ID, on the real server.
        assert _copies(mail, received) == 1
    finally:
        await workers.stop()
        engine.dispose()


async def test_sms_customer_gets_one_signed_sms_per_notification(stack: Stack) -> None:
    peers = stack.peers
    case = case_input(now=await stack.now(), customer={"channel": "sms"})
    rejected_before = len(peers.rejections)
    peers.fail_next("/sms", 503)  # the gateway's first answer is a failure
    handle = await stack.start(case)
    await reach(handle, "awaiting_shipment")
    log = await _settled_log(stack.engine, case.case_id, count=2)
    sms_log = [r for r in log if r.channel == "sms"]
    assert sms_log and all(r.status == "sent" for r in sms_log)
    assert sms_log[0].attempts == 2  # the 503, then the retry

    messages = peers.sms_for(case.case_id)
    assert len(messages) == len(sms_log)
    for message in messages:
        assert message["to"] == case.request.customer.phone
        assert case.status_url in message["body"]
        assert len(message["body"]) <= 320
    # One accepted SMS per notification ID, whatever the retries.
    accepted = [
        r
        for r in peers.requests
        if r.path == "/sms" and r.status == 200 and r.payload.get("case_id") == case.case_id
    ]
    keys = [r.idempotency_key or "" for r in accepted]
    assert sorted(keys) == sorted(r.id for r in sms_log)
    assert any(
        r.path == "/sms" and r.status == 503 and r.payload.get("case_id") == case.case_id
        for r in peers.requests
    )
    assert len(peers.rejections) == rejected_before
    assert not stack.mail.to(case.request.customer.email or "-")
