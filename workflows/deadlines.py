"""Deadlines: the named timers a case lists, and the waits that run under them.

Every wait takes what its step accepts from the inbox. A plain wait gives up when its timer
runs out; an escalating one escalates once and keeps waiting with the deadline listed
overdue; a reminding one reminds the customer half-way and gives up at the end. A wait for
the customer's answer to a message (info needed, a quote, an offer) is nudged once by SMS
when no answer came within `sms_nudge`.

Every wait is journaled (`workflows/journal.py`): a continued run answers it from the journal
without starting a timer, and only the main task's waits may continue the case as new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NoReturn, Protocol, TypeVar, Unpack

from pydantic import TypeAdapter
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import (
        AgentAction,
        AgentCancel,
        CustomerAction,
        CustomerCancel,
        EventType,
        IntegrationEvent,
        Retry,
    )
    from domain.calendar import BusinessCalendar, describe, parse_duration
    from domain.messages import OfferFields
    from domain.models import CaseStatus, CaseView, Channel, Deadline
    from domain.names import Actor, AgentVerb, Kind, Message, Timer
    from domain.policy import Policy
    from workflows.ending import CaseEnded
    from workflows.inbox import Accepts, Inbox, Input, Pending, Source
    from workflows.journal import LABEL, MAIN, Entry, Journal
    from workflows.recorder import Recorder

T = TypeVar("T")
RETRY = Accepts(agent=frozenset({AgentVerb.RETRY}))
# The SMS nudge adds a timer (and an activity) to the waits for an answer: a case that was
# already in such a wait when the change arrived keeps the old commands (docs/versioning.md).
SMS_NUDGE_PATCH = "sms-nudge"


@dataclass
class Nudge:
    """The SMS nudge of one wait for the customer's answer: when, about what, and whether it
    went out already (it goes once, whichever part of the wait it falls in)."""

    at: datetime
    about: Message
    deadline: Deadline
    sent: bool = False


class Turnover(Protocol):
    """Continue-as-new, as the waits see it (workflows/continuation.py)."""

    async def resume(self) -> None:
        """Go live, if this is the main task's first live wait of a continued run."""

    def due(self) -> bool:
        """Whether the case should continue as new now."""

    def leave(self) -> NoReturn:
        """Continue as new."""


