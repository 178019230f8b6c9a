"""Long cases continue as new and finish correctly (workflows/continuation.py).

Real workflows and activities on the time-skipping server, with the history limit lowered
(`CaseInput.history_limit`) so a case continues as new every few dozen notes.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter
from sqlmodel import Session, col, select
from temporalio.api.history.v1 import History
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.actions import AgentAction, IntegrationEvent
from domain.models import Acted, CaseView
from store.tables import Notification, TimelineEvent
from tests.conftest import Stack, running_stack, stack_settings, time_skipping_server, until
from tests.support.factory import case_input
from tests.support.http_peers import Peers
from tests.support.mail import MailSink
from tests.workflows.complaints import complaint_input
from tests.workflows.helpers import (
    act,
    customer,
    deadline,
    finish,
    kinds,
    mails_arrive,
    near,
    ops_mails_arrive,
    reach,
    reach_deadline,
    reach_kind,
    send_action,
    send_back,
    signal,
    state,
    stop,
    webhook_types,
    webhooks_arrive,
)
from workflows.case import CaseInput
from workflows.continuation import QUEUED_PER_TYPE, Carry
from workflows.journal import Entry
from workflows.registry import workflow_for

Handle = WorkflowHandle[Any, CaseView]
OPENED_TEE = [{"sku": "TEE-M-BLK", "name": "T-shirt", "unit_price": "990.00", "opened": True}]
# Events no step of a return takes: they stay queued, and travel with every run.
IRRELEVANT = ("repair.completed", "customer.paid_difference")


@dataclass
class Run:
    """One run of a case's workflow: its history, and what it carried into the next."""

    run_id: str
    history: History
    carry: Carry | None
    # Whether a later run took over from this one (it continued as new).
    continued: bool = False

    @property
    def size(self) -> int:
        """The run's history in bytes."""
        return self.history.ByteSize()


def _carried(history: Any) -> Carry | None:
    """What a run was handed by the one before it (None for a case's first run)."""
    started = history.events[0].workflow_execution_started_event_attributes
    input = pydantic_data_converter.payload_converter.from_payload(
        started.input.payloads[0], CaseInput
    )
    return input.carry


async def runs(stack: Stack, handle: Handle) -> list[Run]:
    """Every run of the case so far, first to latest.

    Walked back from the latest run, each naming the run it continued: the time-skipping
    server can start the next run yet leave the `continued_as_new` event out of the
    previous run's history (a completion racing a query), so following that event forward
    would miss a run that exists.
    """
    found: list[Run] = []
    run_id: str | None = None
    while True:
        fetched = await stack.client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        history = History(events=list(fetched.events))
        started = history.events[0].workflow_execution_started_event_attributes
        found.insert(
            0, Run(started.original_execution_run_id, history, _carried(history), bool(found))
        )
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return found


async def reach_runs(stack: Stack, handle: Handle, count: int, timeout: float = 10) -> list[Run]:
    """Wait (in real time) until the case has had `count` runs, and answer them all."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while len(found := await runs(stack, handle)) < count:
        if loop.time() > end:
            raise AssertionError(f"{len(found)} runs of {handle.id}, expected {count}")
        await asyncio.sleep(0.05)
    return found


async def until_carried(handle: Handle, timeout: float = 10) -> Carry:
    """What the case's current run was handed, once it is a continued run."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        carried = _carried(await handle.fetch_history())
        if carried is not None:
            return carried
        if loop.time() > end:
            raise AssertionError(f"{handle.id} has not continued as new")
        await asyncio.sleep(0.05)


async def start(
    stack: Stack, limit: int, *, sms_nudge: bool = False, **overrides: Any
) -> tuple[CaseInput, Handle]:
    """A sample case (a return unless told) that continues as new past `limit` events."""
    case = replace(case_input(now=await stack.now(), **overrides), history_limit=limit)
    return case, await stack.start(case, sms_nudge=sms_nudge)


