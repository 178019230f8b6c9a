"""The connector fault matrix, activity by activity, against the real local HTTP peers.

Each activity runs on the time-skipping server under the real retry policy
(activities.policy.CONNECTOR_RETRY), started by a one-step workflow that reports how the
activity ended instead of failing. The storefront webhook goes out from the outbox: its
rows are delivered by the real drainer (activities.outbox), with the same retry cap. The peers
answer 4xx, 5xx a few times, or hang.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlalchemy import Engine
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.carriers import CarrierActivities
from activities.connectors import connectors_from_settings
from activities.errors import (
    CONFIGURATION_ERROR,
    CONNECTOR_REJECTED,
    CONNECTOR_UNAVAILABLE,
    MESSAGE_LIMIT,
)
from activities.inputs import (
    BookPickup,
    NotifyCustomer,
    RequestInterception,
    RequestRefund,
    RequestShipment,
)
from activities.notify import NotifyActivities
from activities.outbox import OutboxDrainer
from activities.payments import PaymentActivities
from activities.policy import ACTIVITY_TIMEOUT, CONNECTOR_ATTEMPTS, CONNECTOR_RETRY
from config.settings import Settings
from domain.models import CaseView, Channel
from domain.names import Message
from notifications.samples import sample_case
from store import service
from store.db import make_engine, migrate, session_scope
from store.tables import utcnow
from tests.support.http_peers import Peers

from .conftest import SECRET

# The peers stall longer than the connectors wait, so a hang is a timeout, then a retry.
CONNECTOR_TIMEOUT = 0.5
STALL = 2.0


@dataclass
class Call:
    """Run the activity `name` once, with the real connector retry policy."""

    name: str
    arg: dict[str, Any]


@dataclass
class Outcome:
    """How the activity ended: its result, or its final failure."""

    ok: bool
    result: Any = None
    type: str | None = None
    message: str = ""
    non_retryable: bool = False
    # Whether the failure carries a cause (with its own stack trace) under it.
    chained: bool = False


@workflow.defn(sandboxed=False)
class CallActivity:
    """A one-step workflow: the activity's failure is reported, never the workflow's."""

    @workflow.run
    async def run(self, call: Call) -> Outcome:
        try:
            result = await workflow.execute_activity(
                call.name,
                call.arg,
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=CONNECTOR_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if not isinstance(cause, ApplicationError):  # e.g. a timeout: report it as such
                return Outcome(ok=False, type=type(cause).__name__, message=str(cause))
            return Outcome(
                ok=False,
                type=cause.type,
                message=cause.message,
                non_retryable=cause.non_retryable,
                chained=cause.cause is not None,
            )
        return Outcome(ok=True, result=result)


@dataclass
class Harness:
    """A worker with the connector activities, pointed at the peers."""

    env: WorkflowEnvironment
    task_queue: str
    peers: Peers
    engine: Engine
    drainer: OutboxDrainer

    async def run(self, name: str, arg: Any) -> Outcome:
        """Run one activity to its end, retries included (backoffs are skipped)."""
        payload = TypeAdapter(type(arg)).dump_python(arg, mode="json")
        return await self.env.client.execute_workflow(
            CallActivity.run,
            Call(name=name, arg=payload),
            id=f"fault-{uuid.uuid4()}",
            task_queue=self.task_queue,
            result_type=Outcome,
        )

    async def deliver(self, event_id: str) -> tuple[str, int, str | None]:
        """Queue a webhook event in the outbox and drain until it settles: its status,
        attempts and error (retry backoffs are skipped)."""
        with session_scope(self.engine) as session:
            service.add_outbox_event(
                session,
                case_id="R-FAULT",
                event_id=event_id,
                event_type="case.approved",
                payload={"id": event_id, "type": "case.approved", "case_id": "R-FAULT"},
                now=utcnow(),
            )
        for _ in range(50):
            await self.drainer.drain_once()
            with session_scope(self.engine) as session:
                [row] = [
                    r
                    for r in service.outbox_events(session, case_id="R-FAULT")
                    if r.event_id == event_id
                ]
            if row.status != "pending":
                return row.status, row.attempts, row.error
        raise AssertionError(f"{event_id} still pending after 50 drains")


def settings_for(peers: Peers, tmp: Path, **overrides: Any) -> Settings:
    """Every connector at the peers, with a short HTTP timeout."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp / 'faults.db'}",
        "payment_url": peers.url,
        "carrier_url": peers.url,
        "webhook_url": peers.webhook_url,
        "sms_url": peers.sms_url,
        "smtp_url": None,
        "webhook_secret": SECRET,
        "connector_timeout_seconds": CONNECTOR_TIMEOUT,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
