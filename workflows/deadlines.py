"""Deadlines: the named timers a case lists, and the waits that run under them.

Every wait takes what its step accepts from the inbox. A plain wait gives up when its timer
runs out; an escalating one escalates once and keeps waiting with the deadline listed
overdue; a reminding one reminds the customer half-way and gives up at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar, Unpack

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import AgentCancel, CustomerCancel, EventType, IntegrationEvent, Retry
    from domain.calendar import BusinessCalendar, describe
    from domain.messages import OfferFields
    from domain.models import CaseStatus, CaseView, Deadline
    from domain.names import Actor, AgentVerb, Kind, Message, Timer
    from domain.policy import Policy
    from workflows.ending import CaseEnded
    from workflows.inbox import Accepts, Inbox, Input, Pending
    from workflows.recorder import Recorder

T = TypeVar("T")
RETRY = Accepts(agent=frozenset({AgentVerb.RETRY}))


class Deadlines:
    """The case's listed deadlines and the waits under them."""

    def __init__(
        self,
        view: CaseView,
        *,
        policy: Policy,
        calendar: BusinessCalendar,
        inbox: Inbox,
        recorder: Recorder,
        cancellable: Callable[[], bool],
    ) -> None:
        self.view = view
        self.policy = policy
        self.calendar = calendar
        self.inbox = inbox
        self.recorder = recorder
        self.cancellable = cancellable

    # ---- listing ----------------------------------------------------------------

    def due(self, timer: Timer) -> datetime:
        """When a timer started now runs out, on the business calendar where it says so."""
        return self.calendar.add(workflow.now(), self.policy.timer(timer))

    def set(self, name: Timer, due_at: datetime) -> None:
        """List a deadline on the case (replacing one of the same name)."""
        self.clear(name)
        self.view.deadlines.append(Deadline(name=name, due_at=due_at))

    def clear(self, name: Timer) -> None:
        """Take a deadline off the case's list."""
        self.view.deadlines = [d for d in self.view.deadlines if d.name != name]

    # ---- plain waits ------------------------------------------------------------

    async def wait(self, accepts: Accepts, timer: Timer) -> Input | None:
        """Wait for an input the step accepts, until the named timer runs out (then None)."""
        return await self.wait_until(accepts, timer, self.due(timer))

    async def wait_until(
        self, accepts: Accepts, timer: Timer | None, due_at: datetime | None
    ) -> Input | None:
        """Wait for an input the step accepts until `due_at`; None when the deadline passes."""
        taking = await self._open(accepts, timer, due_at)
        timeout = max(due_at - workflow.now(), timedelta(0)) if due_at else None
        summary = f"{timer} — {describe(self.policy.timer(timer))}" if timer else None
        try:
            while (found := self.inbox.take(taking)) is None:
                try:
                    await workflow.wait_condition(
                        lambda: self.inbox.peek(taking) is not None,
                        timeout=timeout,
                        timeout_summary=summary,
                    )
                except TimeoutError:
                    return None
        finally:
            self._close(taking, timer)
        return self._taken(found)

    async def wait_any(self, accepts: Accepts) -> Input:
        """Wait, with no deadline, for an input the step accepts."""
        taking = await self._open(accepts, None, None)
        try:
            while (found := self.inbox.take(taking)) is None:
                await workflow.wait_condition(lambda: self.inbox.peek(taking) is not None)
        finally:
            self._close(taking, None)
        return self._taken(found)

    async def wait_retry(self, settles: frozenset[EventType]) -> Retry | None:
        """Wait for an agent's `retry` of a failed step; None when one of `settles` arrives
        first, left queued for the step's next wait (the step got done another way)."""
        settling = Accepts(events=settles)
        # Shown with the settling events, so the operators see who else may move the case.
        shown = await self._open(RETRY | settling, None, None)
        taking = Accepts(agent=shown.agent, customer=shown.customer)
        try:
            while (found := self.inbox.take(taking)) is None:
                if self.inbox.peek(settling) is not None:
                    return None
                await workflow.wait_condition(
                    lambda: (
                        self.inbox.peek(taking) is not None or self.inbox.peek(settling) is not None
                    )
                )
        finally:
            self._close(shown, None)
        retry = self._taken(found)
        return retry if isinstance(retry, Retry) else None

    async def _open(
        self, accepts: Accepts, timer: Timer | None, due_at: datetime | None
    ) -> Accepts:
        # A cancel is taken only while the status allows one: a cancel queued at open must not
        # end a case that has since refunded.
        taking = accepts.with_cancel(self.cancellable())
        self.inbox.open_wait(taking)
        if timer and due_at:
            self.set(timer, due_at)
        await self.recorder.sync()
        self.inbox.finish_consumed()
        self.inbox.refuse_stale(self.view.status)
        return taking

    def _close(self, taking: Accepts, timer: Timer | None) -> None:
        self.inbox.close_wait(taking)
        if timer:
            self.clear(timer)

    def _taken(self, item: Pending) -> Input:
        body = item.body
        if isinstance(body, AgentCancel | CustomerCancel):
            # A customer is recorded as the customer, whatever the body says.
            actor = (body.actor or Actor.AGENT) if item.source == "agent" else Actor.CUSTOMER
            raise CaseEnded(CaseStatus.CANCELLED, Kind.CANCELLED, "The case was cancelled.", actor)
        return body

    # ---- escalating waits -------------------------------------------------------

    async def wait_escalating(
        self, accepts: Accepts, timer: Timer, due_at: datetime | None = None
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

    async def escalating(
        self, kind: type[T], accepts: Accepts, timer: Timer, due_at: datetime | None = None
    ) -> T:
        """`wait_escalating` for a wait that takes only inputs of one type."""
        due_at = due_at or self.due(timer)
        while True:
            found = await self.wait_escalating(accepts, timer, due_at)
            if isinstance(found, kind):
                return found
            # Can't happen: the wait takes only what `accepts` names. Answer, never wedge.
            self.inbox.refuse_last(f"{type(found).__name__} isn't taken at this step.")

    async def event(
        self, types: frozenset[EventType], timer: Timer, due_at: datetime | None = None
    ) -> IntegrationEvent:
        """Wait for one of these integration events under an escalating timer."""
        return await self.escalating(IntegrationEvent, Accepts(events=types), timer, due_at)

    async def any_event(self, types: frozenset[EventType]) -> IntegrationEvent:
        """Wait, with no deadline, for one of these integration events."""
        while True:
            found = await self.wait_any(Accepts(events=types))
            if isinstance(found, IntegrationEvent):
                return found
            self.inbox.refuse_last(f"{type(found).__name__} isn't taken at this step.")

    async def breach(self, timer: Timer, due_at: datetime, reason: str) -> None:
        """Escalate a passed deadline, listing it overdue from the moment the breach shows."""
        self.set(timer, due_at)
        await self.recorder.escalate(reason=reason, timer=timer)

    async def wait_overdue(self, accepts: Accepts, timer: Timer, due_at: datetime) -> Input:
        """Keep waiting past a deadline, listed so lists and `NextDeadline` show it overdue."""
        self.set(timer, due_at)
        found = await self.wait_any(accepts)
        self.clear(timer)
        return found

    # ---- reminding waits --------------------------------------------------------

    async def wait_reminding(
        self,
        accepts: Accepts,
        timer: Timer,
        reminder: Timer,
        message: Message,
        *,
        due_at: datetime | None = None,
        **args: Unpack[OfferFields],
    ) -> Input | None:
        """Wait under a timer with a reminder on the way; None when the timer runs out."""
        due_at = due_at or self.due(timer)
        remind_at = self.due(reminder)
        self.set(timer, due_at)
        found = await self.wait_until(accepts, reminder, remind_at)
        if found is None:
            await self.recorder.notify(
                message, deadline=Deadline(name=timer, due_at=due_at), **args
            )
            found = await self.wait_until(accepts, timer, due_at)
        self.clear(timer)
        return found

    async def expire(self, timer: Timer) -> CaseEnded:
        """End the case because the customer let a deadline pass."""
        await self.recorder.notify(Message.CASE_EXPIRED, timer=timer)
        return CaseEnded(
            CaseStatus.EXPIRED, Kind.EXPIRED, f"No answer before the {timer} deadline.", Actor.TIMER
        )
