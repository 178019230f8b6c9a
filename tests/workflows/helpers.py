"""Driving a case workflow from a test: events, actions and waiting for a status."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from email.message import EmailMessage, Message
from typing import Any

from pydantic import TypeAdapter
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from activities.inputs import ProjectCase
from api.temporal_calls import update_latest_run
from domain.actions import AgentAction, CustomerAction, EventType, IntegrationEvent
from domain.calendar import BusinessCalendar
from domain.models import Acted, CaseOutcome, CaseView, Deadline, TimelineEntry
from domain.policy import Policy
from tests.conftest import OPS_EMAIL
from tests.support.http_peers import Peers, RecordedRequest
from tests.support.mail import MailSink
from workflows.case import CaseInput

_AGENT = TypeAdapter(AgentAction)
_CUSTOMER = TypeAdapter(CustomerAction)
_PROJECTION = TypeAdapter(ProjectCase)


def event(type: str, **data: Any) -> IntegrationEvent:
    """An integration event with a fresh event_id."""
    return IntegrationEvent(
        event_id=f"ev-{secrets.token_hex(6)}",
        type=EventType(type),
        occurred_at=datetime.now(UTC),
        data=data,
    )


async def signal(handle: WorkflowHandle[Any, CaseView], type: str, **data: Any) -> IntegrationEvent:
    """Report an event to the case."""
    ev = event(type, **data)
    await handle.signal("event", ev)
    return ev


async def send_action(handle: WorkflowHandle[Any, CaseView], action: str, **fields: Any) -> Acted:
    """An agent action, answered with its `Acted` alone (no query of the case after it)."""
    body = _AGENT.validate_python({"action": action, **fields})
    return await update_latest_run(handle, "action", body)


async def act(handle: WorkflowHandle[Any, CaseView], action: str, **fields: Any) -> CaseView:
    """An agent action; raises WorkflowUpdateFailedError when the case refuses it."""
    await send_action(handle, action, **fields)
    return await state(handle)


async def customer(handle: WorkflowHandle[Any, CaseView], action: str, **fields: Any) -> CaseView:
    """A customer action."""
    body = _CUSTOMER.validate_python({"action": action, **fields})
    await update_latest_run(handle, "customer_action", body)
    return await state(handle)


async def projected(handle: WorkflowHandle[Any, CaseView]) -> list[dict[str, Any]]:
    """The inputs of every projection the case scheduled so far, in order (from its history),
    across every run of a case that continued as new."""
    found: list[dict[str, Any]] = []
    run_id: str | None = None
    converter = handle._client.data_converter.payload_converter
    while True:
        run = handle._client.get_workflow_handle(handle.id, run_id=run_id)
        history = await run.fetch_history()
        in_run = []
        for event in history.events:
            if not event.HasField("activity_task_scheduled_event_attributes"):
                continue
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == "project_case":
                # Through the converter: the payload leaves out fields at their default.
                (sent,) = converter.from_payloads(scheduled.input.payloads, [ProjectCase])
                in_run.append(_PROJECTION.dump_python(sent, mode="json"))
        found = in_run + found
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return found


async def timeline(handle: WorkflowHandle[Any, CaseView]) -> list[TimelineEntry]:
    """The case's timeline as its projections carried it (the workflow holds none)."""
    entries = [entry for sent in await projected(handle) for entry in sent["entries"]]
    entries.sort(key=lambda entry: int(entry["seq"]))
    return [TimelineEntry.model_validate(entry) for entry in entries]


async def with_timeline(handle: WorkflowHandle[Any, CaseView], view: CaseView) -> CaseView:
    """The view a query or update answered, with the timeline its projections carried."""
    view.timeline = await timeline(handle)
    return view


# The time-skipping test server can drop a query sent while a case continues as new (its
# continue-as-new is not atomic; the query waits out its RPC deadline although the new run is
# idle and answers the next query at once). Production never queries: the API reads the DB.
QUERY_TIMEOUT = timedelta(seconds=5)
QUERY_TRIES = 3


async def _live(handle: WorkflowHandle[Any, CaseView]) -> CaseView:
    for attempt in range(1, QUERY_TRIES + 1):
        try:
            view: CaseView = await handle.query(
                "state", result_type=CaseView, rpc_timeout=QUERY_TIMEOUT
            )
            return view
        except RPCError as err:
            if err.status != RPCStatusCode.DEADLINE_EXCEEDED and "Timeout" not in err.message:
                raise
            if attempt == QUERY_TRIES:
                raise
    raise AssertionError("unreachable")


