"""Fast tests of the case kernel's rules: the inbox, deadlines and escalation.

In the samples-python style: the real workflows on the real time-skipping test server, with
every activity replaced by a fake registered under the activity's name. The fakes record
what they were asked and refuse (as a partner's 4xx does) when a test tells them to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.inputs import WebhookFailure
from aftersales.binaries import find
from aftersales.temporal import register_search_attributes
from aftersales.worker import workflow_runner
from domain.models import CaseView
from domain.names import Handler
from tests.conftest import until
from tests.support.factory import case_input
from tests.support.ports import free_port
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    entry,
    event,
    kinds,
    reach,
    reach_deadline,
    reach_kind,
    reach_overdue,
    sleep_past,
    state,
    stop,
)
from workflows.case import CaseInput
from workflows.registry import WORKFLOWS, workflow_for

TASK_QUEUE = "kernel-test"
OPENED_TEE = [{"sku": "TEE-M-BLK", "name": "T-shirt", "unit_price": "990.00", "opened": True}]
PHOTO = ["https://img.example/cracked.jpg"]

Handle = WorkflowHandle[Any, CaseView]


def _case_id(input: dict[str, Any]) -> str:
    return str(input["case_id"])


@dataclass
class Fakes:
    """Activities by name: what each was asked, and refusals a test queues per case."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refusals: dict[tuple[str, str], int] = field(default_factory=dict)

    def refuse(self, name: str, case_id: str, times: int = 1) -> None:
        """Refuse the next `times` calls of activity `name` for a case, as a 4xx does."""
        self.refusals[(name, case_id)] = times

    def _answer(self, name: str, input: dict[str, Any]) -> None:
        self.calls.append((name, input))
        key = (name, _case_id(input))
        if self.refusals.get(key, 0) > 0:
            self.refusals[key] -= 1
            raise ApplicationError(
                f"{name} answered 422: refused by the fake partner",
                type="ConnectorRejected",
                non_retryable=True,
            )

    def asked(self, name: str, case_id: str) -> list[dict[str, Any]]:
        """The inputs activity `name` got for a case, refused calls included."""
        return [i for n, i in self.calls if n == name and _case_id(i) == case_id]

    def messages(self, case_id: str) -> list[str]:
        """The customer messages a case asked for, in order."""
        return [str(i["message"]) for i in self.asked("notify_customer", case_id)]

    def webhooks(self, case_id: str) -> list[str]:
        """The storefront webhook events a case's projections queued, in order."""
        return [
            str(w["step"]).rpartition(".")[0]
            for i in self.asked("project_case", case_id)
            for w in i["webhooks"]
        ]

    def activities(self) -> list[Any]:
        """The fake activities, each under the name of the one it stands in for."""

        @activity.defn(name="project_case")
        async def project_case(input: dict[str, Any]) -> None:
            self._answer("project_case", input)

        @activity.defn(name="notify_customer")
        async def notify_customer(input: dict[str, Any]) -> str:
            self._answer("notify_customer", input)
            return "sent"

        @activity.defn(name="notify_ops")
        async def notify_ops(input: dict[str, Any]) -> str:
            self._answer("notify_ops", input)
            return "sent"

        @activity.defn(name="request_refund")
        async def request_refund(input: dict[str, Any]) -> dict[str, Any]:
            self._answer("request_refund", input)
            return {"refund_id": "re_fake", "status": "succeeded"}

        def booking(kind: str, input: dict[str, Any]) -> dict[str, Any]:
            self._answer(kind, input)
            return {"id": f"{kind}-1", "tracking_number": "TRK-FAKE", "label_url": None}

        @activity.defn(name="book_pickup")
        async def book_pickup(input: dict[str, Any]) -> dict[str, Any]:
            return booking("book_pickup", input)

        @activity.defn(name="request_shipment")
        async def request_shipment(input: dict[str, Any]) -> dict[str, Any]:
            return booking("request_shipment", input)

        @activity.defn(name="request_interception")
        async def request_interception(input: dict[str, Any]) -> dict[str, Any]:
            return booking("request_interception", input)

        return [
            project_case,
            notify_customer,
            notify_ops,
            request_refund,
            book_pickup,
            request_shipment,
            request_interception,
        ]


