"""Record real workflow histories for the replay tests in tests/replay/ (DESIGN 9).

Runs each case type along a main path on the time-skipping test server, with a real
worker, sandbox connectors and a throwaway SQLite DB, and writes every history as
`tests/replay/<name>.json` (`WorkflowHistory.to_json()`). Re-run it after changing a
workflow, but first copy the histories the change must still replay to tests/replay/legacy/
(see docs/versioning.md):

    python -m scripts.record_histories            # every history
    python -m scripts.record_histories return     # only those whose name starts so
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any

# Runnable as a file too: `python scripts/record_histories.py` puts scripts/ on the path,
# not the project root the imports below need.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine  # noqa: E402
from temporalio import workflow  # noqa: E402
from temporalio.api.common.v1 import WorkflowExecution  # noqa: E402
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest  # noqa: E402
from temporalio.client import Client, WorkflowHandle  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402

from activities.connectors import connectors_from_settings  # noqa: E402
from aftersales.binaries import find  # noqa: E402
from aftersales.temporal import register_search_attributes  # noqa: E402
from aftersales.worker import build_worker  # noqa: E402
from config.settings import Settings  # noqa: E402
from config.temporal import data_converter  # noqa: E402
from domain.calendar import BusinessCalendar  # noqa: E402
from domain.models import CaseOutcome, CaseView  # noqa: E402
from domain.names import WorkflowName  # noqa: E402
from domain.policy import Policy  # noqa: E402
from store.db import make_engine, migrate  # noqa: E402
from tests.support.factory import case_input, record_opening  # noqa: E402
from tests.workflows.complaints import complaint_input  # noqa: E402
from tests.workflows.helpers import (  # noqa: E402
    act,
    customer,
    finish,
    reach,
    reach_deadline,
    send_back,
    signal,
    sleep_past,
    stop,
)
from tests.workflows.repairs import complete, diagnose, repair_input, send_in  # noqa: E402
from workflows.case import CaseInput  # noqa: E402
from workflows.deadlines import SMS_NUDGE_PATCH  # noqa: E402
from workflows.registry import WORKFLOWS, workflow_for  # noqa: E402
from workflows.returns import ReturnWorkflow  # noqa: E402

REPLAY_DIR = ROOT / "tests" / "replay"
TASK_QUEUE = "aftersales-replay"

Handle = WorkflowHandle[Any, CaseView]


@dataclass
class Recorder:
    """A worker on the time-skipping server, and the histories recorded so far."""

    client: Client
    env: WorkflowEnvironment
    out: Path
    written: list[Path]
    engine: Engine

    async def start(self, case: CaseInput) -> Handle:
        """Start a case's workflow the way the API does: its opening row first."""
        await asyncio.to_thread(record_opening, self.engine, case)
        case = dataclasses.replace(case, recorded=True)
        workflow = workflow_for(case.request.type)
        return await self.client.start_workflow(
            workflow.run,  # type: ignore[attr-defined]
            case,
            id=case.case_id,
            task_queue=TASK_QUEUE,
        )

    async def now(self) -> datetime:
        """The server's current time."""
        return await self.env.get_current_time()

    async def save(self, name: str, handle: Handle) -> None:
        """Write the workflow's history so far as `<name>.json`."""
        await idle(self.client, handle)
        history = await handle.fetch_history()
        path = self.out / f"{name}.json"
        path.write_text(history.to_json() + "\n")
        self.written.append(path)
        print(f"wrote {path.relative_to(ROOT)} ({len(history.events)} events)")


