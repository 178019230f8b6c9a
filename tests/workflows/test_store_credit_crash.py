"""Store credit issued once across a worker crash (issue 11, "Must show").

A real worker process calls the storefront's `POST /store-credits`; it is killed (SIGKILL,
like a power cut) while the storefront is still working on the call. The storefront issues
the credit anyway, and the worker never hears. The next worker retries the activity with the
same Idempotency-Key, and the storefront answers the same credit: one credit, one message.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from domain.models import CaseView
from notifications.email import message_id_header
from store.db import make_engine, migrate
from tests.support.factory import case_input
from tests.support.http_peers import Peers
from tests.support.mail import MailSink
from tests.workflows.helpers import reach_where
from tests.workflows.test_notify_exactly_once import (  # noqa: F401  (fixtures)
    PENDING_ACTIVITY_STATE_STARTED,
    Workers,
    _fail_dead_attempt,
    dev_server,
    workers_env,
)
from tests.workflows.test_store_credit import credit_policy
from workflows.registry import workflow_for

CREDITS = "/store-credits"
# Long enough to kill the worker while the storefront still holds the call.
STALL_SECONDS = 3.0


@pytest.fixture
def credit_env(workers_env: dict[str, str], http_peers: Peers) -> Iterator[dict[str, str]]:  # noqa: F811
    yield {**workers_env, "AFTERSALES_STOREFRONT_URL": http_peers.url}


@pytest.mark.long
async def test_store_credit_is_issued_once_across_a_worker_killed_mid_call(
    dev_server: WorkflowEnvironment,  # noqa: F811
    credit_env: dict[str, str],
    http_peers: Peers,
    mail: MailSink,
) -> None:
    engine = make_engine(credit_env["AFTERSALES_DATABASE_URL"])
    migrate(engine)
    workers = Workers(credit_env)
    case = case_input(
        now=datetime.now(UTC), policy=credit_policy("approval"), resolution="store_credit"
    )
    arrived = http_peers.arrivals(CREDITS)
    http_peers.stall_next(CREDITS, STALL_SECONDS)
    try:
        first = await workers.start()
        handle = await dev_server.client.start_workflow(
            workflow_for(case.request.type).run,  # type: ignore[attr-defined]
            case,
            id=case.case_id,
            task_queue=credit_env["AFTERSALES_TASK_QUEUE"],
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while http_peers.arrivals(CREDITS) == arrived:
            assert loop.time() < deadline, "the credit call never reached the storefront"
            await asyncio.sleep(0.05)
        # The worker dies with the call in flight; the storefront goes on and issues it.
        first.kill()
        await first.wait()
        await asyncio.to_thread(
            http_peers.wait_for,
            lambda peers: len(peers.store_credits_for(case.case_id)) == 1,
            timeout=STALL_SECONDS + 10,
        )
        [credit] = http_peers.store_credits_for(case.case_id)

        await workers.start()
        # As the attempt's start-to-close timeout (60 s) would, once the server noticed.
        await _fail_dead_attempt(dev_server.client, handle, "issue_store_credit")
        # Whatever else the dead worker held (a message of the approval) goes the same way.
        for pending in (await handle.describe()).raw_description.pending_activities:
            if pending.state == PENDING_ACTIVITY_STATE_STARTED:
                attempt = dev_server.client.get_async_activity_handle(
                    workflow_id=handle.id, run_id=None, activity_id=pending.activity_id
                )
                with contextlib.suppress(RPCError):  # finished meanwhile
                    await attempt.fail(ApplicationError("the worker was killed"))

        def issued(view: CaseView) -> bool:
            return view.store_credit is not None and view.store_credit.status == "issued"

        view = await reach_where(
            handle, issued, lambda v: f"credit is {v.store_credit}", timeout=60
        )
        assert view.store_credit is not None
        # The same credit the storefront issued before the crash: one credit in all.
        assert (view.store_credit.credit_id, view.store_credit.code) == (
            credit["credit_id"],
            credit["code"],
        )
        assert len(http_peers.store_credits_for(case.case_id)) == 1
        calls = [
            r
            for r in http_peers.requests
            if r.path == CREDITS and r.payload.get("case_id") == case.case_id
        ]
        assert len(calls) >= 2 and {r.status for r in calls} == {200}
        assert {r.idempotency_key for r in calls} == {f"{case.case_id}:store_credit"}
        # And the customer hears of it once.
        header = message_id_header(f"{case.case_id}:store_credit_issued.1:email")

        def copies() -> int:
            return sum(1 for m in mail.messages if m["Message-ID"] == header)

        deadline = loop.time() + 60
        while copies() == 0:
            assert loop.time() < deadline, "no store_credit_issued mail"
            await asyncio.sleep(0.1)
        assert copies() == 1
        text = str(next(m for m in mail.messages if m["Message-ID"] == header).get_body(("plain",)))
        # The total with its 10% bonus, the bonus itself, and the one credit's code.
        assert "TWD 1,089.00" in text and "TWD 99.00" in text and credit["code"] in text
    finally:
        await workers.stop()
        engine.dispose()
