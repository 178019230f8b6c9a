"""The recorder: a case's status and timeline, and everything that tells the world about them
(the DB projection, the storefront webhook, the customer's messages, the operators' mail)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, overload

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.inputs import NotifyCustomer, NotifyOps, PublishWebhook, RecordCase
    from domain.actions import EventType
    from domain.models import TERMINAL_STATUSES, CaseStatus, CaseView, Deadline, TimelineEntry
    from domain.names import Actor, Kind, Message, Timer, Webhook, status_webhook
    from workflows import calls, search
    from workflows.inbox import Accepts, Inbox

TimelineKind = Kind | Message | EventType
# A partner's answer as the timeline and the escalation quote it: short and readable.
ANSWER_LIMIT = 300


def partner_answer(err: ActivityError) -> str:
    """What the partner (or the connector) said, in a line."""
    cause = err.cause
    text = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
    text = " ".join(text.split())
    return text if len(text) <= ANSWER_LIMIT else text[: ANSWER_LIMIT - 1] + "…"


class Recorder:
    """Writes the case's story and tells the DB, the storefront, the customer and operators."""

    def __init__(
        self,
        view: CaseView,
        *,
        token: str,
        timezone: str,
        inbox: Inbox,
        cancellable: Callable[[], bool],
    ) -> None:
        self.view = view
        self.token = token
        self.timezone = timezone
        self.inbox = inbox
        self.cancellable = cancellable
        self.revision = 0
        self.sent: dict[str, int] = {}
        self.last_status: CaseStatus | None = None
        # Set while an escalation goes out: its own mail or webhook failing is noted, never
        # escalated again (no recursion, and the case never fails for it).
        self.escalating = False
        # Set while a continued run fast-forwards (workflows/continuation.py): the earlier run
        # already wrote, sent and published all of it; the carried view replaces the rebuilt one.
        self.muted = False

    @property
    def ended(self) -> bool:
        """Whether the case has reached a terminal status."""
        return self.view.status in TERMINAL_STATUSES

    # ---- status and timeline ----------------------------------------------------

    def add(
        self, kind: TimelineKind, actor: str, message: str = "", data: dict[str, Any] | None = None
    ) -> None:
        """Append an entry to the case's timeline."""
        if self.muted:
            return
        self.view.timeline.append(
            TimelineEntry(
                at=workflow.now(), kind=kind, actor=actor, message=message, data=data or {}
            )
        )
        self.view.updated_at = workflow.now()

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
        self.inbox.expect(expect)
        self.add(kind, actor, message)
        await self.sync()

    # ---- projection -------------------------------------------------------------

    def customer_actions(self) -> list[str]:
        """What the customer may send now (none once the case ended)."""
        return [] if self.ended else self.inbox.customer_actions(cancellable=self.cancellable())

    def waiting_on(self) -> str:
        """Who must act for the case to move."""
        return "nobody" if self.ended else self.inbox.waiting_on(self.view.queue)

    async def sync(self) -> None:
        """Project the case to the DB, the storefront and the operators' view, where it changed."""
        if self.muted:
            return
        self.revision += 1
        self.view.customer_actions = self.customer_actions()
        nxt = self.view.next_deadline
        workflow.upsert_search_attributes(search.updates(self.view))
        workflow.set_current_details(
            f"**{self.view.status}** — next deadline: "
            + (f"`{nxt.name}` at {nxt.due_at.isoformat()}" if nxt else "none")
            + f" — waiting on: {self.waiting_on()}"
            + f" — queue `{self.view.queue}`, priority {self.view.priority}"
        )
        record = calls.record_case(
            RecordCase(view=self.view, token=self.token, revision=self.revision)
        )
        if self.view.status == self.last_status:
            await record
            return
        self.last_status = self.view.status
        webhook = self.tolerating(
            self.publish(status_webhook(self.view.status)),
            partner=Actor.STOREFRONT,
            what=f"The {status_webhook(self.view.status)} webhook",
        )
        await asyncio.gather(record, webhook)

    # ---- telling the world ------------------------------------------------------

    def next_step(self, name: str) -> str:
        """A step ID unique within the case: steps repeat (a second reminder, review)."""
        self.sent[name] = self.sent.get(name, 0) + 1
        return f"{name}.{self.sent[name]}"

    async def publish(self, event_type: str, data: dict[str, Any] | None = None) -> None:
        """Tell the storefront about the case through its webhook."""
        if self.muted:
            return
        step = self.next_step(event_type)
        await calls.publish_webhook(
            PublishWebhook(
                view=self.view,
                event_type=event_type,
                event_id=f"{self.view.id}:{step}",
                data=data or {},
            )
        )

    async def notify(
        self, message: Message, *, deadline: Deadline | None = None, **extra: Any
    ) -> None:
        """Send the customer a message over their channel, exactly once per step.

        A message that can't be delivered escalates; the case goes on without it.
        """
        if self.muted:
            return
        what = f"The customer's {message} message"

        async def send() -> None:
            status = await calls.notify_customer(
                NotifyCustomer(
                    view=self.view,
                    message=message,
                    step=self.next_step(message),
                    timezone=self.timezone,
                    deadline=deadline,
                    extra=extra,
                )
            )
            if status == "failed":
                # Refused for good (a 4xx from the SMS gateway, a bad address): the activity
                # logged it; an agent must reach the customer another way.
                await self.noted_failure(partner=Actor.MESSAGING, what=what, answer="undeliverable")

        await self.tolerating(send(), partner=Actor.MESSAGING, what=what)

    async def escalate(
        self, *, reason: str, timer: Timer | None = None, actor: str = Actor.TIMER
    ) -> None:
        """Record a breach, raise the priority and tell the operations contacts."""
        if self.muted:
            return
        if timer:
            self.view.sla_breached = True
        self.view.priority = self.view.priority.raised()
        self.add(Kind.ESCALATED, actor, reason, {"timer": timer} if timer else {})
        step = self.next_step("escalation")
        mail = calls.notify_ops(
            NotifyOps(view=self.view, step=step, timer=timer, reason=reason, timezone=self.timezone)
        )
        webhook = self.publish(Webhook.ESCALATED, {"reason": reason, "timer": timer})
        nested, self.escalating = self.escalating, True
        try:
            await asyncio.gather(
                self.sync(),
                self.tolerating(mail, partner=Actor.MESSAGING, what="The operators' mail"),
                self.tolerating(
                    webhook, partner=Actor.STOREFRONT, what=f"The {Webhook.ESCALATED} webhook"
                ),
            )
        finally:
            self.escalating = nested

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

    @overload
    def money(self, amount: Decimal) -> dict[str, str]: ...
    @overload
    def money(self, amount: Decimal | None) -> dict[str, str] | None: ...
    def money(self, amount: Decimal | None) -> dict[str, str] | None:
        """An amount in the order's currency, as messages and webhooks carry it."""
        if amount is None:
            return None
        return {"amount": str(amount), "currency": self.view.order.currency}