async def notes(handle: Handle, texts: list[str], *, at_once: int = 10) -> None:
    """Agent notes, `at_once` in flight together; every caller gets its answer.

    Updates only, no query after each: queries racing a continue-as-new are the likely
    trigger of the test server's half-taken one (see the `stack` fixture), and notes are what
    push a case over.
    """
    for at in range(0, len(texts), at_once):
        batch = texts[at : at + at_once]
        answers = await asyncio.gather(
            *(send_action(handle, "note", message=text) for text in batch)
        )
        assert all(answer.id == handle.id for answer in answers)


@pytest.fixture
async def stack(
    http_peers: Peers, mail: MailSink, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    """A time-skipping server and worker of each test's own.

    Under load, the test server can take a continue-as-new completion half-way: the next
    run starts, and the previous one keeps a workflow task it will never finish. Its time
    skipping then stays locked, and every later sleep on that server times out. On a server
    of its own, no other test meets it.
    """
    settings = stack_settings(tmp_path_factory.mktemp("continue"), http_peers, mail)
    async with time_skipping_server() as env, running_stack(env, settings, http_peers, mail) as own:
        yield own


def stored_notes(stack: Stack, case_id: str) -> list[str]:
    """The notes of a case in the DB's timeline, in order."""
    with Session(stack.engine) as session:
        rows = session.exec(
            select(TimelineEvent)
            .where(TimelineEvent.case_id == case_id, TimelineEvent.kind == "note")
            .order_by(col(TimelineEvent.seq))
        ).all()
        return [row.message for row in rows]


def notification_ids(stack: Stack, case_id: str) -> list[str]:
    """The IDs of the notifications a case sent."""
    with Session(stack.engine) as session:
        rows = session.exec(select(Notification).where(Notification.case_id == case_id)).all()
        return [row.id for row in rows]


@pytest.mark.long
async def test_a_return_with_2000_notes_and_events_runs_across_runs_and_finishes(
    stack: Stack,
) -> None:
    case, handle = await start(stack, limit=400, items=OPENED_TEE)
    view = await reach_deadline(handle, "review")
    review = deadline(view, "review")
    # An agent's escalation before the first continue-as-new: the SLA breach later must get
    # a new escalation number (a repeated one would be skipped as already sent).
    await act(handle, "escalate", reason="VIP customer")
    sent: list[str] = []
    reported: list[IntegrationEvent] = []
    for round in range(40):
        texts = [f"note {round}.{n}" for n in range(25)]
        await notes(handle, texts, at_once=25)
        sent += texts
        # New events no return step takes (they stay queued, run after run), and
        # redeliveries of events the case saw, many of them in an earlier run.
        for n in range(5):
            reported.append(await signal(handle, IRRELEVANT[n % 2], round=round, n=n))
        await asyncio.gather(
            *(
                handle.signal("event", reported[(round * 7 + n * 13) % len(reported)])
                for n in range(20)
            )
        )
    assert len(sent) + len(reported) + 40 * 20 == 2_000

    found = await runs(stack, handle)
    assert len(found) >= 4, f"{len(found)} runs"
    # Each later run was handed the case by the one before it.
    assert found[0].carry is None and all(r.carry is not None for r in found[1:])
    assert [r.carry.run for r in found[1:] if r.carry] == list(range(2, len(found) + 1))
    assert len({r.run_id for r in found}) == len(found)

    view = await state(handle)
    assert view.status == "awaiting_review"
    # The review deadline is still the one set at the start, not restarted by a new run.
    assert deadline(view, "review") == review
    assert kinds(view).count("note") == len(sent)
    # Each event once on the timeline, however often it was redelivered, and still queued.
    reported_kinds = [k for k in kinds(view) if k in IRRELEVANT]
    assert len(reported_kinds) == len(reported)
    # Every note once in the DB, in the order the case took them (concurrent notes may
    # arrive in another order than sent).
    stored = stored_notes(stack, case.case_id)
    assert sorted(stored) == sorted(sent)
    assert stored == [e.message for e in view.timeline if e.kind == "note"]

    # The breach fires at the original time, not a business day after the last run began.
    await stack.env.sleep(review.due_at - await stack.now() - timedelta(minutes=5))
    assert not (await state(handle)).sla_breached
    await stack.env.sleep(timedelta(minutes=6))
    view = await reach_kind(handle, "escalated", count=2)
    breach = [e for e in view.timeline if e.kind == "escalated"][-1]
    assert breach.data.get("timer") == "review" and near(breach.at, review.due_at)
    await ops_mails_arrive(stack.mail, case.case_id, count=2)

    view = await act(handle, "approve")
    assert view.status == "awaiting_shipment"
    await reach_deadline(handle, "customer_shipment")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC-CAN-1")
    await signal(handle, "carrier.picked_up")
    await reach_deadline(handle, "transit")
    await signal(handle, "warehouse.received")
    await reach_deadline(handle, "inspection")
    await signal(handle, "inspection.completed", result="pass")
    view = await reach(handle, "resolved")
    assert view.refund is not None and view.refund.status == "succeeded"
    await customer(handle, "rate", score=4)
    result = await finish(stack.env, handle, "closed")
    assert result.rating == 4

    assert len(stack.peers.refunds_for(case.case_id)) == 1
    ids = notification_ids(stack, case.case_id)
    assert len(ids) == len(set(ids))
    await mails_arrive(stack.mail, case, "case_received", "case_approved", "refund_sent")
    await webhooks_arrive(stack.peers, case.case_id, "case.closed")
    events = stack.peers.webhook_events(case.case_id)
    event_ids = [e["id"] for e in events]
    assert len(event_ids) == len(set(event_ids))
    assert webhook_types(stack.peers, case.case_id).count("case.escalated") == 2

    # History bytes per run. The first run carries nothing in; each later one is handed the
    # case, its pending waits, the queued events (capped per type) and a bounded dedupe set,
    # which fill up over the first runs and then stop growing. So the runs that were handed
    # the case must stay flat, however many notes came before them.
    found = await runs(stack, handle)
    full = [r.size for r in found if r.continued]
    carried = found[-1].carry
    print(f"{len(found)} runs; history bytes of the runs that continued: {full}")
    # Flat: the workflow holds no timeline (it lives in the DB), so what a run carries and
    # what each projection sends don't grow with the notes before it.
    assert carried is None or carried.view.timeline == []
    # The 200 reports no step takes are all on the timeline, but a run carries only the
    # earliest few of each type: what it hands over doesn't grow with them either.
    assert carried is not None
    queued = Counter(e.type.value for e in carried.events)
    assert set(queued) <= set(IRRELEVANT)
    assert max(queued.values()) == QUEUED_PER_TYPE  # more were reported: the cap held
    handed = full[1:]
    assert len(handed) >= 2 and max(handed) <= handed[0] * 1.15, full


async def test_a_timer_pending_across_continue_as_new_fires_once_at_its_original_time(
    stack: Stack,
) -> None:
    case, handle = await start(stack, limit=150)
    view = await reach_deadline(handle, "customer_shipment_reminder")
    reminder = deadline(view, "customer_shipment_reminder")
    expiry = deadline(view, "customer_shipment")
    await notes(handle, [f"before the reminder {n}" for n in range(40)])
    await reach_runs(stack, handle, 2)
    await stack.env.sleep(reminder.due_at - await stack.now() + timedelta(minutes=1))
    await mails_arrive(stack.mail, case, "shipment_reminder")
    view = await state(handle)
    assert deadline(view, "customer_shipment") == expiry
    before = len(await runs(stack, handle))
    await notes(handle, [f"after the reminder {n}" for n in range(40)])
    await reach_runs(stack, handle, before + 1)
    await stack.env.sleep(expiry.due_at - await stack.now() + timedelta(minutes=1))
    result = await finish(stack.env, handle, "expired")
    expired = [e for e in result.timeline if e.kind == "expired"]
    assert len(expired) == 1 and near(expired[0].at, expiry.due_at)
    reminded = [e for e in result.timeline if e.kind == "shipment_reminder"]
    assert len(reminded) <= 1
    sent = await mails_arrive(stack.mail, case, "case_expired")
    assert sent.count("shipment_reminder") == 1


@pytest.mark.usefixtures("pending_refunds")
async def test_a_fast_refund_in_flight_holds_continue_as_new_until_it_settles(
    stack: Stack,
) -> None:
    case, handle = await start(stack, limit=150)
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC-CAN-2")
    await signal(handle, "carrier.picked_up")
    await reach_deadline(handle, "refund")  # the fast refund waits for its settlement
    await notes(handle, [f"while refunding {n}" for n in range(40)])
    assert len(await runs(stack, handle)) == 1
    await signal(handle, "refund.settled", refund_id="re_settled")
    await reach_kind(handle, "refund_succeeded")
    await notes(handle, ["one more"])
    found = await reach_runs(stack, handle, 2)
    assert len(found) == 2
    assert found[-1].carry is not None and found[-1].carry.view.refund is not None
    await signal(handle, "warehouse.received")
    await reach_deadline(handle, "inspection")
    await signal(handle, "inspection.completed", result="pass")
    view = await reach(handle, "resolved")
    assert view.refund is not None and view.refund.status == "succeeded"
    await customer(handle, "rate", score=5)
    await finish(stack.env, handle, "closed")
    assert len(stack.peers.refunds_for(case.case_id)) == 1


async def test_an_update_sent_while_continue_as_new_is_due_gets_its_answer(
    stack: Stack,
) -> None:
    # Thirty notes at once take about 75 events (their projections share activities).
    _, handle = await start(stack, limit=50, items=OPENED_TEE)
    await reach_deadline(handle, "review")
    # Thirty notes at once carry the history past the limit while updates are in flight:
    # the case continues as new only once each has answered.
    await notes(handle, [f"together {n}" for n in range(30)], at_once=30)
    found = await reach_runs(stack, handle, 2)
    assert len(found) >= 2
    # An approve sent into a case past its limit again is answered by the next run.
    await notes(handle, [f"more {n}" for n in range(12)], at_once=12)
    view = await act(handle, "approve", notes="go ahead")
    assert view.status == "awaiting_shipment"
    assert kinds(view).count("note") == 42
    await reach_deadline(handle, "customer_shipment")
    await act(handle, "cancel")
    await finish(stack.env, handle, "cancelled")


async def test_an_action_resent_to_the_next_run_is_answered_not_applied_again(
    stack: Stack,
) -> None:
    # A run that applied an action, but whose answer was lost as it continued as new (the
    # client saw "already completed"), hands the update's ID to the next run: the client's
    # resend, with the same ID, gets its answer there and the action is not taken twice.
    _, handle = await start(stack, limit=60, items=OPENED_TEE)
    await reach_deadline(handle, "review")
    approve = TypeAdapter(AgentAction).validate_python({"action": "approve", "notes": "go ahead"})
    first = await handle.execute_update("action", approve, id="approve-once", result_type=Acted)
    assert first.status == "awaiting_shipment"
    await notes(handle, [f"after the approval {n}" for n in range(40)])
    await reach_runs(stack, handle, 2)
    # Sent to the latest run: not the one that applied it, so the server doesn't know the ID.
    latest = stack.client.get_workflow_handle(handle.id)
    again = await latest.execute_update("action", approve, id="approve-once", result_type=Acted)
    assert again.status == "awaiting_shipment"
    view = await state(handle)
    assert kinds(view).count("approved") == 1
    # Another approve, with an ID of its own, is refused: the case is past its review.
    with pytest.raises(WorkflowUpdateFailedError):
        await latest.execute_update("action", approve, id="approve-twice", result_type=Acted)
    await act(handle, "cancel")
    await finish(stack.env, handle, "cancelled")


async def test_a_complaint_waits_for_its_child_case_then_continues_and_follows_up(
    stack: Stack,
) -> None:
    case = replace(complaint_input(now=await stack.now()), history_limit=150)
    handle = await stack.start(case)
    await reach_deadline(handle, "first_response")
    await act(handle, "respond", message="We're sorry; we're on it.")
    await reach_deadline(handle, "review")
    await act(handle, "propose", resolution="return", message="Send it back for a refund.")
    await reach_deadline(handle, "offer_response")
    await customer(handle, "accept")
    view = await reach(handle, "awaiting_shipment")
    [child_id] = view.child_case_ids
    child = stack.client.get_workflow_handle(child_id, result_type=CaseView)

    # Past its limit while the child runs: the complaint holds on (the child is its own task).
    sent = 0
    while len((await handle.fetch_history()).events) <= case.history_limit:
        await notes(handle, [f"while the return runs {sent + n}" for n in range(10)])
        sent += 10
    assert len(await runs(stack, handle)) == 1

    await reach_deadline(child, "carrier_pickup")
    await send_back(child)
    await signal(child, "inspection.completed", result="pass", grade="A")
    await finish(stack.env, child, "closed")
    # The child settled: at its next wait the complaint continues, carrying the outcome.
    view = await reach_deadline(handle, "complaint_follow_up")
    assert view.status == "resolved"
    # (The current run's own input, not the chain of runs: the time-skipping server may leave
    # the first run's history without its continued-as-new event once a child has closed.)
    carried = await until_carried(handle)
    assert carried.run == 2 and carried.view.child_case_ids == [child_id]
    view = await state(handle)
    assert kinds(view).count("child_case_resolved") == 1
    assert kinds(view).count("note") == sent
    assert len(stack.peers.refunds_for(child_id)) == 1
    assert stack.peers.refunds_for(case.case_id) == []
    await mails_arrive(stack.mail, case, "resolution_done")
    await stop(stack.client, handle)


async def test_a_run_whose_code_left_its_journal_escalates_and_goes_on(stack: Stack) -> None:
    case, handle = await start(stack, limit=150)
    await reach_deadline(handle, "customer_shipment_reminder")
    await notes(handle, [f"before the deploy {n}" for n in range(40)])
    found = await reach_runs(stack, handle, 2)
    carry = found[-1].carry
    assert carry is not None
    await stop(stack.client, handle)

    # A deploy changed the lifecycle under the case without a `workflow.patched` guard: where
    # the new code waits for the parcel, the journal says the old code called a partner.
    carry.journal["main"].append(Entry(kind="call", body={"booking_id": "from-the-old-code"}))
    workflow = workflow_for(case.request.type)
    handle = await stack.client.start_workflow(
        workflow.run,  # type: ignore[attr-defined]
        replace(case, recorded=True, history_limit=10_000, carry=carry),
        id=case.case_id,
        task_queue=stack.settings.task_queue,
    )
    # The case doesn't fail: it goes live where the journal left off, and a person hears why.
    view = await reach_kind(handle, "escalated")
    escalated = [e for e in view.timeline if e.kind == "escalated"][-1]
    assert "left its journal" in escalated.message and "asked for a wait" in escalated.message
    assert view.status == "awaiting_shipment"
    await ops_mails_arrive(stack.mail, case.case_id)
    # And it still works: the parcel moves it on.
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC-DIV-1")
    await signal(handle, "carrier.picked_up")
    view = await reach(handle, "in_transit")
    assert kinds(view).count("escalated") == 1
    await stop(stack.client, handle)


async def test_an_offer_is_nudged_once_across_runs(stack: Stack) -> None:
    """Continued before its SMS nudge and again after it: one nudge, the offer still open."""
    case, handle = await start(
        stack,
        150,
        sms_nudge=True,
        type="refund",
        reason="defective",
        evidence=["https://img.example/s.jpg"],
    )
    await reach(handle, "awaiting_review")
    await act(handle, "propose", resolution="partial_refund", amount="297", message="Sorry")
    due = deadline(await reach_deadline(handle, "offer_response"), "offer_response")
    await notes(handle, [f"before the nudge {n}" for n in range(40)])
    await reach_runs(stack, handle, 2)
    await stack.env.sleep(timedelta(hours=24, minutes=5))
    await until(lambda: len(stack.peers.sms_for(case.case_id)) == 1)
    before = len(await runs(stack, handle))
    await notes(handle, [f"after the nudge {n}" for n in range(40)])
    await reach_runs(stack, handle, before + 1)
    # The continued run waits on under the offer's own deadline, and takes the answer.
    assert deadline(await state(handle), "offer_response") == due
    view = await customer(handle, "accept")
    assert view.status != "awaiting_customer"
    await mails_arrive(stack.mail, case, "refund_sent")
    nudges = [i for i in notification_ids(stack, case.case_id) if ":sms_nudge." in i]
    assert nudges == [f"{case.case_id}:sms_nudge.1:sms"]
    assert len(stack.peers.sms_for(case.case_id)) == 1
    await stop(stack.client, handle)
