"""Review: the policy's or an agent's decision, with the customer asked for more on the way."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import Approve, ApproveException, Reject, Reply, RequestInfo
    from domain.models import CaseStatus, Deadline
    from domain.names import Actor, AgentVerb, CustomerVerb, Kind, Message, Timer
    from domain.rules import AGENT_ADJUSTMENT, AGENT_EXCEPTION, EXCEPTION_TYPES, TermsRefused
    from workflows.case import Case
    from workflows.ending import CaseEnded
    from workflows.inbox import Accepts

DECISIONS = Accepts(agent=frozenset({AgentVerb.APPROVE, AgentVerb.REJECT, AgentVerb.REQUEST_INFO}))
REPLIES = Accepts(customer=frozenset({CustomerVerb.REPLY}))
EXCEPTIONS = Accepts(agent=frozenset({AgentVerb.APPROVE_EXCEPTION}))
# The patch ID of a rejection that waits for a supervisor's exception (docs/versioning.md):
# before it, a rejected case ended at once, with its status recorded after the message.
RECONSIDER = "reconsider-rejections"


async def reject_ineligible(case: Case) -> None:
    """Reject a case the policy refuses, saying which rules fired and what else to do.

    Returns only when a supervisor approved the case as an exception (`reconsider`); the
    case's decision then holds the exception's terms.
    """
    reasons = "; ".join(rule.message for rule in case.view.decision.rules if rule.id != "in_window")
    if not workflow.patched(RECONSIDER):
        case.view.status = CaseStatus.REJECTED
        await case.recorder.notify(Message.CASE_REJECTED, reason=None)
        raise CaseEnded(CaseStatus.REJECTED, Kind.REJECTED, reasons, Actor.POLICY)
    # No agent's words: the message explains the rules that fired, in the customer's language.
    await reconsider(case, reasons, Actor.POLICY, reason=None)


async def reconsider(case: Case, message: str, actor: str, *, reason: str | None) -> None:
    """Reject the case; a return or exchange then waits for a supervisor's exception until the
    `exception_window` closes. Returns once one is approved, else ends the case rejected."""
    rec = case.recorder
    takes = case.view.type in EXCEPTION_TYPES and case.view.order.delivered_at is not None
    case.view.deadlines = []
    await rec.set_status(
        CaseStatus.REJECTED, Kind.REJECTED, actor, message, expect=EXCEPTIONS if takes else None
    )
    await rec.notify(Message.CASE_REJECTED, reason=reason)
    if takes:
        # Not listed among the case's deadlines: nobody owes anything by then.
        due_at = case.deadlines.due(Timer.EXCEPTION_WINDOW)
        while (found := await case.deadlines.wait_until(EXCEPTIONS, None, due_at)) is not None:
            if isinstance(found, ApproveException) and _approve(case, found):
                await rec.set_status(
                    CaseStatus.OPEN,
                    Kind.EXCEPTION_APPROVED,
                    found.actor or Actor.AGENT,
                    case.view.decision.rules[0].message,
                )
                return
    raise CaseEnded(CaseStatus.REJECTED, Kind.REJECTED, message, actor, recorded=True)


def _approve(case: Case, action: Approve | ApproveException) -> bool:
    """Take an approval's terms into the decision; False (the sender told why) if refused."""
    try:
        case.view.decision = case.approved_terms(action)
    except TermsRefused as refused:
        # The validator refuses these before they arrive; answered, never wedged.
        case.inbox.refuse_last(f"The case can't take these terms: {refused}.")
        return False
    return True


async def review(case: Case) -> None:
    """Auto-approve or wait for an agent; request_info loops through the customer."""
    rec, deadlines = case.recorder, case.deadlines
    if case.view.decision.fired(AGENT_EXCEPTION):
        return  # a supervisor approved it already, against the policy (`reconsider`)
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
                actor = decided.actor or Actor.AGENT
                if not _approve(case, decided):
                    continue
                if case.view.decision.fired(AGENT_ADJUSTMENT):
                    rec.add(Kind.TERMS_CHANGED, actor, case.view.decision.rules[-1].message)
                rec.add(Kind.APPROVED, actor, decided.notes or "Approved by an agent.")
                return
            case Reject():
                actor = decided.actor or Actor.AGENT
                if not workflow.patched(RECONSIDER):
                    case.view.status = CaseStatus.REJECTED
                    await rec.notify(Message.CASE_REJECTED, reason=decided.reason)
                    raise CaseEnded(CaseStatus.REJECTED, Kind.REJECTED, decided.reason, actor)
                await reconsider(case, decided.reason, actor, reason=decided.reason)
                return
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
