"""The journal: what a case's lifecycle met on its way, so a new run can walk the same way.

A lifecycle is plain async Python; when a long case continues as new, it is suspended inside
a wait with its locals on the stack. The next run runs the same lifecycle from the top and
answers each of its interactions from this journal instead of from the world: the input a
wait took (or that it timed out), the result of an activity the lifecycle uses, a child
case's outcome, every `now()` it read and every random seed it drew. Once a task's entries
are used up it is live again (`workflows/continuation.py` does the hand-over).

Entries are kept per lifecycle task (its label: `main`, or the label `spawn` gave it), in
order. Only the lifecycle writes here: notes, assigns, agents' escalations and duplicate
events are handled outside it, so the journal grows with the case's steps, not its traffic.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, TypeAdapter
from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, RetryState

T = TypeVar("T")
MAIN = "main"
# The lifecycle task running now; None in handlers (updates, signals) and the recorder's
# own helpers, which are never journaled.
LABEL: ContextVar[str | None] = ContextVar("aftersales_lifecycle_task", default=None)

Kind = Literal["wait", "call", "now", "random", "child"]


class Entry(BaseModel):
    """One interaction of a lifecycle task with the world, and what it answered."""

    kind: Kind
    # now: the instant read.
    at: datetime | None = None
    # wait: who sent the input taken ("agent", "customer", "event"); None when nothing was
    # taken (the timer ran out, or a retry wait was settled by an event left queued).
    source: str | None = None
    # wait: the input; call and child: the result; random: the values drawn; as JSON.
    body: Any = None
    # call: the partner's refusal (the failure's message and type), raised again on replay.
    failed: str | None = None
    failure_type: str | None = None


class Journal:
    """The lifecycle's journal: replayed while the run fast-forwards, appended to after."""

    def __init__(self, entries: dict[str, list[Entry]] | None = None) -> None:
        self.entries = {label: list(items) for label, items in (entries or {}).items()}
        self.cursor: dict[str, int] = {}
        # True from the start of a continued run until its main task reaches its first live
        # wait (continuation.Continuation.resume sets it off).
        self.forwarding = any(self.entries.values())
        # Why the fast-forward left the journal early: the case escalates with these.
        self.divergences: list[str] = []
        # Tasks that found their entries used up while the run still fast-forwarded.
        self.strays: set[str] = set()
        self.tasks: dict[str, asyncio.Task[Any]] = {}
        self._spawned: dict[str, int] = {}

    # ---- tasks --------------------------------------------------------------------

    def spawn(self, name: str, coro: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run `coro` as a lifecycle task of its own, journaled under `name.<n>`."""
        self._spawned[name] = self._spawned.get(name, 0) + 1
        label = f"{name}.{self._spawned[name]}"

        async def labelled() -> T:
            LABEL.set(label)  # the task's own copy of the context
            return await coro

        task = asyncio.create_task(labelled())
        self.tasks[label] = task
        return task

    def others_live(self) -> bool:
        """Whether a lifecycle task besides main is still running (a fast refund, a child's
        interrupt wait)."""
        return any(not task.done() for task in self.tasks.values())

    def others_settled(self) -> bool:
        """Whether every other task has finished, or strayed off its entries."""
        return all(task.done() or label in self.strays for label, task in self.tasks.items())

    # ---- replay -------------------------------------------------------------------

    def replaying(self) -> bool:
        """Whether the running lifecycle task answers from the journal now."""
        label = LABEL.get()
        if label is None or not self.forwarding:
            return False
        if self.cursor.get(label, 0) < len(self.entries.get(label, [])):
            return True
        if label != MAIN:
            # Every other task had ended before the case continued: it should not get here.
            self.strays.add(label)
            self.divergences.append(f"task {label} went on past its journal")
        return False

    def upcoming(self) -> Kind | None:
        """The kind of the running task's next entry while it replays; None when it is live."""
        if not self.replaying():
            return None
        label = LABEL.get() or MAIN
        return self.entries[label][self.cursor.get(label, 0)].kind

    def next(self, kind: Kind) -> Entry | None:
        """The running task's next entry, when it is of `kind`; None (a divergence) if not."""
        label = LABEL.get() or MAIN
        at = self.cursor.get(label, 0)
        entries = self.entries[label]
        entry = entries[at]
        if entry.kind != kind:
            # Drop the rest: from here this task is live and journals anew.
            del entries[at:]
            self.divergences.append(
                f"task {label} asked for a {kind} where its journal has a {entry.kind} "
                f"(entry {at + 1})"
            )
            if label != MAIN:
                self.strays.add(label)
            return None
        self.cursor[label] = at + 1
        return entry

    def record(self, entry: Entry) -> None:
        """Append what a live interaction answered to the running task's entries."""
        label = LABEL.get()
        if label is None:
            return
        entries = self.entries.setdefault(label, [])
        entries.append(entry)
        self.cursor[label] = len(entries)

    # ---- interactions ---------------------------------------------------------------

    def now(self) -> datetime:
        """The workflow's time, as the lifecycle read it (journaled)."""
        if self.replaying() and (entry := self.next("now")) is not None and entry.at:
            return entry.at
        at = workflow.now()
        self.record(Entry(kind="now", at=at))
        return at

    def drawn(self, draw: Callable[[random.Random], list[str]]) -> list[str]:
        """Values drawn from the workflow's randomness (journaled: a new run has another seed)."""
        if self.replaying() and (entry := self.next("random")) is not None:
            return [str(value) for value in entry.body or []]
        values = draw(workflow.random())
        self.record(Entry(kind="random", body=values))
        return values

    async def remember(
        self,
        kind: Literal["call", "child"],
        result: type[T],
        run: Callable[[], Awaitable[T]],
        *,
        what: str,
    ) -> T:
        """Run `run` live and journal its result (or the partner's refusal), or answer it from
        the journal while fast-forwarding: no activity, no child workflow."""
        adapter: TypeAdapter[T] = _adapter(result)
        if self.replaying() and (entry := self.next(kind)) is not None:
            if entry.failed is not None:
                raise replayed_failure(what, entry.failed, entry.failure_type)
            return adapter.validate_python(entry.body)
        try:
            value = await run()
        except ActivityError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause or err)
            kind_of = cause.type if isinstance(cause, ApplicationError) else None
            self.record(Entry(kind=kind, failed=message, failure_type=kind_of))
            raise
        self.record(Entry(kind=kind, body=adapter.dump_python(value, mode="json")))
        return value


# One TypeAdapter per result type (a handful): building one costs more than the call it
# decodes. Shared by every run in the process (workflows/ is passed through the sandbox).
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}


def _adapter(result: Any) -> TypeAdapter[Any]:
    adapter = _ADAPTERS.get(result)
    if adapter is None:
        adapter = _ADAPTERS[result] = TypeAdapter(result)
    return adapter


def replayed_failure(what: str, message: str, failure_type: str | None) -> ActivityError:
    """The refusal an activity met in an earlier run, raised again as the same kind of error."""
    err = ActivityError(
        f"{what} failed (journaled)",
        scheduled_event_id=0,
        started_event_id=0,
        identity="journal",
        activity_type=what,
        activity_id="",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )
    err.__cause__ = ApplicationError(message, type=failure_type, non_retryable=True)
    return err