@cache
def _inputs(source: Source) -> TypeAdapter[Input]:
    kind: Any = {"agent": AgentAction, "customer": CustomerAction}.get(source, IntegrationEvent)
    return TypeAdapter(kind)


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
        journal: Journal,
        turnover: Turnover,
    ) -> None:
        self.view = view
        self.policy = policy
        self.calendar = calendar
        self.inbox = inbox
        self.recorder = recorder
        self.cancellable = cancellable
        self.journal = journal
        self.turnover = turnover

    # ---- listing ----------------------------------------------------------------

    def due(self, timer: Timer) -> datetime:
        """When a timer started now runs out, on the business calendar where it says so."""
        return self.calendar.add(self.journal.now(), self.policy.timer(timer))

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
        self,
        accepts: Accepts,
        timer: Timer | None,
        due_at: datetime | None,
        *,
        summary: str | None = None,
    ) -> Input | None:
        """Wait for an input the step accepts until `due_at`; None when the deadline passes."""
        if (replayed := self._replayed()) is not None:
            return replayed[0]
        taking = await self._open(accepts, timer, due_at)
        # Live time, not journaled: in a continued run the timer runs only what is left of it.
        timeout = max(due_at - workflow.now(), timedelta(0)) if due_at else None
        if timer and not summary:
            summary = f"{timer} — {describe(self.policy.timer(timer))}"
        try:
            while (found := self.inbox.take(taking)) is None:
                if not await self._until(
                    lambda: self.inbox.peek(taking) is not None, timeout, summary
                ):
                    self.journal.record(Entry(kind="wait"))
                    return None
        finally:
            self._close(taking, timer)
        return self._taken(found)

    # ---- waits for the customer's answer, nudged by SMS -------------------------

    def nudge(self, about: Message, timer: Timer, due_at: datetime) -> Nudge | None:
        """The SMS nudge of a wait for the answer to `about`, due `sms_nudge` from now; None
        when it has no way to reach further (no phone, or `about` went by SMS already), when
        the shop turned it off (`0s`), or when the wait would end first."""
        customer = self.view.customer
        delay = self.policy.timer(Timer.SMS_NUDGE)
        if not customer.phone or customer.channel == Channel.SMS:
            return None
        if parse_duration(delay)[0] == 0:
            return None
        if self.journal.replaying() and self.journal.upcoming() != "now":
            # A run from before the nudge journaled this wait without reading the time here:
            # walk it as it was walked (a nudge reads the time first, below).
            return None
        at = self.calendar.add(self.journal.now(), delay)
        if at >= due_at or not workflow.patched(SMS_NUDGE_PATCH):
            return None
        return Nudge(at=at, about=about, deadline=Deadline(name=timer, due_at=due_at))

    async def wait_answer(
        self, accepts: Accepts, timer: Timer, due_at: datetime, about: Message
    ) -> Input | None:
        """`wait_until` for the customer's answer to the message `about`, nudged once by SMS
        when none came within `sms_nudge`; None when the deadline passes."""
        return await self.wait_nudged(accepts, timer, due_at, self.nudge(about, timer, due_at))

    async def wait_nudged(
        self, accepts: Accepts, timer: Timer, due_at: datetime, nudge: Nudge | None
    ) -> Input | None:
        """`wait_until`, sending the nudge first if it falls due before `due_at` and the
        customer still hasn't answered. The answer cancels it; the deadline outlives it."""
        if nudge is not None and not nudge.sent and nudge.at < due_at:
            # Listed all along: the nudge is ours, the customer's deadline is `timer`'s.
            self.set(timer, due_at)
            answered = True
            try:
                found = await self.wait_until(
                    accepts,
                    None,
                    nudge.at,
                    summary=f"{Timer.SMS_NUDGE} — {describe(self.policy.timer(Timer.SMS_NUDGE))}",
                )
                answered = found is not None
            finally:
                if answered:
                    self.clear(timer)
            if found is not None:
                return found
            nudge.sent = True
            await self.recorder.notify(
                Message.SMS_NUDGE,
                channel=Channel.SMS,
                deadline=nudge.deadline,
                awaiting=nudge.about,
            )
        return await self.wait_until(accepts, timer, due_at)

    async def wait_any(self, accepts: Accepts) -> Input:
        """Wait, with no deadline, for an input the step accepts."""
        if (replayed := self._replayed()) is not None and replayed[0] is not None:
            return replayed[0]
        taking = await self._open(accepts, None, None)
        try:
            while (found := self.inbox.take(taking)) is None:
                await self._until(lambda: self.inbox.peek(taking) is not None)
        finally:
            self._close(taking, None)
        return self._taken(found)

    async def wait_retry(self, settles: frozenset[EventType]) -> Retry | None:
        """Wait for an agent's `retry` of a failed step; None when one of `settles` arrives
        first, left queued for the step's next wait (the step got done another way)."""
        settling = Accepts(events=settles)
        # Shown with the settling events, so the operators see who else may move the case.
        if (replayed := self._replayed()) is not None:
            return replayed[0] if isinstance(replayed[0], Retry) else None
        shown = await self._open(RETRY | settling, None, None)
        taking = Accepts(agent=shown.agent, customer=shown.customer)
        try:
            while (found := self.inbox.take(taking)) is None:
                if self.inbox.peek(settling) is not None:
                    self.journal.record(Entry(kind="wait"))
                    return None
                await self._until(
                    lambda: (
                        self.inbox.peek(taking) is not None or self.inbox.peek(settling) is not None
                    )
                )
        finally:
            self._close(shown, None)
        retry = self._taken(found)
        return retry if isinstance(retry, Retry) else None

    # ---- journal and continue-as-new ------------------------------------------------

    def _replayed(self) -> tuple[Input | None] | None:
        """The wait's outcome from the journal while the run fast-forwards (no timer, no
        inbox): `(input,)` or `(None,)` when nothing was taken; None when the wait runs live."""
        if not self.journal.replaying() or (entry := self.journal.next("wait")) is None:
            return None
        if entry.source is None:
            return (None,)
        source: Source = entry.source  # type: ignore[assignment]
        body = _inputs(source).validate_python(entry.body)
        return (self._taken(Pending(source, "", body), journal=False),)

    async def _until(
        self,
        ready: Callable[[], bool],
        timeout: timedelta | None = None,
        summary: str | None = None,
    ) -> bool:
        """Block until `ready()`; False when `timeout` runs out first. A long case continues as
        new from here, when it is due, rather than waiting on."""
        # Only the main task's waits may hand over; the condition runs outside the task.
        main = LABEL.get() == MAIN
        end = workflow.now() + timeout if timeout is not None else None
        while True:
            left = max(end - workflow.now(), timedelta(0)) if end is not None else None
            try:
                await workflow.wait_condition(
                    lambda: ready() or (main and self.turnover.due()),
                    timeout=left,
                    timeout_summary=summary,
                )
            except TimeoutError:
                return False
            if ready():
                return True
            # Everything this run recorded reaches the DB before the next run takes over; an
            # input or an update may arrive meanwhile, and then the case waits on instead.
            await self.recorder.sync()
            if not ready() and self.turnover.due():
                self.turnover.leave()

    async def _open(
        self, accepts: Accepts, timer: Timer | None, due_at: datetime | None
    ) -> Accepts:
        await self.turnover.resume()
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

    def _taken(self, item: Pending, journal: bool = True) -> Input:
        body = item.body
        if journal:
            dumped = body.model_dump(mode="json")
            self.journal.record(Entry(kind="wait", source=item.source, body=dumped))
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
        if self.journal.now() < due_at:
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
        nudge_about: Message | None = None,
        **args: Unpack[OfferFields],
    ) -> Input | None:
        """Wait under a timer with a reminder on the way; None when the timer runs out.

        With `nudge_about` (the message awaiting the customer's answer) an SMS nudge goes out
        too, before or after the reminder, whichever its time falls.
        """
        due_at = due_at or self.due(timer)
        remind_at = self.due(reminder)
        nudge = self.nudge(nudge_about, timer, due_at) if nudge_about else None
        self.set(timer, due_at)
        found = await self.wait_nudged(accepts, reminder, remind_at, nudge)
        if found is None:
            await self.recorder.notify(
                message, deadline=Deadline(name=timer, due_at=due_at), **args
            )
            found = await self.wait_nudged(accepts, timer, due_at, nudge)
        self.clear(timer)
        return found

    async def expire(self, timer: Timer) -> CaseEnded:
        """End the case because the customer let a deadline pass."""
        await self.recorder.notify(Message.CASE_EXPIRED, timer=timer)
        return CaseEnded(
            CaseStatus.EXPIRED, Kind.EXPIRED, f"No answer before the {timer} deadline.", Actor.TIMER
        )