async def harness_for(
    time_skipping: WorkflowEnvironment, peers: Peers, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """Start a worker with settings overridden as asked; stopped after the test."""
    started: list[tuple[Worker, Any, Engine]] = []
    executor = ThreadPoolExecutor(max_workers=4)

    async def start(**overrides: Any) -> Harness:
        settings = settings_for(peers, tmp_path, **overrides)
        engine = make_engine(settings.database_url)
        migrate(engine)
        connectors = connectors_from_settings(settings)
        with session_scope(engine) as session:
            # The SMS case's record: the notify activity reads the case from it.
            service.upsert_case(session, view=sms_case(), token=uuid.uuid4().hex, revision=1)
        drainer = OutboxDrainer(
            engine=engine,
            webhook=connectors.webhook,
            client=time_skipping.client,
            retry_after=lambda _: timedelta(0),
        )
        payments = PaymentActivities(connectors)
        carriers = CarrierActivities(connectors)
        notify = NotifyActivities(engine=engine, settings=settings, connectors=connectors)
        task_queue = f"faults-{uuid.uuid4()}"
        worker = Worker(
            time_skipping.client,
            task_queue=task_queue,
            workflows=[CallActivity],
            activities=[
                payments.request_refund,
                carriers.book_pickup,
                carriers.request_shipment,
                carriers.request_interception,
                notify.notify_customer,
            ],
            activity_executor=executor,
            workflow_runner=UnsandboxedWorkflowRunner(),
        )
        await worker.__aenter__()
        started.append((worker, connectors, engine))
        return Harness(time_skipping, task_queue, peers, engine, drainer)

    yield start
    for worker, connectors, engine in started:
        await worker.__aexit__(None, None, None)
        await connectors.aclose()
        engine.dispose()
    executor.shutdown()


HarnessFor = Callable[..., Any]


def sms_case() -> CaseView:
    """A case whose customer is told by SMS."""
    case = sample_case()
    return case.model_copy(
        update={"customer": case.customer.model_copy(update={"channel": Channel.SMS})}
    )


# Each connector: the activity, a fresh input with a unique key, the path the peer sees, and
# the distinct side effects the peer recorded for that key.
@dataclass(frozen=True)
class Connector:
    activity: str
    path: str
    make: Callable[[str], Any]
    effects: Callable[[Peers, str], int]
    key_of: Callable[[Any], str]


def _refund(key: str) -> RequestRefund:
    return RequestRefund(
        case_id="R-FAULT",
        order_id="SO-1",
        amount=Decimal("990.00"),
        currency="TWD",
        payment_method="card",
        reason="size_fit",
        idempotency_key=key,
    )


def _pickup(key: str) -> BookPickup:
    case = sample_case()
    return BookPickup(
        case_id=case.id, address=case.customer.address, parcels=case.items, idempotency_key=key
    )


def _shipment(key: str) -> RequestShipment:
    case = sample_case()
    return RequestShipment(
        case_id=case.id, address=case.customer.address, items=case.items, idempotency_key=key
    )


def _interception(key: str) -> RequestInterception:
    return RequestInterception(case_id="F-FAULT", tracking_number="TRK123", idempotency_key=key)


def _sms(key: str) -> NotifyCustomer:
    # The notification ID, and so the SMS's Idempotency-Key, is "<case>:<step>:sms".
    return NotifyCustomer(
        case_id=sms_case().id, message=Message.CASE_RECEIVED, step=key, timezone="Asia/Taipei"
    )


def _distinct_keys(path: str) -> Callable[[Peers, str], int]:
    def count(peers: Peers, key: str) -> int:
        return len(
            {r.idempotency_key for r in peers.requests if r.path == path and r.status == 200}
            & {key}
        )

    return count


CONNECTORS = {
    "refund": Connector(
        "request_refund",
        "/refunds",
        _refund,
        lambda p, k: int(k in p.refunds),
        lambda a: a.idempotency_key,
    ),
    "pickup": Connector(
        "book_pickup",
        "/pickups",
        _pickup,
        lambda p, k: int(k in p.pickups),
        lambda a: a.idempotency_key,
    ),
    "shipment": Connector(
        "request_shipment",
        "/shipments",
        _shipment,
        lambda p, k: int(k in p.shipments),
        lambda a: a.idempotency_key,
    ),
    "interception": Connector(
        "request_interception",
        "/interceptions",
        _interception,
        lambda p, k: int(k in p.interceptions),
        lambda a: a.idempotency_key,
    ),
    "sms": Connector(
        "notify_customer",
        "/sms",
        _sms,
        _distinct_keys("/sms"),
        lambda a: f"{a.case_id}:{a.step}:sms",
    ),
}


def calls(peers: Peers, path: str, key: str) -> list[int]:
    """The statuses the peer answered to calls with this key, in order."""
    return [r.status for r in peers.requests if r.path == path and r.idempotency_key == key]


def delivery_status(engine: Engine, notification_id: str) -> str | None:
    """The delivery log's status for a notification."""
    with session_scope(engine) as session:
        rows = service.deliveries(session, case_id=notification_id.split(":", 1)[0])
        return next((r.status for r in rows if r.id == notification_id), None)


async def _one_call(harness_for: HarnessFor, name: str) -> tuple[Connector, Harness, Any, str]:
    """The connector under test, a fresh harness, an argument with a new key, and the key."""
    connector = CONNECTORS[name]
    harness: Harness = await harness_for()
    arg = connector.make(f"{name}-{uuid.uuid4().hex[:8]}")
    return connector, harness, arg, connector.key_of(arg)


@pytest.mark.parametrize("name", sorted(CONNECTORS))
async def test_a_4xx_is_final_with_a_short_message(
    harness_for: HarnessFor, peers: Peers, name: str
) -> None:
    connector, harness, arg, key = await _one_call(harness_for, name)
    # A partner answering with a whole error page must not flood the case's history.
    peers.fail_next(connector.path, 422, detail="card declined: " + "x" * 3000)

    outcome = await harness.run(connector.activity, arg)

    assert not outcome.ok
    assert outcome.type == CONNECTOR_REJECTED
    assert outcome.non_retryable
    assert "422" in outcome.message and "card declined" in outcome.message
    assert len(outcome.message) <= MESSAGE_LIMIT
    # No httpx cause chain: that is what made failures "exceed size limit" in Temporal's UI.
    assert not outcome.chained
    assert calls(peers, connector.path, key) == [422]  # not retried
    assert connector.effects(peers, key) == 0
    if name == "sms":
        # The delivery log keeps its meaning: the message was refused, not sent.
        assert delivery_status(harness.engine, key) == "failed"


@pytest.mark.parametrize("name", sorted(CONNECTORS))
async def test_5xx_then_recovery_does_it_once(
    harness_for: HarnessFor, peers: Peers, name: str
) -> None:
    connector, harness, arg, key = await _one_call(harness_for, name)
    peers.fail_next(connector.path, 503, times=2)

    outcome = await harness.run(connector.activity, arg)

    assert outcome.ok, outcome
    assert calls(peers, connector.path, key) == [503, 503, 200]
    assert connector.effects(peers, key) == 1
    if name == "sms":
        assert delivery_status(harness.engine, key) == "sent"


@pytest.mark.parametrize("name", sorted(CONNECTORS))
async def test_a_hang_times_out_and_the_retry_does_it_once(
    harness_for: HarnessFor, peers: Peers, name: str
) -> None:
    connector, harness, arg, key = await _one_call(harness_for, name)
    # The peer does the work, but only after the connector gave up waiting.
    peers.stall_next(connector.path, STALL)

    outcome = await harness.run(connector.activity, arg)

    assert outcome.ok, outcome
    # Wait for the stalled call to finish too, so a double side effect would show.
    peers.wait_for(lambda p: len(calls(p, connector.path, key)) == 2, timeout=STALL + 5)
    assert calls(peers, connector.path, key) == [200, 200]
    assert connector.effects(peers, key) == 1


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://payments.example", "scheme"),
        ("http://payments.invalid", "no such host"),
        ("http://127.0.0.1:0", "port 0"),
    ],
)
async def test_a_payment_url_that_cannot_work_is_a_configuration_error(
    harness_for: HarnessFor, peers: Peers, url: str, problem: str
) -> None:
    harness: Harness = await harness_for(payment_url=url)

    outcome = await harness.run("request_refund", _refund(f"bad-url-{uuid.uuid4().hex[:8]}"))

    assert not outcome.ok
    assert outcome.type == CONFIGURATION_ERROR
    assert outcome.non_retryable
    assert "AFTERSALES_PAYMENT_URL" in outcome.message and problem in outcome.message
    assert len(outcome.message) <= MESSAGE_LIMIT
    assert peers.requests == []