async def state(handle: WorkflowHandle[Any, CaseView]) -> CaseView:
    """The case now, with its timeline."""
    # The timeline first: the view read after it is at least as recent, so a step that
    # changes the case and then notes it never shows the note without the change.
    entries = await timeline(handle)
    view = await _live(handle)
    view.timeline = entries
    return view


async def reach_where(
    handle: WorkflowHandle[Any, CaseView],
    ok: Callable[[CaseView], bool],
    failure: Callable[[CaseView], str],
    *,
    timeline: bool = False,
    timeout: float = 15,
) -> CaseView:
    """Wait (in real time) until the case satisfies `ok`, and answer it with its timeline;
    `timeline`: `ok` reads the timeline, so each look fetches it."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        try:
            view = await (state(handle) if timeline else _live(handle))
        except RPCError as err:
            # A query that timed out again and again (a restarted worker still taking over
            # the case's sticky queue on a loaded machine) is asked anew until the deadline.
            if err.status != RPCStatusCode.DEADLINE_EXCEEDED and "Timeout" not in err.message:
                raise
            if loop.time() > end:
                raise
            continue
        if ok(view):
            return view if timeline else await with_timeline(handle, view)
        if loop.time() > end:
            raise AssertionError(failure(view))
        await asyncio.sleep(0.02)


async def reach(
    handle: WorkflowHandle[Any, CaseView], status: str, *, timeout: float = 15
) -> CaseView:
    """Wait (in real time) until the case is in a status, and answer it."""
    return await reach_where(
        handle,
        lambda view: view.status == status,
        lambda view: f"case {view.id} stayed {view.status}, expected {status}",
        timeout=timeout,
    )


def kinds(view: CaseView) -> list[str]:
    """The kinds of the case's timeline entries, in order."""
    return [entry.kind for entry in view.timeline]


# ---- timers, mail and peers, for the return tests ----------------------------------------


def deadline(view: CaseView, name: str) -> Deadline:
    """The case's deadline of that name; AssertionError when the case has none."""
    for item in view.deadlines:
        if item.name == name:
            return item
    raise AssertionError(f"case {view.id} has no {name!r} deadline: {deadline_names(view)}")


def deadline_names(view: CaseView) -> set[str]:
    """The names of the case's current deadlines."""
    return {item.name for item in view.deadlines}


def near(at: datetime, expected: datetime, *, slack: timedelta = timedelta(minutes=1)) -> bool:
    """Whether two instants are within `slack` of each other (workflow time moves a little)."""
    return abs(at - expected) <= slack


def entry(view: CaseView, kind: str) -> TimelineEntry:
    """The case's first timeline entry of a kind."""
    for item in view.timeline:
        if item.kind == kind:
            return item
    raise AssertionError(f"case {view.id} has no {kind!r} entry: {kinds(view)}")


async def sleep_past(
    env: WorkflowEnvironment,
    handle: WorkflowHandle[Any, CaseView],
    name: str,
    *,
    by: timedelta = timedelta(minutes=1),
) -> Deadline:
    """Skip time until just after the case's deadline `name` (business-time safe), answer it."""
    # The deadline may be a step away (set once the step's notification is sent).
    due = deadline(await reach_deadline(handle, name), name)
    await env.sleep(max(due.due_at - await env.get_current_time(), timedelta(0)) + by)
    return due


async def reach_kind(
    handle: WorkflowHandle[Any, CaseView], kind: str, *, count: int = 1, timeout: float = 15
) -> CaseView:
    """Wait (in real time) until the case's timeline has `count` entries of a kind."""
    return await reach_where(
        handle,
        lambda view: kinds(view).count(kind) >= count,
        lambda view: f"case {view.id} has {kinds(view)}, expected {count} x {kind!r}",
        timeline=True,
        timeout=timeout,
    )


async def reach_deadline(
    handle: WorkflowHandle[Any, CaseView], name: str, *, timeout: float = 15
) -> CaseView:
    """Wait (in real time) until the case waits under a deadline of that name, and answer it.

    A status shows a moment before the wait behind it sets its deadline.
    """
    return await reach_where(
        handle,
        lambda view: name in deadline_names(view),
        lambda view: f"case {view.id} ({view.status}) has no {name!r} deadline",
        timeout=timeout,
    )


