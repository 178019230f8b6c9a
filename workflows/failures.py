"""A side effect the case can't go on without (a refund, a pickup, a shipment, an
interception), when the partner fails it: the case escalates and stays alive for an agent.

A side effect it can go on without (a message, a webhook, the operators' mail) is noted and
escalated by the recorder (`Recorder.tolerating`); the case goes on at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.actions import EventType
    from domain.names import Actor, Kind
    from workflows.case import Case
    from workflows.deadlines import RETRY
    from workflows.recorder import partner_answer

T = TypeVar("T")


def _nothing() -> None:
    return None


async def until_done(
    case: Case,
    call: Callable[[], Awaitable[T]],
    *,
    partner: Actor,
    escalation: str,
    settles: frozenset[EventType],
    failed: Callable[[], None] = _nothing,
) -> T | None:
    """Run `call` until it succeeds; None when an event of `settles` made it unneeded.

    When the partner fails it (a 4xx, or retries exhausted) the partner's answer goes on the
    timeline, the case escalates (`escalation: answer`), and it waits for an agent's `retry`
    (run it again, with the same idempotency key) or for one of `settles`, left queued for
    the step's next wait. A cancel ends the case where its status allows one.
    """
    rec = case.recorder
    while True:
        try:
            return await call()
        except ActivityError as err:
            answer = partner_answer(err)
            failed()
            rec.add(
                Kind.CONNECTOR_FAILED,
                partner,
                f"{escalation}: {answer}",
                {"connector": partner.value, "answer": answer},
            )
            # An agent may retry the moment the escalation shows, before its mail is out.
            expected = case.inbox.expected
            case.inbox.expect(expected | RETRY)
            await rec.escalate(reason=f"{escalation}: {answer}", actor=partner)
            case.inbox.expect(expected)
        retry = await case.deadlines.wait_retry(settles)
        if retry is None:
            return None
        rec.add(Kind.RETRIED, retry.actor or Actor.AGENT, retry.notes or "Retried by an agent.")
