"""The case kernel every case type runs on, built from parts with one job each.

A case is one workflow. Agents act through updates (validated before anything is written),
customers through updates of their own, and integrations through a signal deduplicated by
`event_id` (the `Inbox`). Every wait has a named deadline; a breached one escalates
(`Deadlines`). Status, timeline and everything that tells the world about them go through
the `Recorder`. `Case` holds the three and the case's view; `CaseHandlers` gives a workflow
class the handlers, each delegating to its `Case`.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, NoReturn, TypeVar

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.inputs import WebhookFailure
    from domain.actions import (
        AgentAction,
        Approve,
        ApproveException,
        Assign,
        CustomerAction,
        Escalate,
        IntegrationEvent,
        Note,
    )
    from domain.calendar import BusinessCalendar, HolidayTable
    from domain.models import (
        TERMINAL_STATUSES,
        Acted,
        CaseOutcome,
        CaseRequest,
        CaseStatus,
        CaseView,
        Decision,
        Priority,
    )
    from domain.names import Actor, AgentVerb, ErrorType, Handler, Kind, Message
    from domain.opening import initial_view
    from domain.policy import Policy
    from domain.rules import TermsRefused
    from workflows.continuation import HISTORY_LIMIT, Carry, Continuation
    from workflows.deadlines import Deadlines
    from workflows.ending import CaseEnded
    from workflows.inbox import AFTER_END_ACTIONS, ANYTIME_ACTIONS, Inbox, Pending, refusal
    from workflows.journal import LABEL, MAIN, Journal
    from workflows.recorder import Recorder
    from workflows.terms import approved_terms

T = TypeVar("T")

CANCELLABLE = frozenset(
    {
        CaseStatus.OPEN,
        CaseStatus.AWAITING_REVIEW,
        CaseStatus.AWAITING_CUSTOMER,
        CaseStatus.AWAITING_SHIPMENT,
    }
)


@dataclass
class CaseInput:
    """Everything a case needs, fixed at open so a policy change never moves an open case."""

    case_id: str
    request: CaseRequest
    decision: Decision
    policy: Policy
    token: str
    status_url: str
    opened_at: datetime
    # Holiday dates of the years the case may span: the sandbox can't look them up.
    holidays: HolidayTable = field(default_factory=dict)
    queue: str = "customer_service"
    parent_case_id: str | None = None
    # Decided at open (a complaint's severity); escalations raise it from there.
    priority: Priority = Priority.NORMAL
    # The API wrote the case's opening row (this very view, at revision 0) before starting
    # the workflow; a case opened otherwise (a complaint's child) has no row until projected.
    recorded: bool = False
    # Events in one run before the case continues as new (workflows/continuation.py).
    history_limit: int = HISTORY_LIMIT
    # What the previous run handed over; None in a case's first run.
    carry: Carry | None = None


class Case:
    """One case: its view, inbox, deadlines and recorder, and the rules of its handlers."""

    def __init__(self, input: CaseInput) -> None:
        self.input = input
        self.policy = input.policy
        self.calendar = BusinessCalendar.from_policy(input.policy, input.holidays)
        # The same first view the API wrote when it opened the case (domain.opening).
        self.view = initial_view(
            case_id=input.case_id,
            request=input.request,
            decision=input.decision,
            queue=input.queue,
            priority=input.priority,
            status_url=input.status_url,
            opened_at=input.opened_at,
            parent_case_id=input.parent_case_id,
        )
        # Set while a cancel would strand something: the shop holds the customer's item (a
        # repair), or a child case carries out the resolution (a complaint).
        self.locked = False
        # A continued run replays its lifecycle from this journal before it goes live.
        self.journal = Journal(input.carry.journal if input.carry else None)
        self.continuation = Continuation(self, input.carry, input.history_limit)
        # The IDs of the updates (actions) the case applied, an earlier run's included: a
        # client that resends one to the next run (continuation.Carry.updates) gets the answer
        # without the action being applied twice.
        self.applied: dict[str, None] = dict.fromkeys(input.carry.updates if input.carry else [])
        self.inbox = Inbox()
        self.recorder = Recorder(
            self.view,
            token=input.token,
            timezone=input.policy.timezone,
            inbox=self.inbox,
            cancellable=lambda: self.cancellable,
            opened_by_api=input.recorded,
        )
        # Fast-forwarding tells nobody anything: the earlier run did.
        self.recorder.muted = self.journal.forwarding
        self.deadlines = Deadlines(
            self.view,
            policy=self.policy,
            calendar=self.calendar,
            inbox=self.inbox,
            recorder=self.recorder,
            cancellable=lambda: self.cancellable,
            journal=self.journal,
            turnover=self.continuation,
        )

    @property
    def ended(self) -> bool:
        """Whether the case has reached a terminal status."""
        return self.continuation.shown().status in TERMINAL_STATUSES

    @property
    def cancellable(self) -> bool:
        """Whether a cancel is taken now: early statuses, and nothing a cancel would strand."""
        if self.continuation.forwarding:
            return self.continuation.cancellable(CANCELLABLE)
        return self.view.status in CANCELLABLE and not self.locked

    # ---- what the lifecycle reads from the world (journaled) ------------------------

    def now(self) -> datetime:
        """The time, for the lifecycle: journaled, so a continued run reads the same."""
        return self.journal.now()

    def drawn(self, draw: Callable[[random.Random], list[str]]) -> list[str]:
        """Random values for the lifecycle (a child case's ID): the same in a continued run."""
        return self.journal.drawn(draw)

    def spawn(self, name: str, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run part of the lifecycle alongside the rest (a fast refund), journaled apart."""
        return self.journal.spawn(name, coro)

    # ---- the handlers' rules ----------------------------------------------------

    def continue_with(self, carry: Carry) -> NoReturn:
        """Continue as new: the same input, with what this run hands over."""
        workflow.continue_as_new(replace(self.input, carry=carry))

    def take_event(self, event: IntegrationEvent) -> Pending | None:
        """Take an integration event once; repeats of its event_id are ignored (None)."""
        if self.continuation.forwarding:
            self.continuation.deferred.append(event)  # taken once the run is live
            return None
        if self.ended or not self.inbox.first_sight(event):
            return None
        reported = f"{event.type.value} reported."
        self.recorder.add(event.type, Actor.INTEGRATION, reported, event.data)
        pending = Pending("event", event.type.value, event)
        self.inbox.put(pending)
        return pending

    def check_action(self, action: AgentAction) -> None:
        """Refuse an agent action the case can't take now, before anything is written."""
        if action.action in ANYTIME_ACTIONS and not self.ended:
            return
        self._check("agent", action.action)
        if isinstance(action, Approve | ApproveException):
            try:
                self.approved_terms(action)
            except TermsRefused as refused:
                raise ApplicationError(
                    f"The case can't take these terms: {refused}.",
                    type=ErrorType.ACTION_NOT_ALLOWED.value,
                ) from None

    def approved_terms(self, action: Approve | ApproveException) -> Decision:
        """The decision an approval would leave (workflows/terms.py)."""
        return approved_terms(
            action,
            request=self.input.request,
            decision=self.view.decision,
            policy=self.policy,
            opened_at=self.input.opened_at,
        )

    def check_customer_action(self, action: CustomerAction) -> None:
        """Refuse a customer action the case can't take now."""
        self._check("customer", action.action)

    def _check(self, source: Literal["agent", "customer"], name: str) -> None:
        cancel = name == AgentVerb.CANCEL
        if cancel:
            taken = self.cancellable
        elif self.continuation.forwarding:
            taken = self.continuation.takes(source, name)
        else:
            taken = self.inbox.accepting(source, name)
        if (self.ended and name not in AFTER_END_ACTIONS) or not taken:
            status = self.continuation.shown().status
            raise ApplicationError(refusal(status, name), type=ErrorType.ACTION_NOT_ALLOWED.value)

    def applied_before(self) -> bool:
        """Whether the update being handled was applied already (a client's resend)."""
        info = workflow.current_update_info()
        return info is not None and info.id in self.applied

    async def once(self, apply: Callable[[], Awaitable[Acted]]) -> Acted:
        """Apply the update being handled once, whichever run it reaches: one applied before
        answers with the case as it stands."""
        if self.applied_before():
            return self.acted()
        acted = await apply()
        if (info := workflow.current_update_info()) is not None:
            self.applied[info.id] = None
        return acted

    async def act(self, action: AgentAction) -> Acted:
        """Apply an agent action; answer once the case projected what it did."""
        actor = action.actor or Actor.AGENT
        if self.continuation.forwarding:
            await self.continuation.live()
        match action:
            case Note():
                self.recorder.add(Kind.NOTE, actor, action.message)
                await self.recorder.sync()
            case Assign():
                self.view.assignee = action.agent or self.view.assignee
                self.view.queue = action.queue or self.view.queue
                who = action.agent or action.queue
                self.recorder.add(Kind.ASSIGNED, actor, f"Assigned to {who}.")
                await self.recorder.sync()
            case Escalate():
                reason = action.reason or "Escalated by an agent."
                await self.recorder.escalate(reason=reason, actor=actor)
            case _:
                return await self._handed_over(Pending("agent", action.action, action))
        return self.acted()

    async def act_as_customer(self, action: CustomerAction) -> Acted:
        """Apply a customer action; answer once the case projected what it did."""
        if self.continuation.forwarding:
            await self.continuation.live()
        return await self._handed_over(Pending("customer", action.action, action))

    def acted(self) -> Acted:
        """What an update answers: the case's status and the revision that projected it."""
        revision = self.recorder.projection.revision
        return Acted(id=self.view.id, status=self.view.status, revision=revision)

    async def _handed_over(self, pending: Pending) -> Acted:
        self.inbox.put(pending)
        # Answer once the case has acted on it and settled at its next wait.
        await workflow.wait_condition(lambda: pending.done)
        if pending.error:
            raise ApplicationError(pending.error, type=ErrorType.ACTION_NOT_ALLOWED.value)
        return self.acted()

    # ---- start to end -----------------------------------------------------------

    async def run(self, lifecycle: Callable[[], Awaitable[None]]) -> CaseOutcome:
        """Run a case type's lifecycle, ending it cleanly when a step ends it early."""
        LABEL.set(MAIN)  # the run's own task: every lifecycle read here is journaled
        opened = f"{self.view.type.value.title()} case opened."
        # Projected with the case's first change: the API wrote this very view at open.
        self.recorder.add(Kind.OPENED, Actor.STOREFRONT, opened)
        try:
            await lifecycle()
        except CaseEnded as ended:
            if ended.status == CaseStatus.CANCELLED:
                await self.recorder.notify(Message.CASE_CANCELLED)
            if ended.recorded:
                return await self.finish()
            return await self.end(ended.status, ended.kind, ended.actor, ended.message)
        return await self.end(CaseStatus.CLOSED, Kind.CLOSED, Actor.TIMER, "The case is closed.")

    async def end(self, status: CaseStatus, kind: Kind, actor: str, message: str) -> CaseOutcome:
        """Finish the case in a terminal status, answering how it ended."""
        self.view.deadlines = []
        await self.recorder.set_status(status, kind, actor, message)
        return await self.finish()

    async def finish(self) -> CaseOutcome:
        """Complete the workflow of a case already in its terminal status."""
        # Actions still queued can never be taken now; answer them instead of hanging.
        self.inbox.close()
        # Updates still in flight get their answer before the workflow completes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        view = self.view
        return CaseOutcome(id=view.id, status=view.status, resolved_at=view.resolved_at)


class CaseHandlers:
    """The handlers every case workflow class has, each delegating to the class's `Case`.

    The only base class of each workflow: the case types compose steps, never inherit them.
    """

    case: Case

    @workflow.init
    def __init__(self, input: CaseInput) -> None:
        self.case = Case(input)

    @workflow.query(
        name=Handler.STATE.value,
        description="The live case, without its timeline (that lives in the DB projection).",
    )
    def state(self) -> CaseView:
        """The live case; its timeline is empty (the workflow holds none)."""
        return self.case.continuation.shown()

    @workflow.signal(
        name=Handler.EVENT.value,
        description="An integration event; repeats of an event_id are ignored.",
    )
    async def event(self, event: IntegrationEvent) -> None:
        """Take an integration event once, and see its timeline entry projected."""
        pending = self.case.take_event(event)
        if pending is not None:
            await self.case.recorder.catch_up(pending)

    @workflow.signal(
        name=Handler.WEBHOOK_FAILED.value,
        description="The outbox gave up on a storefront webhook event; the case escalates.",
    )
    async def webhook_failed(self, failure: WebhookFailure) -> None:
        """Note the storefront's refusal and escalate (no webhook for that escalation)."""
        # A continued run tells nobody anything until it is live again.
        await workflow.wait_condition(lambda: not self.case.continuation.forwarding)
        await self.case.recorder.webhook_failed(failure)

    @workflow.update(
        name=Handler.ACTION.value,
        description="An agent action (approve, reject, request_info, ...).",
    )
    async def action(self, action: AgentAction) -> Acted:
        """Apply an agent action; answer with the projection that holds the case after it."""
        return await self.case.once(lambda: self.case.act(action))

    @action.validator
    def validate_action(self, action: AgentAction) -> None:
        """Refuse an agent action the case can't take now, before anything is written."""
        if not self.case.applied_before():
            self.case.check_action(action)

    @workflow.update(
        name=Handler.CUSTOMER_ACTION.value,
        description="A customer action from the status page or storefront.",
    )
    async def customer_action(self, action: CustomerAction) -> Acted:
        """Apply a customer action; answer with the projection that holds the case after it."""
        return await self.case.once(lambda: self.case.act_as_customer(action))

    @customer_action.validator
    def validate_customer_action(self, action: CustomerAction) -> None:
        """Refuse a customer action the case can't take now."""
        if not self.case.applied_before():
            self.case.check_customer_action(action)