@dataclass
class Kernel:
    """The real workflows on a time-skipping server of their own, with fake activities."""

    env: WorkflowEnvironment
    fakes: Fakes

    async def start(self, case: CaseInput) -> Handle:
        """Start a case's workflow as the API does."""
        return await self.env.client.start_workflow(
            workflow_for(case.request.type).run,  # type: ignore[attr-defined]
            case,
            id=case.case_id,
            task_queue=TASK_QUEUE,
        )

    async def case(self, **overrides: Any) -> tuple[CaseInput, Handle]:
        """A sample case (a return unless told), started."""
        case = case_input(now=await self.env.get_current_time(), **overrides)
        return case, await self.start(case)


@pytest.fixture(scope="module")
async def kernel() -> AsyncIterator[Kernel]:
    """A time-skipping server and a worker whose activities are all fakes."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find("temporal-test-server"),
        data_converter=pydantic_data_converter,
        port=free_port(),
    )
    await register_search_attributes(env.client)
    fakes = Fakes()
    async with Worker(
        env.client,
        task_queue=TASK_QUEUE,
        workflows=list(WORKFLOWS.values()),
        activities=fakes.activities(),
        workflow_runner=workflow_runner(),
    ):
        yield Kernel(env, fakes)
    await env.shutdown()


async def running(client: Client, handle: Handle) -> bool:
    """Whether the workflow is still running (not completed, failed or terminated)."""
    # The raw call: `handle.describe()` can't decode the test server's datetime attributes.
    described = await client.workflow_service.describe_workflow_execution(
        DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
        )
    )
    return bool(described.workflow_execution_info.status == WorkflowExecutionStatus.RUNNING.value)


# ---- the inbox ---------------------------------------------------------------------------


async def test_the_validator_refuses_what_no_wait_takes_before_anything_is_written(
    kernel: Kernel,
) -> None:
    _, handle = await kernel.case(items=OPENED_TEE)
    before = await reach_deadline(handle, "review")
    assert before.status == "awaiting_review"
    for refused in (
        act(handle, "record_inspection", result="pass"),
        act(handle, "retry"),  # nothing failed: nothing to retry
        customer(handle, "rate", score=5),
        customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC1"),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as error:
            await refused
        assert "can't take" in str(error.value.cause)
    assert await state(handle) == before
    history = await handle.fetch_history()
    assert not any(
        e.HasField("workflow_execution_update_accepted_event_attributes") for e in history.events
    )
    await stop(kernel.env.client, handle)


async def test_a_repeated_event_id_is_taken_once(kernel: Kernel) -> None:
    case, handle = await kernel.case()
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC77")
    scan = event("carrier.picked_up")
    for _ in range(3):
        await handle.signal(Handler.EVENT.value, scan)
    view = await reach_deadline(handle, "transit")
    assert view.status == "in_transit"
    await handle.signal(Handler.EVENT.value, scan)
    view = await state(handle)
    assert kinds(view).count("carrier.picked_up") == 1
    # The message follows the status (and its deadline) a moment later.
    await until(lambda: "picked_up" in kernel.fakes.messages(case.case_id))
    assert kernel.fakes.messages(case.case_id).count("picked_up") == 1
    await stop(kernel.env.client, handle)


async def test_an_action_queued_for_a_step_that_has_passed_is_refused_as_stale(
    kernel: Kernel,
) -> None:
    _, handle = await kernel.case(items=OPENED_TEE)
    await reach_deadline(handle, "review")
    answers = await asyncio.gather(
        act(handle, "approve", actor="agent-a"),
        act(handle, "approve", actor="agent-b"),
        return_exceptions=True,
    )
    taken = [a for a in answers if isinstance(a, CaseView)]
    refused = [a for a in answers if isinstance(a, WorkflowUpdateFailedError)]
    assert len(taken) == 1 and len(refused) == 1
    assert "can't take 'approve'" in str(refused[0].cause)
    view = await reach_deadline(handle, "customer_shipment")
    assert kinds(view).count("approved") == 1
    await stop(kernel.env.client, handle)


async def test_a_customer_action_is_recorded_as_the_customer_whatever_the_body_says(
    kernel: Kernel,
) -> None:
    _, handle = await kernel.case()
    await reach_deadline(handle, "customer_shipment_reminder")
    view = await customer(handle, "cancel", actor="agent-impersonated")
    assert view.status == "cancelled"
    assert entry(view, "cancelled").actor == "customer"


# ---- deadlines and escalation ------------------------------------------------------------


async def test_an_escalating_deadline_escalates_once_and_stays_listed_overdue(
    kernel: Kernel,
) -> None:
    case, handle = await kernel.case(items=OPENED_TEE)
    due = await sleep_past(kernel.env, handle, "review")
    view = await reach_overdue(handle, due)
    assert view.sla_breached and view.priority == "high"
    await kernel.env.sleep(timedelta(days=3))
    view = await state(handle)
    assert kinds(view).count("escalated") == 1
    assert deadline(view, "review") == due
    assert len(kernel.fakes.asked("notify_ops", case.case_id)) == 1
    assert kernel.fakes.webhooks(case.case_id).count("case.escalated") == 1
    # Overdue is still waiting: the agent can act, and the deadline goes.
    view = await act(handle, "approve")
    assert "review" not in {d.name for d in view.deadlines}
    await stop(kernel.env.client, handle)


async def test_a_reminding_deadline_reminds_then_expires(kernel: Kernel) -> None:
    case, handle = await kernel.case()
    await sleep_past(kernel.env, handle, "customer_shipment_reminder")
    await until(lambda: "shipment_reminder" in kernel.fakes.messages(case.case_id))
    assert "case_expired" not in kernel.fakes.messages(case.case_id)
    await sleep_past(kernel.env, handle, "customer_shipment")
    view = await reach(handle, "expired")
    assert entry(view, "expired").actor == "timer"
    assert kernel.fakes.messages(case.case_id)[-1] == "case_expired"
    assert view.deadlines == []


# ---- failures at the edges ---------------------------------------------------------------


async def test_a_refused_message_is_noted_and_escalated_and_the_case_goes_on(
    kernel: Kernel,
) -> None:
    case = case_input(now=await kernel.env.get_current_time())
    kernel.fakes.refuse("notify_customer", case.case_id)  # the first: case_received
    handle = await kernel.start(case)
    view = await reach_deadline(handle, "customer_shipment_reminder")
    failed = entry(view, "connector_failed")
    assert failed.actor == "messaging" and "case_received" in failed.message
    assert "refused by the fake partner" in failed.message
    assert entry(view, "escalated").actor == "messaging"
    assert len(kernel.fakes.asked("notify_ops", case.case_id)) == 1
    assert await running(kernel.env.client, handle)
    await stop(kernel.env.client, handle)


async def test_a_refusing_storefront_and_ops_mail_never_recurse_or_fail_the_case(
    kernel: Kernel,
) -> None:
    case = case_input(now=await kernel.env.get_current_time())
    kernel.fakes.refuse("notify_ops", case.case_id, times=1000)
    handle = await kernel.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    queued = kernel.fakes.webhooks(case.case_id)
    assert queued == ["case.open", "case.awaiting_shipment"]
    # The outbox drainer gave up on both status webhooks (a 4xx): it tells the case, twice
    # for the first (a drainer that crashed before marking the row failed tells it again).
    for event_id, event_type in (
        (f"{case.case_id}:case.open.1", "case.open"),
        (f"{case.case_id}:case.open.1", "case.open"),
        (f"{case.case_id}:case.awaiting_shipment.1", "case.awaiting_shipment"),
    ):
        failure = WebhookFailure(event_id=event_id, event_type=event_type, answer="422 nope")
        await handle.signal(Handler.WEBHOOK_FAILED.value, failure)
    # Each failed webhook escalates once; the escalation's own mail, refused too, is only
    # noted: 2 notes per webhook, and no escalation publishes a webhook (no loop).
    view = await reach_kind(handle, "connector_failed", count=4)
    await asyncio.sleep(0.5)
    view = await state(handle)
    by_storefront = [
        e
        for e in view.timeline
        if e.actor == "storefront" and e.kind in ("connector_failed", "escalated")
    ]
    # (Only this case's storefront entries count: the shared clock may move other timers.)
    assert [e.kind for e in by_storefront] == [
        "connector_failed",
        "escalated",
        "connector_failed",
        "escalated",
    ]
    assert [e.data["event_id"] for e in by_storefront if e.kind == "connector_failed"] == [
        f"{case.case_id}:case.open.1",
        f"{case.case_id}:case.awaiting_shipment.1",
    ]
    assert "422 nope" in by_storefront[0].message
    mails_noted = [
        e for e in view.timeline if e.kind == "connector_failed" and e.actor == "messaging"
    ]
    assert len(mails_noted) >= 2
    assert len(kernel.fakes.asked("notify_ops", case.case_id)) >= 2
    # No webhook for the storefront's own failures. (Another test's sleep on the shared clock
    # may move this case on, and an escalation of that is published, as it should be.)
    await asyncio.sleep(0.5)
    extra = kernel.fakes.webhooks(case.case_id)[len(queued) :]
    view = await state(handle)
    others = [e for e in view.timeline if e.kind == "escalated" and e.actor != "storefront"]
    assert extra.count("case.escalated") <= len(others)
    assert view.status == "awaiting_shipment"
    assert await running(kernel.env.client, handle)
    await stop(kernel.env.client, handle)


async def test_a_refused_pickup_escalates_and_an_agents_retry_books_it(kernel: Kernel) -> None:
    case = case_input(now=await kernel.env.get_current_time(), reason="defective", evidence=PHOTO)
    kernel.fakes.refuse("book_pickup", case.case_id)
    handle = await kernel.start(case)
    view = await reach_kind(handle, "escalated")
    assert view.status == "awaiting_shipment"
    assert entry(view, "escalated").actor == "carrier"
    assert "refused the pickup" in entry(view, "connector_failed").message
    assert await running(kernel.env.client, handle)
    view = await act(handle, "retry", actor="agent-mei", notes="Carrier fixed the address.")
    assert entry(view, "retried").actor == "agent-mei"
    await reach_deadline(handle, "carrier_pickup")
    keys = [i["idempotency_key"] for i in kernel.fakes.asked("book_pickup", case.case_id)]
    assert keys == [f"{case.case_id}:pickup.1", f"{case.case_id}:pickup.1"]
    await until(lambda: "case_approved" in kernel.fakes.messages(case.case_id))
    await stop(kernel.env.client, handle)


# ---- names defined once -----------------------------------------------------------------


def test_names_match_the_policy_the_templates_and_the_action_models() -> None:
    from pathlib import Path
    from typing import get_args

    from pydantic import TypeAdapter

    from domain.actions import AgentAction, CustomerAction
    from domain.names import AgentVerb, CustomerVerb, Message, Timer, WorkflowName
    from domain.policy import DEFAULT_TIMERS

    assert {t.value for t in Timer} == set(DEFAULT_TIMERS)
    templates = Path(__file__).resolve().parents[2] / "notifications" / "templates" / "en"
    names = {p.name.split(".")[0] for p in templates.iterdir()}
    assert {m.value for m in Message} <= names

    def verbs(union: Any) -> set[str]:
        models = get_args(get_args(union)[0])
        return {get_args(m.model_fields["action"].annotation)[0] for m in models}

    assert verbs(AgentAction) == {v.value for v in AgentVerb}
    assert verbs(CustomerAction) == {v.value for v in CustomerVerb}
    TypeAdapter(AgentAction).validate_python({"action": AgentVerb.RETRY.value})
    assert {w.__temporal_workflow_definition.name for w in WORKFLOWS.values()} == {  # type: ignore[attr-defined]
        w.value for w in WorkflowName
    }
