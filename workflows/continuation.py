"""Continue-as-new: a long case hands its state to a new run and picks up where it was.

When it happens: only while the main lifecycle task is blocked in a wait (`deadlines.py`),
the run's history is long (`workflow.info().is_continue_as_new_suggested()`, or
`CaseInput.history_limit` events), no other lifecycle task is live (a fast refund, a child
case) and no update is in flight. An agent's or customer's action handed to the inbox is
always answered at the next wait, so waiting for the handlers never waits on the case itself.

What goes over (`Carry`): the lifecycle's journal, the case's view (deadlines with their
original due times included), the queued events, the most recent event and update IDs, the
recorder's counters (a notification ID or webhook event ID never repeats across runs), the
locked flag, and what the open wait takes (the validators answer from it while the new run
fast-forwards).

How the new run picks up: it runs the same lifecycle from the top with the recorder muted,
every wait, activity result and `now()` answered from the journal (`journal.py`). When the
main task reaches its first live wait, `resume` lays the carried state over what the
fast-forward rebuilt, unmutes the recorder and lets the wait run live: its deadline came
from the journaled `now()`, so a timer partly run down fires when it would have.
"""

from dataclasses import dataclass, field
from typing import NoReturn, Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import EventType, IntegrationEvent
    from domain.models import CaseStatus, CaseView
    from domain.names import Actor
    from workflows.inbox import Accepts, Inbox, Pending, Source
    from workflows.journal import LABEL, MAIN, Entry, Journal
    from workflows.recorder import Recorder, RecorderState

# Event IDs remembered across runs. A partner replays an event within minutes or hours of
# sending it (its own retries); one replayed after a thousand newer events of the same case
# is not a retry. Within a run every ID is remembered (the run's history bounds them).
SEEN_LIMIT = 1_000
# Update IDs carried to the next run. A client resends an update whose run closed under it
# within a fraction of a second (api.temporal_calls.update_latest_run: three tries, 150 ms in
# all), so only the last ones applied can come again.
UPDATES_LIMIT = 100
# Queued events carried to the next run, per event type. A step takes one report of a kind;
# a case that piles up reports no step takes (a partner's feed sent to the wrong case) must
# not grow what every run carries. The earliest of each type are kept: they came first, and
# every one of them is on the timeline already.
QUEUED_PER_TYPE = 20
# Events per run before a case continues as new (CaseInput.history_limit), well under the
# 51,200 events and 50 MB where Temporal terminates a workflow.
HISTORY_LIMIT = 10_000


@dataclass
class Carry:
    """What a run hands to the next one.

    Its annotations are real types (no `from __future__ import annotations` here): pydantic
    resolves them inside the workflow sandbox, where names imported for passthrough are not
    always found by their string form.
    """

    journal: dict[str, list[Entry]]
    # The case as shown; it holds no timeline (that lives in the DB projection).
    view: CaseView
    # Events queued for a later step (actions can't be queued: their updates finish first).
    events: list[IntegrationEvent] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    # The most recent update IDs the case applied (Case.applied): a resend answers, unapplied.
    updates: list[str] = field(default_factory=list)
    # The recorder's counters (workflows.recorder.RecorderState), field by field.
    revision: int = 0
    seq: int = 0
    sent: dict[str, int] = field(default_factory=dict)
    last_status: CaseStatus | None = None
    failed_webhooks: list[str] = field(default_factory=list)
    locked: bool = False
    # What the main task's wait took, and what the status announced (the validators' rule),
    # by name (`names`): an `Accepts` doesn't pass the sandbox's type resolution.
    waits: list[dict[str, list[str]]] = field(default_factory=list)
    expected: dict[str, list[str]] = field(default_factory=dict)
    # Which run of the case this is (the first is 1).
    run: int = 1


class CaseParts(Protocol):
    """What a continuation reads of its case and lays back (`workflows.case.Case`)."""

    journal: Journal
    view: CaseView
    inbox: Inbox
    recorder: Recorder
    locked: bool
    applied: dict[str, None]

    def take_event(self, event: IntegrationEvent) -> Pending | None:
        """Take an integration event (queued, or answered at once)."""
        ...

    def continue_with(self, carry: "Carry") -> NoReturn:
        """Continue as new with the case's input and this carry."""
        ...


