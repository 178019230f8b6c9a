"""The worker: runs every case workflow and the activities that touch the world."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.carriers import CarrierActivities
from activities.connectors import Connectors
from activities.notify import AfterSend, NotifyActivities
from activities.outbox import OutboxDrainer
from activities.payments import PaymentActivities
from activities.records import RecordActivities
from activities.storefront import StorefrontActivities
from aftersales.openings import OpeningSweeper
from config.settings import WORKER_SECRETS, Settings
from workflows.registry import WORKFLOWS

# Pure modules the workflows share with the worker: loading them once, outside the
# sandbox, keeps each workflow run from re-importing pydantic and the holiday tables.
# opentelemetry: the tracing interceptor's workflow side (config.tracing) uses it, as the SDK's
# contrib module asks; nothing loads it with tracing off.
PASSTHROUGH = (
    "pydantic",
    "pydantic_core",
    "holidays",
    "domain",
    "annotated_types",
    "opentelemetry",
)
# The case workflows' own modules, loaded once too. Re-importing `workflows/` for every
# workflow run (its classes, its pydantic models, a TypeAdapter for each run's own
# `CaseInput` class) cost each case CPU for nothing (docs/architecture.md, Determinism).
# They hold no state of their own (constants, and the journal's
# ContextVar, whose values live in each workflow task's context). What the sandbox no longer
# sees is a non-deterministic call made from them (datetime.now(), random): the replay tests
# replay every recorded history in the strict sandbox too, `workflow_runner(strict=True)`.
WORKFLOW_MODULES = ("workflows",)


def workflow_runner(*, strict: bool = False) -> SandboxedWorkflowRunner:
    """The sandbox every case workflow runs in (the replay tests use the same one); `strict`
    re-imports the workflow modules in each run, so the sandbox checks their calls too."""
    modules = PASSTHROUGH if strict else (*PASSTHROUGH, *WORKFLOW_MODULES)
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*modules)
    )


class CaseWorker:
    """The Temporal worker of one process and its background loops (the outbox drainer, the
    sweeper of unstarted cases), started and stopped together (`async with`, or `run()`
    until cancelled)."""

    def __init__(
        self, worker: Worker, background: dict[str, Callable[[], Awaitable[None]]]
    ) -> None:
        self.worker = worker
        self.background = background
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> CaseWorker:
        # What the process loaded to get here (modules, pydantic schemas, SQLAlchemy's
        # mappers, the SDK) lives as long as the process: leave it out of the cyclic
        # collector's full passes, which otherwise walk all of it again and again under load
        # (about 5% of a busy worker's CPU, several times what a bare SDK worker spends).
        gc.freeze()
        self._tasks = [
            asyncio.create_task(loop(), name=name) for name, loop in self.background.items()
        ]
        try:
            await self.worker.__aenter__()
        except BaseException:
            await self._stop_background()
            raise
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        try:
            await self.worker.__aexit__(*exc_info)
        finally:
            await self._stop_background()

    async def _stop_background(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def run(self) -> None:
        """Run all of it until cancelled."""
        async with self:
            await asyncio.Event().wait()


def build_worker(
    client: Client,
    *,
    settings: Settings,
    engine: Engine,
    connectors: Connectors,
    executor: ThreadPoolExecutor,
    after_send: AfterSend | None = None,
    graceful_shutdown: timedelta = timedelta(),
    workflows: Sequence[type] | None = None,
) -> CaseWorker:
    """A worker for the case task queue with every workflow and activity registered, the
    outbox drainer that delivers the storefront webhook events the projections write, and the
    sweeper that starts cases whose open was written but never started.

    `after_send` is a test hook: called after a notification was accepted, before it is logged.
    `workflows` replaces the registered workflow classes (recording a pre-patch history).
    """
    drainer = OutboxDrainer(engine=engine, webhook=connectors.webhook, client=client)
    records = RecordActivities(engine, written=drainer.wake)
    notify = NotifyActivities(
        engine=engine, settings=settings, connectors=connectors, after_send=after_send
    )
    payments = PaymentActivities(connectors)
    carriers = CarrierActivities(connectors)
    storefront = StorefrontActivities(connectors)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=list(workflows or WORKFLOWS.values()),
        activities=[
            records.project_case,
            notify.notify_customer,
            notify.notify_ops,
            payments.request_refund,
            carriers.book_pickup,
            carriers.book_dropoff,
            carriers.request_shipment,
            carriers.request_interception,
            storefront.issue_store_credit,
        ],
        activity_executor=executor,
        workflow_runner=workflow_runner(),
        graceful_shutdown_timeout=graceful_shutdown,
        max_cached_workflows=settings.worker_max_cached_workflows,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.worker_workflow_pollers),
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.worker_activity_pollers),
    )
    sweeper = OpeningSweeper(engine=engine, client=client, task_queue=settings.task_queue)
    return CaseWorker(worker, {"outbox-drainer": drainer.run, "opening-sweeper": sweeper.run})


# Activities in flight get this long to finish after SIGTERM before they are cancelled.
SHUTDOWN_GRACE = timedelta(seconds=2)
# However the shutdown goes (Temporal gone, a stuck activity thread), the process ends this
# long after the signal. Temporal retries whatever was cut short, as after a crash.
HARD_STOP_SECONDS = 4.0


async def run_worker(settings: Settings, *, ready_file: Path | None = None) -> None:
    """Run a worker until SIGINT or SIGTERM, then shut it down; touch `ready_file` once polling."""
    from activities.connectors import connectors_from_settings
    from activities.metrics import serve_metrics
    from config.temporal import connect_patiently, runtime
    from config.tracing import configure_tracing, shutdown, temporal_interceptors
    from store.db import WORKER_THREADS, make_engine, migrate

    settings.refuse_dev_secrets("worker", WORKER_SECRETS)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
            # A thread, not the loop: a loop stuck in the shutdown could never fire it.
            hard_stop = threading.Timer(HARD_STOP_SECONDS, os._exit, args=(1,))
            hard_stop.daemon = True
            hard_stop.start()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    if settings.worker_metrics_address:
        serve_metrics(settings.worker_metrics_address)
    # Tracing on (OTEL_*): the client's interceptor goes to the worker built on it, so each
    # workflow and activity continues the trace of the API request that started or updated it.
    tracing = configure_tracing("aftersales-worker")
    client = await connect_patiently(
        settings, with_runtime=runtime(settings), interceptors=temporal_interceptors(tracing)
    )
    # Its own process: connections for its activity threads only (store.db).
    engine = make_engine(settings.database_url, pool_size=WORKER_THREADS)
    migrate(engine)
    connectors = connectors_from_settings(settings, tracer_provider=tracing)
    try:
        with ThreadPoolExecutor(max_workers=WORKER_THREADS) as executor:
            worker = build_worker(
                client,
                settings=settings,
                engine=engine,
                connectors=connectors,
                executor=executor,
                graceful_shutdown=SHUTDOWN_GRACE,
            )
            async with worker:
                if ready_file is not None:
                    ready_file.write_text(f"{os.getpid()}\n")
                await stop.wait()
    finally:
        await connectors.aclose()
        engine.dispose()
        shutdown(tracing)
