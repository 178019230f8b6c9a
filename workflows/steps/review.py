"""Review: the policy's or an agent's decision, with the customer asked for more on the way."""

from __future__ import annotations

from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import Approve, Reject, Reply, RequestInfo
    from domain.models import CaseStatus, Deadline
    from domain.names import Actor, AgentVerb, CustomerVerb, Kind, Message, Timer
    from workflows.case import Case
    from workflows.ending import CaseEnded
    from workflows.inbox import Accepts

DECISIONS = Accepts(agent=frozenset({AgentVerb.APPROVE, AgentVerb.REJECT, AgentVerb.REQUEST_INFO}))
REPLIES = Accepts(customer=frozenset({CustomerVerb.REPLY}))


async def reject_ineligible(case: Case) -> NoReturn:
    """End a case the policy refuses, saying which rules fired and what else to do."""
    reasons = "; ".join(rule.message for rule in case.view.decision.rules if rule.id != "in_window")
    case.view.status = CaseStatus.REJECTED
    # No agent's words: the message explains the rules that fired, in the customer's language.
    await case.recorder.notify(Message.CASE_REJECTED, reason=None)
    raise CaseEnded(CaseStatus.REJECTED, Kind.REJECTED, reasons, Actor.POLICY)


async def review(case: Case) -> None:
    """Auto-approve or wait for an agent; request_info loops through the customer."""
    rec, deadlines = case.recorder, case.deadlines
    if case.view.decision.review == "auto":
        rec.add(Kind.APPROVED, Actor.POLICY, "Approved automatically under the return policy.")
        return
    while True:
        await rec.set_status(
            CaseStatus.AWAITING_REVIEW, Kind.AWAITING_REVIEW, Actor.SYSTEM, expect=DECISIONS
        )
        due_at = deadlines.due(Timer.REVIEW)
        decided = await deadlines.wait_until(DECISIONS, Timer.REVIEW, due_at)
        if decided is None:
            await deadlines.breach(Timer.REVIEW, due_at, "No agent reviewed the case in time.")
            if case.policy.returns.auto_approve_on_review_timeout:
                rec.add(Kind.APPROVED, Actor.POLICY, "Approved when the review deadline passed.")
                return
            decided = await deadlines.wait_overdue(DECISIONS, Timer.REVIEW, due_at)
        match decided:
            case Approve():
                rec.add(
                    Kind.APPROVED,
                    decided.actor or Actor.AGENT,
                    decided.notes or "Approved by an agent.",
                )
                return
            case Reject():
                case.view.status = CaseStatus.REJECTED
                await rec.notify(Message.CASE_REJECTED, reason=decided.reason)
                actor = decided.actor or Actor.AGENT
                raise CaseEnded(CaseStatus.REJECTED, Kind.REJECTED, decided.reason, actor)
            case RequestInfo():
                await ask_customer(case, decided.question, decided.actor or Actor.AGENT)
            case _:
                # Can't happen: the review takes only its decisions. Answer, never wedge.
                case.inbox.refuse_last("Only approve, reject or request_info are taken here.")


async def ask_customer(case: Case, question: str, actor: str) -> None:
    """Ask the customer for information and wait for the reply (reminder, then expiry)."""
    rec, deadlines = case.recorder, case.deadlines
    due_at = deadlines.due(Timer.CUSTOMER_INFO)
    deadlines.set(Timer.CUSTOMER_INFO, due_at)
    await rec.set_status(
        CaseStatus.AWAITING_CUSTOMER, Kind.INFO_REQUESTED, actor, question, expect=REPLIES
    )
    await rec.notify(
        Message.INFO_NEEDED,
        deadline=Deadline(name=Timer.CUSTOMER_INFO, due_at=due_at),
        question=question,
    )
    reply = await deadlines.wait_reminding(
        REPLIES,
        Timer.CUSTOMER_INFO,
        Timer.CUSTOMER_INFO_REMINDER,
        Message.INFO_REMINDER,
        due_at=due_at,
        nudge_about=Message.INFO_NEEDED,
        question=question,
    )
    if reply is None:
        raise await deadlines.expire(Timer.CUSTOMER_INFO)
    if isinstance(reply, Reply):
        case.view.evidence = [*case.view.evidence, *reply.evidence]
        rec.add(Kind.CUSTOMER_REPLIED, Actor.CUSTOMER, reply.message)