class Continuation:
    """When a case continues as new, what it carries, and how the next run picks up."""

    def __init__(self, case: CaseParts, carry: "Carry | None", limit: int) -> None:
        self.case = case
        self.carry = carry
        self.limit = limit
        # Signals that arrived while the run fast-forwarded, taken once it is live.
        self.deferred: list[IntegrationEvent] = []

    @property
    def forwarding(self) -> bool:
        """Whether the run is still fast-forwarding through the journal."""
        return self.case.journal.forwarding

    @property
    def run(self) -> int:
        """Which run of the case this is."""
        return self.carry.run if self.carry else 1

    # ---- while fast-forwarding: the handlers see the carried case ---------------------

    def shown(self) -> CaseView:
        """The case as the handlers show it: the carried one until the run is live."""
        if self.forwarding and self.carry is not None:
            return self.carry.view
        return self.case.view

    def takes(self, source: Source, name: str) -> bool:
        """Whether the carried wait takes an action (while fast-forwarding)."""
        live = [*self.carry.waits, self.carry.expected] if self.carry else []
        return any(accepts(names).matches(source, name) for names in live)

    def cancellable(self, statuses: frozenset[CaseStatus]) -> bool:
        """Whether the carried case takes a cancel (while fast-forwarding)."""
        carry = self.carry
        return carry is not None and carry.view.status in statuses and not carry.locked

    async def live(self) -> None:
        """Wait until the run is live (an update that arrived while it fast-forwarded)."""
        await workflow.wait_condition(lambda: not self.forwarding)

    # ---- handing over -----------------------------------------------------------------

    def due(self) -> bool:
        """Whether the case should continue as new now (asked for the main task's waits, from
        outside any task: the label is the caller's to check)."""
        if self.forwarding or self.case.journal.others_live():
            return False
        info = workflow.info()
        long = info.is_continue_as_new_suggested() or info.get_current_history_length() >= (
            self.limit
        )
        return long and workflow.all_handlers_finished()

    def leave(self) -> NoReturn:
        """Continue as new, carrying the case over."""
        case = self.case
        inbox, recorder = case.inbox, case.recorder
        counters = recorder.state()
        carry = Carry(
            journal={label: list(entries) for label, entries in case.journal.entries.items()},
            # A copy: the wait's cleanup runs as the error unwinds and must not change it.
            view=case.view.model_copy(deep=True),
            events=carried_events(inbox.pending),
            seen=list(inbox.seen_events)[-SEEN_LIMIT:],
            updates=list(case.applied)[-UPDATES_LIMIT:],
            revision=counters.revision,
            seq=counters.seq,
            sent=counters.sent,
            last_status=counters.last_status,
            failed_webhooks=counters.failed_webhooks,
            locked=case.locked,
            waits=[names(wait) for wait in inbox.waits],
            expected=names(inbox.expected),
            run=self.run + 1,
        )
        case.continue_with(carry)

    async def resume(self) -> None:
        """Go live at the main task's first live wait: lay the carried state over what the
        fast-forward rebuilt, unmute, take deferred signals, escalate a divergence."""
        journal = self.case.journal
        if not journal.forwarding or LABEL.get() != MAIN:
            return
        # A fast refund that ended in an earlier run replays to its end first.
        await workflow.wait_condition(journal.others_settled)
        self._restore()
        journal.forwarding = False
        self.case.recorder.muted = False
        for event in self.deferred:
            self.case.take_event(event)
        self.deferred.clear()
        if journal.divergences:
            reason = "Continued as new, but the lifecycle left its journal: " + "; ".join(
                journal.divergences[:3]
            )
            journal.divergences.clear()
            await self.case.recorder.escalate(reason=reason, actor=Actor.SYSTEM)

    def _restore(self) -> None:
        carry, case = self.carry, self.case
        if carry is None:
            return
        view = case.view
        # Field by field, and only where they differ: objects the lifecycle holds in its locals
        # (the refund, the repair record) stay the same objects when the rebuild matches.
        for name in CaseView.model_fields:
            carried = getattr(carry.view, name)
            if getattr(view, name) != carried:
                setattr(view, name, carried)
        inbox = case.inbox
        inbox.pending = [Pending("event", event.type.value, event) for event in carry.events]
        inbox.seen_events = dict.fromkeys(carry.seen)
        inbox.consumed.clear()
        # The wait about to run opens itself again. Until it does (a divergence is escalated
        # first, through activities) the validators admit what it will take: an action sent
        # meanwhile is queued for it, not refused.
        inbox.waits = []
        inbox.expected = accepts(carry.expected)
        for wait in carry.waits:
            inbox.expected = inbox.expected | accepts(wait)
        case.recorder.resume(
            RecorderState(
                revision=carry.revision,
                seq=carry.seq,
                sent=dict(carry.sent),
                last_status=carry.last_status,
                failed_webhooks=list(carry.failed_webhooks),
            )
        )
        case.locked = carry.locked


def carried_events(pending: list[Pending]) -> list[IntegrationEvent]:
    """The queued events a run hands over: the earliest QUEUED_PER_TYPE of each type."""
    kept: list[IntegrationEvent] = []
    per_type: dict[str, int] = {}
    for item in pending:
        if item.source != "event" or not isinstance(item.body, IntegrationEvent):
            continue
        per_type[item.name] = per_type.get(item.name, 0) + 1
        if per_type[item.name] <= QUEUED_PER_TYPE:
            kept.append(item.body)
    dropped = sum(per_type.values()) - len(kept)
    if dropped:
        workflow.logger.warning(
            "continuing as new without %d queued events no step took (more than %d of a type)",
            dropped,
            QUEUED_PER_TYPE,
        )
    return kept


def names(taken: Accepts) -> dict[str, list[str]]:
    """What a wait takes, by name."""
    return {
        "agent": sorted(taken.agent),
        "customer": sorted(taken.customer),
        "events": sorted(event.value for event in taken.events),
    }


def accepts(names: dict[str, list[str]]) -> Accepts:
    """What a wait takes, from its names."""
    return Accepts(
        agent=frozenset(names.get("agent", [])),
        customer=frozenset(names.get("customer", [])),
        events=frozenset(EventType(event) for event in names.get("events", [])),
    )