async def idle(client: Client, handle: Handle) -> None:
    """Wait until the workflow has ended or sits still, so a mid-flight history is whole."""
    request = DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
    )
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    quiet, last = 0, -1
    while quiet < 3 and loop.time() < end:
        described = await client.workflow_service.describe_workflow_execution(request)
        if described.workflow_execution_info.close_time.seconds:
            return
        length = described.workflow_execution_info.history_length
        still = not described.pending_activities and length == last
        quiet, last = (quiet + 1 if still else 0), length
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def recorder(
    out: Path = REPLAY_DIR, workflows: list[type] | None = None
) -> AsyncIterator[Recorder]:
    """A real worker, sandbox connectors (no URLs, no network) and a temporary SQLite DB.

    `workflows` replaces the registered workflow classes (a return with a patch disabled)."""
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find("temporal-test-server"),
        data_converter=data_converter,
    )
    try:
        await register_search_attributes(env.client)
        with tempfile.TemporaryDirectory() as tmp:
            # Explicit Nones: AFTERSALES_* variables in the shell must not point us at peers.
            settings = Settings(
                database_url=f"sqlite:///{Path(tmp) / 'replay.db'}",
                task_queue=TASK_QUEUE,
                payment_url=None,
                carrier_url=None,
                webhook_url=None,
                sms_url=None,
                storefront_url=None,
                smtp_url=None,
                ops_email=None,
            )
            engine = make_engine(settings.database_url)
            migrate(engine)
            connectors = connectors_from_settings(settings)
            try:
                with ThreadPoolExecutor(max_workers=8) as executor:
                    worker = build_worker(
                        env.client,
                        settings=settings,
                        engine=engine,
                        connectors=connectors,
                        executor=executor,
                        workflows=workflows,
                    )
                    async with worker:
                        yield Recorder(env.client, env, out, [], engine)
            finally:
                await connectors.aclose()
                engine.dispose()
    finally:
        await env.shutdown()


# ---- one main path per case type ---------------------------------------------------------


async def return_awaiting_shipment(rec: Recorder) -> None:
    """Mid-flight: an approved return waiting for the customer to ship."""
    handle = await rec.start(case_input(now=await rec.now()))
    await reach(handle, "awaiting_shipment")
    await reach_deadline(handle, "customer_shipment")
    await rec.save("return_awaiting_shipment", handle)
    # Its timers would fire during the next paths' sleeps.
    await stop(rec.client, handle)


async def run_return_inspection(rec: Recorder) -> Handle:
    """A return shipped, received and passed inspection; answers it resolved (fast refund)."""
    handle = await rec.start(case_input(now=await rec.now()))
    await reach(handle, "awaiting_shipment")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC123456789")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await signal(handle, "warehouse.received")
    await reach(handle, "inspecting")
    await signal(handle, "inspection.completed", result="pass")
    await reach(handle, "resolved")
    return handle


async def return_complete(rec: Recorder) -> None:
    """A return from open to the customer's rating."""
    handle = await run_return_inspection(rec)
    await rec.env.sleep(timedelta(days=3, minutes=1))
    await customer(handle, "rate", score=5, comment="quick")
    await finish(rec.env, handle, "closed")
    await rec.save("return_complete", handle)


async def dropoff_complete(rec: Recorder) -> None:
    """A return the customer drops off at a convenience store (issue 11): the sandbox carrier
    books the code, the store's scan moves it on, then as any return to the rating."""
    policy = Policy.model_validate({"returns": {"return_methods": ["pickup", "ship", "dropoff"]}})
    case = case_input(now=await rec.now(), policy=policy, return_method="dropoff")
    handle = await rec.start(case)
    await reach_deadline(handle, "customer_shipment")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await signal(handle, "warehouse.received")
    await reach(handle, "inspecting")
    await signal(handle, "inspection.completed", result="pass")
    await reach(handle, "resolved")
    await rec.env.sleep(timedelta(days=3, minutes=1))
    await customer(handle, "rate", score=5, comment="easy at the store")
    await finish(rec.env, handle, "closed")
    await rec.save("dropoff_complete", handle)


async def return_continued(rec: Recorder) -> None:
    """Mid-flight in its second run: a return that continued as new after its fast refund
    (the run's first task fast-forwards through the journal, spawned refund task included)."""
    case = replace(case_input(now=await rec.now()), history_limit=100)
    handle = await rec.start(case)
    await reach(handle, "awaiting_shipment")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC-CAN-9")
    await signal(handle, "carrier.picked_up")
    await reach_deadline(handle, "transit")
    for n in range(20):
        await act(handle, "note", message=f"note {n}")
    latest = rec.client.get_workflow_handle(handle.id)
    await signal(latest, "warehouse.received")
    await reach_deadline(latest, "inspection")
    history = await latest.fetch_history()
    if history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id:
        await rec.save("return_continued", latest)
    else:
        raise RuntimeError(f"{handle.id} never continued as new")
    await stop(rec.client, latest)


async def exchange_complete(rec: Recorder) -> None:
    """A same-price exchange: sent back, inspected, replacement shipped and delivered."""
    same_price = [{"sku": "TEE-L-BLK", "quantity": 1, "unit_price": "990.00"}]
    case = case_input(now=await rec.now(), type="exchange", exchange_for=same_price)
    handle = await rec.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass", grade="A")
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.shipped", tracking_number="TRK-OUT-1")
    await reach(handle, "replacement_shipped")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    await reach_deadline(handle, "follow_up")
    await close_after_follow_up(rec, handle)
    await rec.save("exchange_complete", handle)