async def test_a_refused_connection_is_retried_until_the_cap_then_ends(
    harness_for: HarnessFor, peers: Peers
) -> None:
    # Nothing listens there: the partner may be restarting, so this is not a config error.
    url = peers.url
    peers.stop()
    harness: Harness = await harness_for(payment_url=url)

    outcome = await harness.run("request_refund", _refund(f"down-{uuid.uuid4().hex[:8]}"))

    assert not outcome.ok
    assert outcome.type == CONNECTOR_UNAVAILABLE
    assert not outcome.non_retryable  # it was retried, up to the policy's cap
    assert len(outcome.message) <= MESSAGE_LIMIT


async def test_a_missing_template_variable_is_a_configuration_error(
    harness_for: HarnessFor, peers: Peers
) -> None:
    harness: Harness = await harness_for()
    # case_approved needs extra return_address and tracking_number; none are passed.
    notify = NotifyCustomer(
        case_id=sms_case().id,
        message=Message.CASE_APPROVED,
        step="approved.1",
        timezone="Asia/Taipei",
    )

    outcome = await harness.run("notify_customer", notify)

    assert not outcome.ok
    assert outcome.type == CONFIGURATION_ERROR
    assert outcome.non_retryable
    assert "case_approved" in outcome.message and "return_address" in outcome.message
    assert peers.requests == []  # nothing was sent