async def reach_overdue(
    handle: WorkflowHandle[Any, CaseView], due: Deadline, *, timeout: float = 15
) -> CaseView:
    """Wait until the case escalated the breach of `due` and still lists it, now overdue."""

    def overdue(view: CaseView) -> bool:
        breached = any(
            e.kind == "escalated" and e.data.get("timer") == due.name for e in view.timeline
        )
        return breached and due in view.deadlines

    return await reach_where(
        handle,
        overdue,
        lambda view: f"case {view.id} never listed {due.name!r} as overdue: {view}",
        timeline=True,
        timeout=timeout,
    )


def mail_names(mail: MailSink, view: CaseView | CaseInput) -> list[str]:
    """The customer messages of a case received by SMTP, in order: ["case_received", ...]."""
    case_id = view.id if isinstance(view, CaseView) else view.case_id
    customer = view.customer if isinstance(view, CaseView) else view.request.customer
    assert customer.email
    return [
        name
        for message in mail.to(customer.email)
        if (name := _message_name(message, case_id, "email")) is not None
    ]


def mail_text(mail: MailSink, view: CaseView | CaseInput, name: str) -> str:
    """The plain text of the customer's last message of that name about the case."""
    case_id = view.id if isinstance(view, CaseView) else view.case_id
    customer = view.customer if isinstance(view, CaseView) else view.request.customer
    assert customer.email
    found = [m for m in mail.to(customer.email) if _message_name(m, case_id, "email") == name]
    assert found, f"no {name!r} mail about {case_id}"
    message = found[-1]
    assert isinstance(message, EmailMessage)  # parsed with the default policy
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


def ops_mails(mail: MailSink, case_id: str) -> list[Message]:
    """Escalation mails the operations contacts got about a case."""
    return [m for m in mail.to(OPS_EMAIL) if _message_name(m, case_id, "ops") == "escalation"]


async def ops_mails_arrive(mail: MailSink, case_id: str, count: int = 1) -> list[Message]:
    """Wait (in real time) until the operations contacts got `count` escalations of a case.

    The timeline shows an escalation a moment before its mail is sent.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while len(found := ops_mails(mail, case_id)) < count:
        if loop.time() > end:
            raise AssertionError(f"{len(found)} escalation mails about {case_id}, expected {count}")
        await asyncio.sleep(0.02)
    return found


def _message_name(message: Message, case_id: str, channel: str) -> str | None:
    # Message-ID is "<{case}.{message}.{n}.{channel}@aftersales>" (notification ID, ":" -> ".").
    local = str(message["Message-ID"]).strip("<>").partition("@")[0]
    prefix, suffix = f"{case_id}.", f".{channel}"
    if not (local.startswith(prefix) and local.endswith(suffix)):
        return None
    return local[len(prefix) : -len(suffix)].rpartition(".")[0]


async def mails_arrive(mail: MailSink, view: CaseView | CaseInput, *names: str) -> list[str]:
    """Wait (in real time) until the case's customer got every message named; answer them all."""
    return await _all_arrive(lambda: mail_names(mail, view), names, "customer mail")


async def _all_arrive(
    read: Callable[[], list[str]], names: tuple[str, ...], what: str
) -> list[str]:
    """Poll `read()` (in real time, up to 10 s) until it holds every name; answer it."""
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    while True:
        got = read()
        if all(name in got for name in names):
            return got
        if loop.time() > end:
            raise AssertionError(f"{what} {got}, expected {names}")
        await asyncio.sleep(0.02)


def requests_for(peers: Peers, path: str, case_id: str) -> list[RecordedRequest]:
    """Every POST to a peer path about a case, failed ones and replays included."""
    return [
        r
        for r in peers.requests
        if r.path == path and isinstance(r.payload, dict) and r.payload.get("case_id") == case_id
    ]


async def finish(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, CaseView], status: str
) -> CaseView:
    """Wait (in real time) for the case to end in `status`, and answer the case as it ended.

    Not a bare `handle.result()`: on the time-skipping server that moves the shared clock
    years ahead, even for a workflow already closed, firing every other case's timers.
    """
    await reach(handle, status)
    # The result says only how the case ended; the case itself is what `state` shows.
    ended = handle._client.get_workflow_handle(handle.id, result_type=CaseOutcome)
    with env.auto_time_skipping_disabled():
        outcome = await ended.result()
    assert (outcome.id, outcome.status) == (handle.id, status)
    return await with_timeline(handle, await _live(handle))


