"""The shared case machinery every case type runs on.

A case is one workflow. Agents act through updates (validated before anything is
written), customers through updates of their own, and integrations through signals
deduplicated by `event_id`. Every wait has a named deadline; a breached one escalates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, overload

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.carriers import CarrierActivities
    from activities.inputs import (
        BookPickup,
        CarrierBooking,
        NotifyCustomer,
        NotifyOps,
        PublishWebhook,
        RecordCase,
        RefundResult,
        RequestRefund,
        RequestShipment,
    )
    from activities.notify import NotifyActivities
    from activities.payments import PaymentActivities
    from activities.records import RecordActivities
    from domain.actions import (
        AgentAction,
        Approve,
        CustomerAction,
        EventType,
        IntegrationEvent,
        Rate,
        Reject,
        Reply,
        RequestInfo,
    )
    from domain.calendar import BusinessCalendar, describe
    from domain.models import (
        TERMINAL_STATUSES,
        CaseRequest,
        CaseStatus,
        CaseView,
        Deadline,
        Decision,
        ExchangeItem,
        Item,
        Priority,
        Refund,
        Shipment,
        TimelineEntry,
    )
    from domain.policy import Policy
    from workflows import search

ACTIVITY_TIMEOUT = timedelta(seconds=60)
# Connectors retry 5xx and timeouts with backoff; a 4xx is final (non-retryable error type).
CONNECTOR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=["ConnectorRejected"],
)
CANCELLABLE = frozenset(
    {
        CaseStatus.OPEN,
        CaseStatus.AWAITING_REVIEW,
        CaseStatus.AWAITING_CUSTOMER,
        CaseStatus.AWAITING_SHIPMENT,
    }
)
# Who reports each family of integration events, for the operators' "waiting on" line.
_EVENT_SOURCES = {
    "carrier": "carrier",
    "warehouse": "warehouse",
    "inspection": "warehouse",
    "refund": "payment provider",
    "replacement": "warehouse",
    "repair": "repair centre",
    "customer": "storefront (customer payment)",
}
# Agent actions a case takes at any step before it ends.
ANYTIME_ACTIONS = frozenset({"note", "assign", "escalate"})

Input = AgentAction | CustomerAction | IntegrationEvent


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
    holidays: dict[int, list[date]] = field(default_factory=dict)
    queue: str = "customer_service"
    parent_case_id: str | None = None
    # Decided at open (a complaint's severity); escalations raise it from there.
    priority: Priority = Priority.NORMAL


@dataclass
class Accepts:
    """What a wait takes: agent actions, customer actions and integration events, by name."""

    agent: frozenset[str] = frozenset()
    customer: frozenset[str] = frozenset()
    events: frozenset[EventType] = frozenset()

    def covered_by(self, other: Accepts) -> bool:
        """Whether `other` takes everything this takes."""
        return (
            self.agent <= other.agent
            and self.customer <= other.customer
            and self.events <= other.events
        )

    def matches(self, item: _Pending) -> bool:
        """Whether this wait takes the item."""
        if item.source == "event":
            return item.name in self.events
        names = self.agent if item.source == "agent" else self.customer
        return item.name in names


@dataclass
class _Pending:
    source: Literal["agent", "customer", "event"]
    name: str
    body: Input
    done: bool = False
    error: str | None = None


class CaseEnded(Exception):
    """Raised inside a case's steps to end it early (cancelled, expired, rejected)."""

    def __init__(self, status: CaseStatus, kind: str, message: str, actor: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.actor = status, kind, message, actor


class CaseWorkflow:
    """State, handlers, deadlines, escalation and projection shared by every case type."""

    @workflow.init
    def __init__(self, input: CaseInput) -> None:
        self.input = input
        self.policy = input.policy
        self.calendar = BusinessCalendar.from_policy(input.policy, input.holidays)
        request = input.request
        self.view = CaseView(
            id=input.case_id,
            type=request.type,
            status=CaseStatus.OPEN,
            order=request.order,
            customer=request.customer,
            items=request.items,
            reason=request.reason,
            description=request.description,
            evidence=request.evidence,
            exchange_for=request.exchange_for,
            complaint=request.complaint,
            decision=input.decision,
            queue=input.queue,
            priority=input.priority,
            parent_case_id=input.parent_case_id,
            status_url=input.status_url,
            created_at=input.opened_at,
            updated_at=input.opened_at,
        )
        self._inbox: list[_Pending] = []
        self._seen_events: set[str] = set()
        self._consumed: list[_Pending] = []
        self._waits: list[Accepts] = []
        # What the current step will take once it starts waiting: set with the status, so
        # an action sent the moment the status shows is never refused.
        self._expected = Accepts()
        self._revision = 0
        self._sent: dict[str, int] = {}
        self._last_status: CaseStatus | None = None

    # ---- handlers -------------------------------------------------------------

    @workflow.query(name="state", description="The case as the API shows it.")
    def state(self) -> CaseView:
        """The live case."""
        return self.view

    @workflow.signal(
        name="event", description="An integration event; repeats of an event_id are ignored."
    )
    def event(self, event: IntegrationEvent) -> None:
        """Take an integration event once."""
        if event.event_id in self._seen_events or self.ended:
            return
        self._seen_events.add(event.event_id)
        self.add_timeline(event.type.value, "integration", _event_message(event), event.data)
        self._inbox.append(_Pending("event", event.type.value, event))

    @workflow.update(
        name="action", description="An agent action (approve, reject, request_info, ...)."
    )
    async def action(self, action: AgentAction) -> CaseView:
        """Apply an agent action and answer with the case after it."""
        actor = action.actor or "agent"
        if action.action == "note":
            self.add_timeline("note", actor, action.message)
            await self.sync()
            return self.view
        if action.action == "assign":
            self.view.assignee = action.agent or self.view.assignee
            self.view.queue = action.queue or self.view.queue
            self.add_timeline("assigned", actor, f"Assigned to {action.agent or action.queue}.")
            await self.sync()
            return self.view
        if action.action == "escalate":
            await self.escalate(reason=action.reason or "Escalated by an agent.", actor=actor)
            return self.view
        return await self._handed_over(_Pending("agent", action.action, action))

    @action.validator
    def validate_action(self, action: AgentAction) -> None:
        """Refuse an agent action the case can't take now, before anything is written."""
        if self.ended or (
            action.action not in ANYTIME_ACTIONS and not self._accepting("agent", action.action)
        ):
            raise ApplicationError(
                f"A case in status {self.view.status} can't take {action.action!r} now.",
                type="action_not_allowed",
            )

    @workflow.update(
        name="customer_action", description="A customer action from the status page or storefront."
    )
    async def customer_action(self, action: CustomerAction) -> CaseView:
        """Apply a customer action and answer with the case after it."""
        return await self._handed_over(_Pending("customer", action.action, action))

    @customer_action.validator
    def validate_customer_action(self, action: CustomerAction) -> None:
        """Refuse a customer action the case can't take now."""
        if self.ended or not self._accepting("customer", action.action):
            raise ApplicationError(
                f"A case in status {self.view.status} can't take {action.action!r} now.",
                type="action_not_allowed",
            )

    async def _handed_over(self, pending: _Pending) -> CaseView:
        self._inbox.append(pending)
        # Answer once the case has acted on it and settled at its next wait.
        await workflow.wait_condition(lambda: pending.done)
        if pending.error:
            raise ApplicationError(pending.error, type="action_not_allowed")
        return self.view

    def _accepting(self, source: Literal["agent", "customer"], name: str) -> bool:
        if name == "cancel":
            return self.cancellable
        probe = _Pending(source, name, None)  # type: ignore[arg-type]
        return any(accepts.matches(probe) for accepts in [*self._waits, self._expected])

    @property
    def cancellable(self) -> bool:
        """Whether a cancel is taken now; a case type holding the customer's item narrows it."""
        return self.view.status in CANCELLABLE

    def waiting_on(self) -> str:
        """Who must act for the case to move: agent, customer, carrier or warehouse, payment."""
        if self.ended:
            return "nobody"
        accepts = [*self._waits, self._expected]
        who = []
        if any(a.agent - {"cancel", "mark_malicious"} for a in accepts):
            who.append(f"agent (`{self.view.queue}` queue)")
        if any(a.customer - {"cancel"} for a in accepts):
            who.append("customer")
        events = {e.value.split(".")[0] for a in accepts for e in a.events}
        who += sorted(_EVENT_SOURCES.get(source, source) for source in events)
        return ", ".join(dict.fromkeys(who)) or "the system"

    def _customer_actions(self) -> list[str]:
        """The customer actions the case takes now, sorted; the validator admits the same."""
        if self.ended:
            return []
        names = {name for a in [*self._waits, self._expected] for name in a.customer}
        # A cancel rides along in every wait but is taken only while the status allows it.
        names.discard("cancel")
        if self.cancellable:
            names.add("cancel")
        return sorted(names)

    @property
    def ended(self) -> bool:
        """Whether the case has reached a terminal status."""
        return self.view.status in TERMINAL_STATUSES

    # ---- waiting on deadlines -------------------------------------------------

    async def wait(self, accepts: Accepts, timer: str | None) -> Input | None:
        """Wait for an input the step accepts, until the named timer runs out (then None)."""
        return await self.wait_until(accepts, timer, self.due(timer) if timer else None)

    async def wait_until(
        self, accepts: Accepts, timer: str | None, due_at: datetime | None
    ) -> Input | None:
        """Wait for an input the step accepts until `due_at`; None when the deadline passes."""
        # A cancel is taken only while the status allows one: a cancel queued at open must not
        # end a case that has since refunded.
        cancel = frozenset({"cancel"}) if self.cancellable else frozenset()
        cancellable = Accepts(
            agent=accepts.agent | cancel, customer=accepts.customer | cancel, events=accepts.events
        )
        self._waits.append(cancellable)
        # Only the wait the status announced takes over its expectation; a refund settling
        # alongside (fast refund) must not make the main step refuse what it is about to take.
        if self._expected.covered_by(cancellable):
            self._expected = Accepts()
        if timer and due_at:
            self.set_deadline(timer, due_at)
        await self.sync()
        self._finish_consumed()
        self._refuse_stale()
        try:
            found = self._take(cancellable)
            if found is None:
                timeout = max(due_at - workflow.now(), timedelta(0)) if due_at else None
                summary = f"{timer} — {describe(self.policy.timer(timer))}" if timer else None
                try:
                    await workflow.wait_condition(
                        lambda: self._peek(cancellable) is not None,
                        timeout=timeout,
                        timeout_summary=summary,
                    )
                except TimeoutError:
                    return None
                found = self._take(cancellable)
        finally:
            self._waits.remove(cancellable)
            if timer:
                self._clear_deadline(timer)
        assert found is not None
        self._consumed.append(found)
        if found.name == "cancel" and found.source != "event":
            actor = found.body.actor or found.source  # type: ignore[union-attr]
            raise CaseEnded(CaseStatus.CANCELLED, "cancelled", "The case was cancelled.", actor)
        return found.body

    def _peek(self, accepts: Accepts) -> _Pending | None:
        return next((item for item in self._inbox if accepts.matches(item)), None)

    def _take(self, accepts: Accepts) -> _Pending | None:
        item = self._peek(accepts)
        if item is not None:
            self._inbox.remove(item)
        return item

    def refuse_last(self, reason: str) -> None:
        """Answer the action just taken with an error: the step can't use it as given."""
        if self._consumed:
            self._consumed[-1].error = reason

    @overload
    def money(self, amount: Decimal) -> dict[str, str]: ...
    @overload
    def money(self, amount: Decimal | None) -> dict[str, str] | None: ...
    def money(self, amount: Decimal | None) -> dict[str, str] | None:
        """An amount in the order's currency, as messages and webhooks carry it."""
        if amount is None:
            return None
        return {"amount": str(amount), "currency": self.view.order.currency}

    def discard_events(self, types: frozenset[EventType]) -> None:
        """Drop queued events of an earlier step (e.g. the inbound parcel's delivery)."""
        self._inbox = [
            item for item in self._inbox if not (item.source == "event" and item.name in types)
        ]

    def _refuse_stale(self) -> None:
        """Answer queued actions no wait takes any more (e.g. a second approve sent with the
        first): the validator let them in, but the step they were meant for has passed."""
        live = [*self._waits, self._expected]
        for item in list(self._inbox):
            if item.source != "event" and not any(accepts.matches(item) for accepts in live):
                self._inbox.remove(item)
                item.error = f"A case in status {self.view.status} can't take {item.name!r} now."
                item.done = True

    def _finish_consumed(self) -> None:
        for item in self._consumed:
            item.done = True
        self._consumed.clear()

    def set_deadline(self, name: str, due_at: datetime) -> None:
        """List a deadline on the case (replacing one of the same name)."""
        self._clear_deadline(name)
        self.view.deadlines.append(Deadline(name=name, due_at=due_at))

    def _clear_deadline(self, name: str) -> None:
        self.view.deadlines = [d for d in self.view.deadlines if d.name != name]

    def due(self, timer: str) -> datetime:
        """When a timer started now runs out, on the business calendar where it says so."""
        return self.calendar.add(workflow.now(), self.policy.timer(timer))

    async def wait_escalating(
        self, accepts: Accepts, timer: str, due_at: datetime | None = None
    ) -> Input:
        """Wait under a timer whose breach escalates once, then keep waiting, listed overdue.

        Pass `due_at` to go on with a deadline set earlier; one already past isn't escalated again.
        """
        due_at = due_at or self.due(timer)
        if workflow.now() < due_at:
            found = await self.wait_until(accepts, timer, due_at)
            if found is not None:
                return found
            await self.breach(timer, due_at, f"The {timer} deadline passed.")
        return await self.wait_overdue(accepts, timer, due_at)

    async def breach(self, timer: str, due_at: datetime, reason: str) -> None:
        """Escalate a passed deadline, listing it overdue from the moment the breach shows."""
        self.set_deadline(timer, due_at)
        await self.escalate(reason=reason, timer=timer)

    async def wait_overdue(self, accepts: Accepts, timer: str, due_at: datetime) -> Input:
        """Keep waiting past a deadline, listed so lists and `NextDeadline` show it overdue."""
        self.set_deadline(timer, due_at)
        found = await self.wait_until(accepts, None, None)
        self._clear_deadline(timer)
        assert found is not None
        return found

    async def wait_reminding(
        self,
        accepts: Accepts,
        timer: str,
        reminder_message: str,
        *,
        due_at: datetime | None = None,
        **extra: Any,
    ) -> Input | None:
        """Wait under a timer with a reminder on the way; None when the timer runs out."""
        due_at = due_at or self.due(timer)
        remind_at = self.due(f"{timer}_reminder")
        self.set_deadline(timer, due_at)
        found = await self.wait_until(accepts, f"{timer}_reminder", remind_at)
        if found is None:
            await self.notify(
                reminder_message, deadline=Deadline(name=timer, due_at=due_at), **extra
            )
            found = await self.wait_until(accepts, timer, due_at)
        self._clear_deadline(timer)
        return found

    async def expire(self, timer: str) -> None:
        """End the case because the customer let a deadline pass."""
        await self.notify("case_expired", timer=timer)
        raise CaseEnded(
            CaseStatus.EXPIRED, "expired", f"No answer before the {timer} deadline.", "timer"
        )

    # ---- status, timeline, projection -----------------------------------------

    def add_timeline(
        self, kind: str, actor: str, message: str = "", data: dict[str, Any] | None = None
    ) -> None:
        """Append an entry to the case's timeline."""
        self.view.timeline.append(
            TimelineEntry(
                at=workflow.now(), kind=kind, actor=actor, message=message, data=data or {}
            )
        )
        self.view.updated_at = workflow.now()

    async def set_status(
        self,
        status: CaseStatus,
        kind: str,
        actor: str,
        message: str = "",
        *,
        expect: Accepts | None = None,
    ) -> None:
        """Move the case to a status, note why, and project it; `expect` is what it now takes."""
        self.view.status = status
        self._expected = expect or Accepts()
        self.add_timeline(kind, actor, message)
        await self.sync()

    async def sync(self) -> None:
        """Project the case to the DB, the storefront and the operators' view, where it changed."""
        self._revision += 1
        self.view.customer_actions = self._customer_actions()
        nxt = self.view.next_deadline
        workflow.upsert_search_attributes(search.updates(self.view))
        workflow.set_current_details(
            f"**{self.view.status}** — next deadline: "
            + (f"`{nxt.name}` at {nxt.due_at.isoformat()}" if nxt else "none")
            + f" — waiting on: {self.waiting_on()}"
            + f" — queue `{self.view.queue}`, priority {self.view.priority}"
        )
        record = workflow.execute_activity_method(
            RecordActivities.record_case,
            RecordCase(view=self.view, token=self.input.token, revision=self._revision),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            summary=f"record {self.view.id} as {self.view.status}",
        )
        if self.view.status == self._last_status:
            await record
            return
        self._last_status = self.view.status
        webhook = self.publish(f"case.{self.view.status}")
        await asyncio.gather(record, webhook)

    async def publish(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """Tell the storefront about the case through its webhook."""
        step = self._next_step(event_type)
        await workflow.execute_activity_method(
            NotifyActivities.publish_webhook,
            PublishWebhook(
                view=self.view,
                event_type=event_type,
                event_id=f"{self.view.id}:{step}",
                data=data or {},
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=CONNECTOR_RETRY,
            summary=f"webhook {event_type}",
        )

    def _next_step(self, name: str) -> str:
        # Steps repeat (a second reminder, a second review); numbering keeps each ID unique.
        self._sent[name] = self._sent.get(name, 0) + 1
        return f"{name}.{self._sent[name]}"

    async def notify(self, message: str, *, deadline: Deadline | None = None, **extra: Any) -> None:
        """Send the customer a message over their channel, exactly once per step."""
        await workflow.execute_activity_method(
            NotifyActivities.notify_customer,
            NotifyCustomer(
                view=self.view,
                message=message,
                step=self._next_step(message),
                timezone=self.policy.timezone,
                deadline=deadline,
                extra=extra,
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=CONNECTOR_RETRY,
            summary=f"tell the customer: {message}",
        )

    async def escalate(
        self, *, reason: str, timer: str | None = None, actor: str = "timer"
    ) -> None:
        """Record a breach, raise the priority and tell the operations contacts."""
        if timer:
            self.view.sla_breached = True
        self.view.priority = self.view.priority.raised()
        self.add_timeline("escalated", actor, reason, {"timer": timer} if timer else {})
        step = self._next_step("escalation")
        await asyncio.gather(
            self.sync(),
            workflow.execute_activity_method(
                NotifyActivities.notify_ops,
                NotifyOps(
                    view=self.view,
                    step=step,
                    timer=timer,
                    reason=reason,
                    timezone=self.policy.timezone,
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=CONNECTOR_RETRY,
                summary=f"escalate: {reason}",
            ),
            self.publish("case.escalated", {"reason": reason, "timer": timer}),
        )

    async def end(self, status: CaseStatus, kind: str, actor: str, message: str) -> CaseView:
        """Finish the case in a terminal status."""
        self.view.deadlines = []
        await self.set_status(status, kind, actor, message)
        self._finish_consumed()
        for item in self._inbox:
            # Actions still queued can never be taken now; answer them instead of hanging.
            if item.source != "event":
                item.error, item.done = "The case has ended.", True
        # Updates still in flight get their answer before the workflow completes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.view

    async def run_case(self, lifecycle: Any) -> CaseView:
        """Run a case type's lifecycle, ending it cleanly when a step ends it early."""
        self.add_timeline("opened", "storefront", f"{self.view.type.value.title()} case opened.")
        await self.sync()
        try:
            await lifecycle()
        except CaseEnded as ended:
            if ended.status == CaseStatus.CANCELLED:
                await self.notify("case_cancelled")
            return await self.end(ended.status, ended.kind, ended.actor, ended.message)
        return await self.end(CaseStatus.CLOSED, "closed", "timer", "The case is closed.")

    # ---- steps shared by case types -------------------------------------------

    async def reject_ineligible(self) -> None:
        """End a case the policy refuses, saying which rules fired and what else to do."""
        reasons = "; ".join(
            rule.message for rule in self.view.decision.rules if rule.id != "in_window"
        )
        self.view.status = CaseStatus.REJECTED
        # No agent's words: the message explains the rules that fired, in the customer's language.
        await self.notify("case_rejected", reason=None)
        raise CaseEnded(CaseStatus.REJECTED, "rejected", reasons, "policy")

    async def review(self) -> None:
        """Auto-approve or wait for an agent; request_info loops through the customer."""
        if self.view.decision.review == "auto":
            self.add_timeline(
                "approved", "policy", "Approved automatically under the return policy."
            )
            return
        accepts = Accepts(agent=frozenset({"approve", "reject", "request_info"}))
        while True:
            await self.set_status(
                CaseStatus.AWAITING_REVIEW, "awaiting_review", "system", expect=accepts
            )
            due_at = self.due("review")
            decided = await self.wait_until(accepts, "review", due_at)
            if decided is None:
                await self.breach("review", due_at, "No agent reviewed the case in time.")
                if self.policy.returns.auto_approve_on_review_timeout:
                    self.add_timeline(
                        "approved", "policy", "Approved when the review deadline passed."
                    )
                    return
                decided = await self.wait_overdue(accepts, "review", due_at)
            actor = getattr(decided, "actor", None) or "agent"
            if isinstance(decided, Approve):
                self.add_timeline("approved", actor, decided.notes or "Approved by an agent.")
                return
            if isinstance(decided, Reject):
                self.view.status = CaseStatus.REJECTED
                await self.notify("case_rejected", reason=decided.reason)
                raise CaseEnded(CaseStatus.REJECTED, "rejected", decided.reason, actor)
            assert isinstance(decided, RequestInfo)
            await self.ask_customer(decided.question, actor)

    async def ask_customer(self, question: str, actor: str) -> None:
        """Ask the customer for information and wait for the reply (reminder, then expiry)."""
        replies = Accepts(customer=frozenset({"reply"}))
        due_at = self.due("customer_info")
        self.set_deadline("customer_info", due_at)
        await self.set_status(
            CaseStatus.AWAITING_CUSTOMER, "info_requested", actor, question, expect=replies
        )
        await self.notify(
            "info_needed", deadline=Deadline(name="customer_info", due_at=due_at), question=question
        )
        reply = await self.wait_reminding(
            replies, "customer_info", "info_reminder", due_at=due_at, question=question
        )
        if reply is None:
            await self.expire("customer_info")
        assert isinstance(reply, Reply)
        self.view.evidence = [*self.view.evidence, *reply.evidence]
        self.add_timeline("customer_replied", "customer", reply.message)

    async def refund(self, amount: Decimal, *, reason: str, timer: str = "refund") -> None:
        """Refund once per case through the payment connector, and wait until it settles."""
        if self.view.refund is not None:
            return  # exactly one refund per case, whichever path asks first
        currency = self.view.order.currency
        # Providers get the amount in the currency's minor units, e.g. "297.00", never "297".
        amount = amount.quantize(Decimal(1).scaleb(-self.policy.currency_minor_units))
        self.view.refund = Refund(amount=amount, currency=currency, status="requested")
        self.add_timeline("refund_requested", "system", f"Refund of {currency} {amount} requested.")
        try:
            result: RefundResult = await workflow.execute_activity_method(
                PaymentActivities.request_refund,
                RequestRefund(
                    case_id=self.view.id,
                    order_id=self.view.order.id,
                    amount=amount,
                    currency=currency,
                    payment_method=self.view.order.payment_method,
                    reason=reason,
                    idempotency_key=f"{self.view.id}:refund",
                ),
                start_to_close_timeout=ACTIVITY_TIMEOUT,
                retry_policy=CONNECTOR_RETRY,
                summary=f"refund {currency} {amount} to {self.view.order.payment_method}",
            )
        except ActivityError as err:
            self.view.refund.status = "failed"
            await self.escalate(
                reason=f"The payment provider refused the refund: {_cause(err)}", actor="payment"
            )
            await self._await_settlement(timer=None)
            return
        self.view.refund.refund_id = result.refund_id
        if result.status == "succeeded":
            await self._refund_settled()
            return
        self.view.refund.status = "pending"
        await self._await_settlement(timer=timer)

    async def _await_settlement(self, *, timer: str | None) -> None:
        accepts = Accepts(events=frozenset({EventType.REFUND_SETTLED, EventType.REFUND_FAILED}))
        while True:
            event = await (
                self.wait_escalating(accepts, timer) if timer else self.wait(accepts, None)
            )
            assert isinstance(event, IntegrationEvent) and self.view.refund is not None
            if event.type == EventType.REFUND_SETTLED:
                self.view.refund.refund_id = (
                    event.data.get("refund_id") or self.view.refund.refund_id
                )
                await self._refund_settled()
                return
            self.view.refund.status = "failed"
            # Never a second refund call: an agent settles it with the provider, who reports back.
            await self.escalate(
                reason="The payment provider reported the refund failed.", actor="payment"
            )
            timer = None

    async def _refund_settled(self) -> None:
        assert self.view.refund is not None
        self.view.refund.status = "succeeded"
        self.add_timeline(
            "refund_succeeded",
            "payment",
            f"Refunded {self.view.refund.currency} {self.view.refund.amount}.",
        )
        await self.sync()
        await self.notify("refund_sent")

    async def settle_refund(self, task: asyncio.Task[None] | None) -> None:
        """Wait in `refund_pending` for a refund started alongside other steps."""
        if task is None:
            return
        if not task.done():
            await self.set_status(CaseStatus.REFUND_PENDING, "refund_pending", "system")
        await task

    async def book_pickup(self, attempt: int) -> CarrierBooking:
        """Book a carrier pickup at the customer's address."""
        booking: CarrierBooking = await workflow.execute_activity_method(
            CarrierActivities.book_pickup,
            BookPickup(
                case_id=self.view.id,
                address=self.view.customer.address,
                parcels=self.view.items,
                idempotency_key=f"{self.view.id}:pickup.{attempt}",
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=CONNECTOR_RETRY,
            summary=f"book carrier pickup #{attempt}",
        )
        inbound = self.inbound_shipment(create=True)
        inbound.booked_by = "seller"
        inbound.tracking_number = booking.tracking_number
        inbound.label_url = booking.label_url
        self.add_timeline(
            "pickup_booked", "carrier", f"Pickup booked, tracking number {booking.tracking_number}."
        )
        return booking

    async def ship_to_customer(
        self, items: Sequence[Item | ExchangeItem], step: str
    ) -> CarrierBooking:
        """Ask the carrier to ship items to the customer."""
        booking: CarrierBooking = await workflow.execute_activity_method(
            CarrierActivities.request_shipment,
            RequestShipment(
                case_id=self.view.id,
                address=self.view.customer.address,
                items=list(items),
                idempotency_key=f"{self.view.id}:{step}",
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=CONNECTOR_RETRY,
            summary=f"ship {len(items)} item(s) to the customer",
        )
        self.view.shipments.append(
            Shipment(
                direction="outbound", booked_by="seller", tracking_number=booking.tracking_number
            )
        )
        self.add_timeline(
            "shipment_booked", "carrier", f"Shipment booked, tracking {booking.tracking_number}."
        )
        return booking

    def inbound_shipment(self, *, create: bool = False) -> Shipment:
        """The parcel coming back from the customer."""
        for shipment in self.view.shipments:
            if shipment.direction == "inbound":
                return shipment
        shipment = Shipment(direction="inbound")
        if create:
            self.view.shipments.append(shipment)
        return shipment

    async def offer(
        self,
        message: str,
        *,
        answers: Accepts | None = None,
        timer: str = "offer_response",
        **extra: Any,
    ) -> Input | None:
        """Put an offer to the customer and wait for the answer; None when nobody answers."""
        answers = answers or Accepts(customer=frozenset({"accept", "decline"}))
        due_at = self.due(timer)
        # Listed with the status, so the storefront's webhook already carries the deadline.
        self.set_deadline(timer, due_at)
        await self.set_status(CaseStatus.AWAITING_CUSTOMER, message, "system", expect=answers)
        await self.notify(message, deadline=Deadline(name=timer, due_at=due_at), **extra)
        return await self.wait_until(answers, timer, due_at)

    async def follow_up(self, timer: str = "follow_up") -> None:
        """Resolved: wait, send the survey, and close with or without a rating."""
        if self.input.parent_case_id:
            # A child case (a complaint's return, exchange or repair) closes once its outcome is
            # delivered: its parent follows up with the customer, once, and waits for it to end.
            await self.set_status(CaseStatus.RESOLVED, "resolved", "system")
            return
        rate = Accepts(customer=frozenset({"rate"}))
        await self.set_status(CaseStatus.RESOLVED, "resolved", "system", expect=rate)
        # A customer may rate before the survey goes out; then no survey is needed.
        rating = await self.wait(rate, timer)
        if rating is None:
            survey_due = self.due("survey")
            await self.notify("survey", deadline=Deadline(name="survey", due_at=survey_due))
            rating = await self.wait_until(rate, "survey", survey_due)
        if rating is None:
            self.add_timeline("survey_expired", "timer", "No rating before the survey closed.")
            return
        assert isinstance(rating, Rate)
        self.view.rating = rating.score
        self.add_timeline("rated", "customer", rating.comment, {"score": rating.score})


def _event_message(event: IntegrationEvent) -> str:
    return f"{event.type.value} reported."


def _cause(err: ActivityError) -> str:
    cause = err.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause or err)