async def test_an_undefined_variable_in_a_shop_template_names_template_and_variable(
    harness_for: HarnessFor, peers: Peers, tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    (templates / "en").mkdir(parents=True)
    (templates / "en" / "case_received.j2").write_text(
        "{% block subject %}Hi {{ case.nickname }}{% endblock %}"
        "{% block text %}x{% endblock %}{% block html %}x{% endblock %}",
        encoding="utf-8",
    )
    harness: Harness = await harness_for(templates_dir=templates)

    outcome = await harness.run("notify_customer", _sms("received.1"))

    assert not outcome.ok
    assert outcome.type == CONFIGURATION_ERROR
    assert "en/case_received.j2" in outcome.message and "nickname" in outcome.message
    assert peers.requests == []


# ---- the storefront webhook, delivered from the outbox ----------------------------------


async def test_a_webhook_4xx_is_final_and_marks_the_event_failed(
    harness_for: HarnessFor, peers: Peers
) -> None:
    harness: Harness = await harness_for()
    key = f"R-FAULT:case.approved.{uuid.uuid4().hex[:8]}"
    peers.fail_next("/webhook", 422, detail="unknown case: " + "x" * 3000)

    status, attempts, error = await harness.deliver(key)

    assert (status, attempts) == ("failed", 1)
    assert error is not None and "422" in error and len(error) <= MESSAGE_LIMIT
    assert calls(peers, "/webhook", key) == [422]  # not retried
    assert _distinct_keys("/webhook")(peers, key) == 0


async def test_a_webhook_5xx_then_recovery_delivers_it_once(
    harness_for: HarnessFor, peers: Peers
) -> None:
    harness: Harness = await harness_for()
    key = f"R-FAULT:case.approved.{uuid.uuid4().hex[:8]}"
    peers.fail_next("/webhook", 503, times=2)

    status, attempts, _ = await harness.deliver(key)

    assert (status, attempts) == ("delivered", 3)
    # The same Idempotency-Key on every attempt: the storefront sees one event.
    assert calls(peers, "/webhook", key) == [503, 503, 200]
    assert _distinct_keys("/webhook")(peers, key) == 1


async def test_a_webhook_hang_times_out_and_the_retry_delivers_it_once(
    harness_for: HarnessFor, peers: Peers
) -> None:
    harness: Harness = await harness_for()
    key = f"R-FAULT:case.approved.{uuid.uuid4().hex[:8]}"
    peers.stall_next("/webhook", STALL)

    status, _, _ = await harness.deliver(key)

    assert status == "delivered"
    peers.wait_for(lambda p: len(calls(p, "/webhook", key)) == 2, timeout=STALL + 5)
    assert calls(peers, "/webhook", key) == [200, 200]
    assert _distinct_keys("/webhook")(peers, key) == 1


async def test_a_webhook_that_keeps_failing_gives_up_at_the_retry_cap(
    harness_for: HarnessFor, peers: Peers
) -> None:
    harness: Harness = await harness_for()
    key = f"R-FAULT:case.approved.{uuid.uuid4().hex[:8]}"
    peers.fail_next("/webhook", 503, times=CONNECTOR_ATTEMPTS)

    status, attempts, error = await harness.deliver(key)

    assert (status, attempts) == ("failed", CONNECTOR_ATTEMPTS)
    assert error is not None and f"after {CONNECTOR_ATTEMPTS} attempts" in error
    assert calls(peers, "/webhook", key) == [503] * CONNECTOR_ATTEMPTS


async def test_two_drainers_post_each_event_once_and_each_case_in_order(
    harness_for: HarnessFor, peers: Peers, time_skipping: WorkflowEnvironment
) -> None:
    harness: Harness = await harness_for()
    other = OutboxDrainer(
        engine=harness.engine, webhook=harness.drainer.webhook, client=time_skipping.client
    )
    assert other.owner != harness.drainer.owner
    run = uuid.uuid4().hex[:8]
    cases = [f"R-{run}{n}" for n in range(4)]
    with session_scope(harness.engine) as session:
        for step in range(5):
            for case_id in cases:
                event_id = f"{case_id}:case.step.{step}"
                service.add_outbox_event(
                    session,
                    case_id=case_id,
                    event_id=event_id,
                    event_type="case.step",
                    payload={"id": event_id, "type": "case.step", "case_id": case_id},
                    now=utcnow(),
                )

    def pending() -> int:
        with session_scope(harness.engine) as session:
            return sum(
                e.status == "pending"
                for case_id in cases
                for e in service.outbox_events(session, case_id=case_id)
            )

    for _ in range(20):
        await asyncio.gather(harness.drainer.drain_once(), other.drain_once())
        if not pending():
            break
    assert pending() == 0
    for case_id in cases:
        posted = [r.idempotency_key for r in peers.requests if r.path == "/webhook"]
        mine = [key for key in posted if key and key.startswith(f"{case_id}:")]
        # Each event once (the lease), in the order the case wrote them.
        assert mine == [f"{case_id}:case.step.{step}" for step in range(5)]
