"""The worker: runs every case workflow and the activities that touch the world."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.carriers import CarrierActivities
from activities.connectors import Connectors
from activities.notify import AfterSend, NotifyActivities
from activities.payments import PaymentActivities
from activities.records import RecordActivities
from aftersales.settings import Settings
from workflows.registry import WORKFLOWS

# Pure modules the workflows share with the worker: loading them once, outside the
# sandbox, keeps each workflow run from re-importing pydantic and the holiday tables.
PASSTHROUGH = ("pydantic", "pydantic_core", "holidays", "domain", "annotated_types")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every case workflow runs in; the replay tests use the same one."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    )


def build_worker(
    client: Client,
    *,
    settings: Settings,
    engine: Engine,
    connectors: Connectors,
    executor: ThreadPoolExecutor,
    after_send: AfterSend | None = None,
) -> Worker:
    """A worker for the case task queue with every workflow and activity registered.

    `after_send` is a test hook: called after a notification was accepted, before it is logged.
    """
    records = RecordActivities(engine)
    notify = NotifyActivities(
        engine=engine, settings=settings, connectors=connectors, after_send=after_send
    )
    payments = PaymentActivities(connectors)
    carriers = CarrierActivities(connectors)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(WORKFLOWS.values()),
        activities=[
            records.record_case,
            notify.notify_customer,
            notify.notify_ops,
            notify.publish_webhook,
            payments.request_refund,
            carriers.book_pickup,
            carriers.request_shipment,
            carriers.request_interception,
        ],
        activity_executor=executor,
        workflow_runner=workflow_runner(),
    )