async def refund_complete(rec: Recorder) -> None:
    """A refund before the order ships: fulfilment cancelled, money back at once."""
    unshipped = {"shipped_at": None, "delivered_at": None}
    handle = await rec.start(case_input(now=await rec.now(), type="refund", order=unshipped))
    await reach_deadline(handle, "follow_up")
    await close_after_follow_up(rec, handle)
    await rec.save("refund_complete", handle)


async def repair_complete(rec: Recorder) -> None:
    """A warranty repair: picked up, diagnosed, repaired, sent back, delivered."""
    handle = await rec.start(repair_input(await rec.now()))
    await reach_deadline(handle, "carrier_pickup")
    await send_in(handle)
    await diagnose(handle)
    await reach_deadline(handle, "repair")
    await complete(handle)
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.shipped", tracking_number="TRK-REPAIRED")
    await reach(handle, "replacement_shipped")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    await reach_deadline(handle, "follow_up")
    await close_after_follow_up(rec, handle)
    await rec.save("repair_complete", handle)


async def complaint_complete(rec: Recorder) -> None:
    """A complaint resolved by a child return, then followed up, surveyed and rated."""
    handle = await rec.start(complaint_input(now=await rec.now()))
    await reach_deadline(handle, "first_response")
    await act(handle, "respond", actor="agent-mei", message="We're so sorry; we're on it.")
    await reach_deadline(handle, "review")
    await act(handle, "propose", actor="agent-mei", resolution="return", message="A return?")
    await reach_deadline(handle, "offer_response")
    await customer(handle, "accept")
    view = await reach(handle, "awaiting_shipment")
    [child_id] = view.child_case_ids
    child: Handle = rec.client.get_workflow_handle(child_id, result_type=CaseView)
    await reach_deadline(child, "carrier_pickup")
    await send_back(child)
    await signal(child, "inspection.completed", result="pass", grade="A")
    await finish(rec.env, child, "closed")
    await rec.save("complaint_child_return_complete", child)

    await reach_deadline(handle, "complaint_follow_up")
    await sleep_past(rec.env, handle, "complaint_follow_up")
    await reach_deadline(handle, "offer_response")
    await customer(handle, "accept")
    await reach_deadline(handle, "survey")
    await customer(handle, "rate", score=5, comment="Handled well")
    await finish(rec.env, handle, "closed")
    await rec.save("complaint_complete", handle)


async def exchange_out_of_stock_wait(rec: Recorder) -> None:
    """An exchange whose replacement was out of stock: the customer waits, it ships later."""
    same_price = [{"sku": "TEE-L-BLK", "quantity": 1, "unit_price": "990.00"}]
    case = case_input(now=await rec.now(), type="exchange", exchange_for=same_price)
    handle = await rec.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass", grade="A")
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.out_of_stock")
    await reach_deadline(handle, "offer_response")
    await customer(handle, "decline")
    await reach_deadline(handle, "restock")
    await signal(handle, "replacement.shipped", tracking_number="TRK-RESTOCK")
    await reach(handle, "replacement_shipped")
    await reach_deadline(handle, "transit")
    await signal(handle, "carrier.delivered")
    await reach_deadline(handle, "follow_up")
    await close_after_follow_up(rec, handle)
    await rec.save("exchange_out_of_stock_wait", handle)


async def complaint_negative_review_sunday(rec: Recorder) -> None:
    """Mid-flight: a negative review opened on a Sunday at 10:00, answered at 13:00 (after
    its 2-hour clock escalated). Moves the clock to a Sunday: record it last."""
    zone = BusinessCalendar.from_policy(Policy()).zone
    now = (await rec.now()).astimezone(zone)
    day = now.date() + timedelta(days=1)
    while day.weekday() != 6:
        day += timedelta(days=1)
    await rec.env.sleep(datetime.combine(day, time(10, 0), tzinfo=zone) - now)
    review = {"category": "logistics", "negative_review": True}
    handle = await rec.start(complaint_input(now=await rec.now(), complaint=review))
    await reach_deadline(handle, "first_response_hard")
    await rec.env.sleep(timedelta(hours=3))
    await act(handle, "respond", actor="agent-mei", message="Sorry, we're on it.")
    await reach_deadline(handle, "review")
    await rec.save("complaint_negative_review_sunday", handle)
    await stop(rec.client, handle)


