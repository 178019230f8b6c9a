"""The recorder: a case's status and timeline, and everything that tells the world about them
(the DB projection, the storefront webhook, the customer's messages, the operators' mail)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Unpack, overload

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.inputs import NotifyCustomer, NotifyOps, WebhookFailure
    from domain.actions import EventType
    from domain.messages import MessageArgs, MessageFields
    from domain.models import TERMINAL_STATUSES, CaseStatus, CaseView, Channel, Deadline, Money
    from domain.names import Actor, Kind, Message, Timer, Webhook
    from workflows import calls
    from workflows.inbox import Accepts, Inbox, Pending
    from workflows.projection import Projection

TimelineKind = Kind | Message | EventType
# A partner's answer as the timeline and the escalation quote it: short and readable.
ANSWER_LIMIT = 300


def partner_answer(err: ActivityError) -> str:
    """What the partner (or the connector) said, in a line."""
    cause = err.cause
    text = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
    text = " ".join(text.split())
    return text if len(text) <= ANSWER_LIMIT else text[: ANSWER_LIMIT - 1] + "…"


@dataclass
class RecorderState:
    """What a continued run's recorder must carry on from (continue-as-new): without it the
    new run's projections would be stale revisions, its timeline entries would reuse
    sequence numbers, and its step IDs (message and event IDs) would repeat."""

    revision: int
    seq: int
    sent: dict[str, int]
    last_status: CaseStatus | None
    failed_webhooks: list[str]


class Recorder:
    """Writes the case's story and tells the DB, the storefront, the customer and operators.

    The workflow holds no timeline: entries and webhook events wait in the `Projection`
    (workflows/projection.py) for the next `sync`.
    """

    def __init__(
        self,
        view: CaseView,
        *,
        token: str,
        timezone: str,
        inbox: Inbox,
        cancellable: Callable[[], bool],
        opened_by_api: bool = True,
    ) -> None:
        self.view = view
        self.timezone = timezone
        self.inbox = inbox
        self.cancellable = cancellable
        self.projection = Projection(
            view,
            token=token,
            opened_by_api=opened_by_api,
            refresh=self._refresh,
            details=self._details,
        )
        # Webhook events the outbox gave up on, already noted (a repeated signal is ignored).
        self.failed_webhooks: set[str] = set()
        # Set while an escalation goes out: its own mail failing is noted, never escalated
        # again (no recursion, and the case never fails for it).
        self.escalating = False
        # Set while a continued run fast-forwards (workflows/continuation.py): the earlier run
        # already wrote, sent and published all of it; the carried view replaces the rebuilt one.
        self.muted = False

    @property
    def ended(self) -> bool:
        """Whether the case has reached a terminal status."""
        return self.view.status in TERMINAL_STATUSES

    def state(self) -> RecorderState:
        """The counters a continued run carries on from (call after a final `sync`)."""
        p = self.projection
        return RecorderState(
            revision=p.revision,
            seq=p.seq,
            sent=dict(p.sent),
            last_status=p.last_status,
            failed_webhooks=sorted(self.failed_webhooks),
        )

    def resume(self, state: RecorderState) -> None:
        """Carry on from a previous run; its first projection sends every field again."""
        p = self.projection
        p.revision, p.seq, p.sent = state.revision, state.seq, dict(state.sent)
        # Nothing projected in this run yet: the first projection sends every field, and a
        # message first projects (the record is whatever the last run left).
        p.last_status, p.projected, p.stored = state.last_status, None, None
        p.attributes = {}
        self.failed_webhooks = set(state.failed_webhooks)

    # ---- status and timeline ----------------------------------------------------

    def add(
        self, kind: TimelineKind, actor: str, message: str = "", data: dict[str, Any] | None = None
    ) -> None:
        """Queue an entry for the case's timeline (stored by the next projection)."""
        if self.muted:
            return
        self.projection.add(kind, actor, message, data or {})

    async def set_status(
        self,
        status: CaseStatus,
        kind: TimelineKind,
        actor: str,
        message: str = "",
        *,
        expect: Accepts | None = None,
    ) -> None:
        """Move the case to a status, note why, and project it; `expect` is what it now takes."""
        self.view.status = status
        if status == CaseStatus.RESOLVED and self.view.resolved_at is None:
            self.view.resolved_at = workflow.now()
        self.inbox.expect(expect)
        self.add(kind, actor, message)
        await self.sync()

    # ---- projection -------------------------------------------------------------

    def customer_actions(self) -> list[str]:
        """What the customer may send now (none once the case ended)."""
        return [] if self.ended else self.inbox.customer_actions(cancellable=self.cancellable())

    def agent_actions(self) -> list[str]:
        """What an agent may send now (once the case ended, only a supervisor's exception
        while it waits for one)."""
        return self.inbox.agent_actions(cancellable=self.cancellable(), ended=self.ended)

    def waiting_on(self) -> str:
        """Who must act for the case to move."""
        return "nobody" if self.ended else self.inbox.waiting_on(self.view.queue)

    async def sync(self) -> None:
        """Project what changed to the DB (and the storefront's outbox) in one activity; no
        activity when nothing changed since the last projection."""
        if self.muted:
            return
        await self.projection.sync()

    def _refresh(self) -> None:
        self.view.customer_actions = self.customer_actions()
        self.view.agent_actions = self.agent_actions()

    def _details(self) -> str:
        nxt = self.view.next_deadline
        return (
            f"**{self.view.status}** — next deadline: "
            + (f"`{nxt.name}` at {nxt.due_at.isoformat()}" if nxt else "none")
            + f" — waiting on: {self.waiting_on()}"
            + f" — queue `{self.view.queue}`, priority {self.view.priority}"
        )

    async def catch_up(self, event: Pending) -> None:
        """See an event's timeline entry projected: a step that takes the event projects it
        with what it did; an event no open wait takes is projected here, so the record
        never misses it."""

        def settled() -> bool:
            if event.done or self.ended:
                return True
            if event in self.inbox.pending:
                # Queued: wait while the case is between steps (no wait open) or a wait
                # is about to take it.
                waits = self.inbox.waits
                return bool(waits) and not any(w.matches(event.source, event.name) for w in waits)
            # Taken by a step (which projects it with what it did), or dropped. Not waiting
            # for the step to finish: a step that ends without another wait (a fast refund)
            # would hold this handler, and continue-as-new waits for every handler.
            return True

        await workflow.wait_condition(settled)
        taken = event.done or event in self.inbox.consumed
        if self.projection.entries and not taken:
            await self.sync()

    def next_step(self, name: str) -> str:
        """A step ID unique within the case: steps repeat (a second reminder, review)."""
        return self.projection.next_step(name)

    async def publish(self, event_type: str, data: Money | Mapping[str, Any] | None = None) -> None:
        """Tell the storefront about the case through its webhook (via the outbox)."""
        if self.muted:
            return
        self.projection.queue_webhook(event_type, data)
        await self.sync()

    async def notify(
        self,
        message: Message,
        *,
        deadline: Deadline | None = None,
        channel: Channel | None = None,
        **args: Unpack[MessageFields],
    ) -> None:
        """Send the customer a message over their channel (or `channel`), exactly once per step.

        The activity reads the case from its record, so a change the message could read is
        projected first (timeline entries and deadlines wait for the next projection). A
        message that can't be delivered escalates; the case goes on without it.
        """
        if self.muted:
            return
        what = f"The customer's {message} message"
        step = self.next_step(message)

        async def send() -> None:
            if self.projection.unseen_by_messages():
                await self.sync()
            status = await calls.notify_customer(
                NotifyCustomer(
                    case_id=self.view.id,
                    message=message,
                    step=step,
                    timezone=self.timezone,
                    deadline=deadline,
                    args=MessageArgs.model_validate(args),
                    channel=channel,
                )
            )
            if status == "failed":
                # Refused for good (a 4xx from the SMS gateway, a bad address): the activity
                # logged it; an agent must reach the customer another way.
                await self.noted_failure(partner=Actor.MESSAGING, what=what, answer="undeliverable")

        await self.tolerating(send(), partner=Actor.MESSAGING, what=what)

    async def escalate(
        self,
        *,
        reason: str,
        timer: Timer | None = None,
        actor: str = Actor.TIMER,
        publish: bool = True,
    ) -> None:
        """Record a breach, raise the priority and tell the operations contacts (and, unless
        `publish` is False, the storefront)."""
        if self.muted:
            return
        if timer:
            self.view.sla_breached = True
        self.view.priority = self.view.priority.raised()
        self.add(Kind.ESCALATED, actor, reason, {"timer": timer} if timer else {})
        step = self.next_step("escalation")
        if publish:
            self.projection.queue_webhook(Webhook.ESCALATED, {"reason": reason, "timer": timer})
        # The mail reads the case from its record: project the escalation first.
        await self.sync()
        mail = calls.notify_ops(
            NotifyOps(
                case_id=self.view.id, step=step, timer=timer, reason=reason, timezone=self.timezone
            )
        )
        nested, self.escalating = self.escalating, True
        try:
            await self.tolerating(mail, partner=Actor.MESSAGING, what="The operators' mail")
        finally:
            self.escalating = nested

    async def webhook_failed(self, failure: WebhookFailure) -> None:
        """The outbox gave up on a webhook event (a 4xx, or retries exhausted): note the
        storefront's answer and escalate, without a webhook for this escalation (no loop)."""
        if failure.event_id in self.failed_webhooks:
            return
        self.failed_webhooks.add(failure.event_id)
        what = f"The {failure.event_type} webhook"
        answer = " ".join(failure.answer.split())[:ANSWER_LIMIT]
        self.add(
            Kind.CONNECTOR_FAILED,
            Actor.STOREFRONT,
            f"{what} failed: {answer}",
            {"connector": Actor.STOREFRONT.value, "answer": answer, "event_id": failure.event_id},
        )
        if self.ended:
            await self.sync()
            return
        await self.escalate(
            reason=f"{what} failed: {answer}", actor=Actor.STOREFRONT, publish=False
        )

    async def tolerating(self, call: Awaitable[None], *, partner: Actor, what: str) -> None:
        """Run a side effect the case can go on without; if the partner fails it, note the
        answer on the timeline and escalate (unless this is an escalation going out)."""
        try:
            await call
        except ActivityError as err:
            await self.noted_failure(partner=partner, what=what, answer=partner_answer(err))

    async def noted_failure(self, *, partner: Actor, what: str, answer: str) -> None:
        """Note a partner's refusal on the timeline and escalate it (once: never from inside
        an escalation)."""
        self.add(
            Kind.CONNECTOR_FAILED,
            partner,
            f"{what} failed: {answer}",
            {"connector": partner.value, "answer": answer},
        )
        if not self.escalating:
            await self.escalate(reason=f"{what} failed: {answer}", actor=partner)
        else:
            await self.sync()

    @overload
    def money(self, amount: Decimal) -> Money: ...
    @overload
    def money(self, amount: Decimal | None) -> Money | None: ...
    def money(self, amount: Decimal | None) -> Money | None:
        """An amount in the order's currency, as messages and webhooks carry it."""
        if amount is None:
            return None
        return Money(amount=amount, currency=self.view.order.currency)
