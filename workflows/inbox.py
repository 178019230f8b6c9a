"""The inbox: what people and systems sent a case, and the rule of what it takes now.

Agent and customer actions arrive through updates, integration events through a signal
(deduplicated by `event_id`). Each waits here until a step takes it. The validators ask the
inbox whether a step takes an action now; the rule is the same one the steps wait with, so
an action the validator admits is never left unanswered: it is taken, or refused as stale
once the step it was meant for has passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import AgentAction, CustomerAction, EventType, IntegrationEvent
    from domain.models import CaseStatus
    from domain.names import AgentVerb, CustomerVerb

Input = AgentAction | CustomerAction | IntegrationEvent
Source = Literal["agent", "customer", "event"]

CANCEL = frozenset({AgentVerb.CANCEL.value})
# Agent actions a case takes at any step before it ends (handled at once, never queued).
ANYTIME_ACTIONS = frozenset({AgentVerb.NOTE, AgentVerb.ASSIGN, AgentVerb.ESCALATE})
# Agent actions a case still takes once it ended, while a step waits for one: a rejected
# return waits for a supervisor's exception (workflows/steps/review.py).
AFTER_END_ACTIONS = frozenset({AgentVerb.APPROVE_EXCEPTION})
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


@dataclass(frozen=True)
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

    def matches(self, source: Source, name: str) -> bool:
        """Whether this wait takes an input of that source and name."""
        if source == "event":
            return name in self.events
        return name in (self.agent if source == "agent" else self.customer)

    def with_cancel(self, cancellable: bool) -> Accepts:
        """The same, plus a cancel from either side while the status allows one."""
        cancel = CANCEL if cancellable else frozenset()
        return Accepts(self.agent | cancel, self.customer | cancel, self.events)

    def __or__(self, other: Accepts) -> Accepts:
        return Accepts(
            self.agent | other.agent, self.customer | other.customer, self.events | other.events
        )


@dataclass(eq=False)
class Pending:
    """One input waiting for a step, and the answer its sender waits for."""

    source: Source
    name: str
    body: Input
    done: bool = False
    error: str | None = None


@dataclass
class Inbox:
    """Queued inputs, the waits open now, and what the current step will take."""

    pending: list[Pending] = field(default_factory=list)
    # Insertion-ordered, so a continued run carries the most recent (continuation.SEEN_LIMIT).
    seen_events: dict[str, None] = field(default_factory=dict)
    # Taken by a step and answered once the case settles at its next wait.
    consumed: list[Pending] = field(default_factory=list)
    waits: list[Accepts] = field(default_factory=list)
    # What the current step will take once it starts waiting: set with the status, so an
    # action sent the moment the status shows is never refused.
    expected: Accepts = field(default_factory=Accepts)

    # ---- arrivals ---------------------------------------------------------------

    def first_sight(self, event: IntegrationEvent) -> bool:
        """Whether the event is new (remembered from now on); a repeat of its ID is not."""
        if event.event_id in self.seen_events:
            return False
        self.seen_events[event.event_id] = None
        return True

    def put(self, item: Pending) -> None:
        """Queue an input for the step that takes it."""
        self.pending.append(item)

    def accepting(self, source: Literal["agent", "customer"], name: str) -> bool:
        """Whether an open wait, or the step about to wait, takes this action (cancel aside)."""
        return any(accepts.matches(source, name) for accepts in self.live())

    def live(self) -> list[Accepts]:
        """The open waits and the current step's expectation."""
        return [*self.waits, self.expected]

    # ---- waits ------------------------------------------------------------------

    def expect(self, accepts: Accepts | None) -> None:
        """What the step the case just moved to will take."""
        self.expected = accepts or Accepts()

    def open_wait(self, accepts: Accepts) -> None:
        """A step starts waiting for what `accepts` names."""
        self.waits.append(accepts)
        # Only the wait the status announced takes over its expectation; a refund settling
        # alongside (fast refund) must not make the main step refuse what it is about to take.
        if self.expected.covered_by(accepts):
            self.expected = Accepts()

    def close_wait(self, accepts: Accepts) -> None:
        """The wait is over (taken, timed out or cancelled)."""
        self.waits.remove(accepts)

    def peek(self, accepts: Accepts) -> Pending | None:
        """The first queued input the wait takes."""
        return next((i for i in self.pending if accepts.matches(i.source, i.name)), None)

    def take(self, accepts: Accepts) -> Pending | None:
        """Take the first queued input the wait takes; the sender is answered at the next wait."""
        item = self.peek(accepts)
        if item is not None:
            self.pending.remove(item)
            self.consumed.append(item)
        return item

    # ---- answers ----------------------------------------------------------------

    def refuse_last(self, reason: str) -> None:
        """Answer the action just taken with an error: the step can't use it as given."""
        if self.consumed:
            self.consumed[-1].error = reason

    def finish_consumed(self) -> None:
        """Answer the senders of every input taken since the last wait."""
        for item in self.consumed:
            item.done = True
        self.consumed.clear()

    def finish_taken(self, name: str) -> None:
        """Answer the senders of the inputs of this name taken since the last wait: a step
        running alongside the lifecycle (a credit at first scan) that ends without another
        wait answers its agent's `retry` itself."""
        for item in [i for i in self.consumed if i.name == name]:
            item.done = True
            self.consumed.remove(item)

    def refuse_stale(self, status: CaseStatus) -> None:
        """Answer queued actions no wait takes any more (e.g. a second approve sent with the
        first): the validator let them in, but the step they were meant for has passed."""
        live = self.live()
        for item in list(self.pending):
            if item.source != "event" and not any(a.matches(item.source, item.name) for a in live):
                self.pending.remove(item)
                item.error = refusal(status, item.name)
                item.done = True

    def discard_events(self, types: frozenset[EventType]) -> None:
        """Drop queued events of an earlier step (e.g. the inbound parcel's delivery)."""
        self.pending = [i for i in self.pending if not (i.source == "event" and i.name in types)]

    def close(self) -> None:
        """The case ended: answer the actions still queued, which can never be taken now."""
        self.finish_consumed()
        for item in self.pending:
            if item.source != "event":
                item.error, item.done = "The case has ended.", True

    # ---- what the case shows ----------------------------------------------------

    def waiting_on(self, queue: str) -> str:
        """Who must act for the case to move: agent, customer, carrier or warehouse, payment."""
        live = self.live()
        who = []
        if any(a.agent - {AgentVerb.CANCEL, AgentVerb.MARK_MALICIOUS} for a in live):
            who.append(f"agent (`{queue}` queue)")
        if any(a.customer - {CustomerVerb.CANCEL} for a in live):
            who.append("customer")
        events = {e.value.split(".")[0] for a in live for e in a.events}
        who += sorted(_EVENT_SOURCES.get(source, source) for source in events)
        return ", ".join(dict.fromkeys(who)) or "the system"

    def customer_actions(self, *, cancellable: bool) -> list[str]:
        """The customer actions the case takes now, sorted; the validator admits the same."""
        names = {str(name) for a in self.live() for name in a.customer}
        # A cancel rides along in every wait but is taken only while the status allows it.
        names.discard(CustomerVerb.CANCEL)
        if cancellable:
            names.add(CustomerVerb.CANCEL.value)
        return sorted(names)

    def agent_actions(self, *, cancellable: bool, ended: bool = False) -> list[str]:
        """The agent actions the case takes now, sorted; the validator admits the same."""
        names = {str(name) for a in self.live() for name in a.agent}
        if ended:
            return sorted(names & AFTER_END_ACTIONS)
        names |= {str(name) for name in ANYTIME_ACTIONS}
        names.discard(AgentVerb.CANCEL)
        if cancellable:
            names.add(AgentVerb.CANCEL.value)
        return sorted(names)


def refusal(status: CaseStatus, name: str) -> str:
    """Why a case refuses an action now."""
    return f"A case in status {status} can't take {name!r} now."