async def close_after_follow_up(rec: Recorder, handle: Handle) -> None:
    """Let the follow-up and the survey lapse; the case closes."""
    await sleep_past(rec.env, handle, "follow_up")
    await sleep_past(rec.env, handle, "survey")
    await finish(rec.env, handle, "closed")


PATHS: dict[str, Callable[[Recorder], Awaitable[None]]] = {
    "return_awaiting_shipment": return_awaiting_shipment,
    "return_complete": return_complete,
    "exchange_complete": exchange_complete,
    "return_continued": return_continued,
    "refund_complete": refund_complete,
    "repair_complete": repair_complete,
    "complaint_complete": complaint_complete,
    "dropoff_complete": dropoff_complete,
    "exchange_out_of_stock_wait": exchange_out_of_stock_wait,
    "complaint_negative_review_sunday": complaint_negative_review_sunday,
}


async def record(prefixes: list[str], out: Path = REPLAY_DIR) -> list[Path]:
    """Record every path whose name starts with one of `prefixes` (all when empty)."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = [p for n, p in PATHS.items() if not prefixes or n.startswith(tuple(prefixes))]
    async with recorder(out) as rec:
        for path in chosen:
            await path(rec)
        return rec.written


@workflow.defn(name=WorkflowName.RETURN.value, sandboxed=False)
class ReturnBeforeRecordInspection(ReturnWorkflow):
    """The return as it ran before the `return-record-inspection` patch: no marker, no
    projection between the inspection and the customer's message."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the return to its end."""
        return await self.case.run(self.lifecycle)

    async def record_inspection(self) -> None:
        """The old path: nothing here."""


async def record_legacy(out: Path = REPLAY_DIR / "legacy") -> Path:
    """Record `legacy/return_complete_before_record_inspection.json` with the patch disabled
    (only when a contract change forces re-recording every history: docs/versioning.md)."""
    out.mkdir(parents=True, exist_ok=True)
    others = [w for w in WORKFLOWS.values() if w is not ReturnWorkflow]
    async with recorder(out, [ReturnBeforeRecordInspection, *others]) as rec:
        handle = await run_return_inspection(rec)
        await rec.env.sleep(timedelta(days=3, minutes=1))
        await customer(handle, "rate", score=5, comment="quick")
        await finish(rec.env, handle, "closed")
        await rec.save("return_complete_before_record_inspection", handle)
        return rec.written[0]


async def refund_offer_unanswered(rec: Recorder, name: str | None = None) -> Handle:
    """A refund-only case whose partial-refund offer nobody answers: closed at its deadline
    (saved as `<name>.json` when named)."""
    evidence = ["https://img.example/scratch.jpg"]
    case = case_input(now=await rec.now(), type="refund", reason="defective", evidence=evidence)
    handle = await rec.start(case)
    await reach(handle, "awaiting_review")
    await act(handle, "propose", actor="agent-mei", resolution="partial_refund", amount="297")
    await reach_deadline(handle, "offer_response")
    await sleep_past(rec.env, handle, "offer_response")
    await finish(rec.env, handle, "closed")
    if name:
        await rec.save(name, handle)
    return handle


@contextlib.contextmanager
def patch_disabled(patch_id: str) -> Iterator[None]:
    """`workflow.patched(patch_id)` answers False (no marker), as before the change."""
    original = workflow.patched
    workflow.patched = lambda id: False if id == patch_id else original(id)  # type: ignore[assignment]
    try:
        yield
    finally:
        workflow.patched = original  # type: ignore[assignment]


async def record_legacy_sms_nudge(out: Path = REPLAY_DIR / "legacy") -> Path:
    """Record `legacy/refund_offer_unanswered_before_sms_nudge.json`: an offer that waits out
    its 3 days as it did before the SMS nudge (one timer, no marker, no nudge)."""
    out.mkdir(parents=True, exist_ok=True)
    with patch_disabled(SMS_NUDGE_PATCH):
        async with recorder(out) as rec:
            await refund_offer_unanswered(rec, "refund_offer_unanswered_before_sms_nudge")
            return rec.written[0]


def main() -> None:
    """Record the histories named on the command line, or all of them; `--legacy` records the
    pre-patch histories instead."""
    if sys.argv[1:] == ["--legacy"]:
        asyncio.run(record_legacy())
        asyncio.run(record_legacy_sms_nudge())
    else:
        asyncio.run(record(sys.argv[1:]))


if __name__ == "__main__":
    main()