async def finish_rejected(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, CaseView], *, window: str = "30d"
) -> CaseView:
    """Wait for a rejected return or exchange, let its exception window pass with no
    supervisor's exception, and answer the case as it ended (still rejected)."""
    view = await reach(handle, "rejected")
    assert view.agent_actions == ["approve_exception"], view.agent_actions
    await env.sleep(timedelta(days=int(window.removesuffix("d"))) + timedelta(minutes=1))
    return await finish(env, handle, "rejected")


async def stop(client: Client, handle: WorkflowHandle[Any, CaseView]) -> None:
    """End a case a test leaves waiting, so its timers don't fire during later tests' sleeps.

    Only once it is idle: terminating a workflow with an activity in flight leaves the
    time-skipping test server's clock locked, and every later `env.sleep` then times out.
    """
    request = DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)
    )
    loop = asyncio.get_running_loop()
    end = loop.time() + 10
    quiet, last = 0, -1
    while quiet < 3 and loop.time() < end:
        described = await client.workflow_service.describe_workflow_execution(request)
        if described.workflow_execution_info.close_time.seconds:
            return  # already ended
        length = described.workflow_execution_info.history_length
        idle = not described.pending_activities and length == last
        quiet, last = (quiet + 1 if idle else 0), length
        await asyncio.sleep(0.02)
    with contextlib.suppress(RPCError):  # ended meanwhile
        await handle.terminate("test finished")


def overdue(view: CaseView, name: str) -> bool:
    """Whether the case's only deadline is `name`, already past: breached and still owed."""
    return [d.name for d in view.deadlines] == [name] and view.deadlines[0].due_at < view.updated_at


# ---- exchanges and refund-only cases -----------------------------------------------------


async def send_back(
    handle: WorkflowHandle[Any, CaseView],
    *,
    tracking_number: str = "BC2024",
    timeout: float = 15,
    then: str = "inspection",
) -> CaseView:
    """Bring the customer's parcel to the warehouse; answer the case under the `then` deadline.

    A customer who ships reports a tracking number first; a seller-booked pickup just scans.
    """
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not {"customer_shipment", "carrier_pickup"} & deadline_names(view := await state(handle)):
        if loop.time() > end:
            raise AssertionError(f"case {view.id} ({view.status}) awaits no shipment")
        await asyncio.sleep(0.02)
    if "customer_shipment" in deadline_names(view):
        await customer(
            handle, "provide_tracking", carrier="Black Cat", tracking_number=tracking_number
        )
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await reach_deadline(handle, "transit")
    await signal(handle, "warehouse.received")
    return await reach_deadline(handle, then)


def webhook_types(peers: Peers, case_id: str) -> list[str]:
    """The types of the storefront webhook events of a case, in order, each delivered once."""
    return [str(e["type"]) for e in peers.webhook_events(case_id)]


async def webhooks_arrive(peers: Peers, case_id: str, *types: str) -> list[str]:
    """Wait (in real time) until the storefront got every webhook type named; answer all types.

    The worker's outbox drainer posts events after the projection commits, so a test that
    saw the case move must still wait for its webhooks. Events of a case arrive in order, so
    waiting for the last one expected also waits for every one before it.
    """
    return await _all_arrive(lambda: webhook_types(peers, case_id), types, "webhooks")


def shipment_keys(peers: Peers, case_id: str) -> list[str | None]:
    """The idempotency keys of the outbound shipments requested for a case, in order."""
    seen: list[str | None] = []
    for r in requests_for(peers, "/shipments", case_id):
        if r.status == 200 and r.idempotency_key not in seen:
            seen.append(r.idempotency_key)
    return seen


async def skip_to_friday_afternoon(env: WorkflowEnvironment, policy: Policy) -> datetime:
    """Move the shared clock to 15:00 shop time on the next Friday that is a business day.

    A one-business-day deadline started then runs over the weekend. Every other case must
    have ended or been stopped: their timers would fire on the way.
    """
    calendar = BusinessCalendar.from_policy(policy)
    now = (await env.get_current_time()).astimezone(calendar.zone)
    day = now.date() + timedelta(days=1)
    while day.weekday() != 4 or not calendar.is_business_day(day):
        day += timedelta(days=1)
    target = datetime.combine(day, time(15), tzinfo=calendar.zone)
    await env.sleep(target - now)
    return target


def in_order(view: CaseView, *names: str) -> bool:
    """Whether the case's timeline has entries of these kinds in this order (first of each)."""
    found = kinds(view)
    return all(found.index(a) < found.index(b) for a, b in itertools.pairwise(names))
