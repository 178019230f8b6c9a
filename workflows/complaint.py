"""A complaint (客訴): acknowledged at once, answered, investigated, resolved, followed up
(DESIGN 3.6).

An agent must answer within the first-response deadline (1 business hour, and a hard limit of
24 hours; each breach escalates). While the agent investigates, they may ask the customer
questions (`request_info`) and the customer may reply with a message and evidence at any time;
the agent still owes a proposal by the `review` deadline. The agent then proposes a
resolution; the customer accepts or declines. An accepted resolution is carried out here (an
apology, a coupon through the storefront, a refund through the payment connector) or by a
child case of its own (a return, an exchange or a repair), which the complaint waits for. A day
after it is resolved the customer is asked whether they are satisfied: no goes back to
investigation, escalated; yes or no answer sends the survey. An agent may mark the complaint
malicious at any wait: nothing more is paid, the case goes to the review board and closes.
"""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import (
        Accept,
        Decline,
        MarkMalicious,
        Propose,
        Reply,
        RequestInfo,
        Respond,
    )
    from domain.calendar import describe
    from domain.complaints import CHILD_CASE_TYPES, REFUND_RESOLUTIONS, REVIEW_BOARD
    from domain.models import CaseOutcome, CaseStatus, Deadline
    from domain.money import round_money
    from domain.names import (
        WORKFLOW_NAMES,
        Actor,
        AgentVerb,
        CustomerVerb,
        Kind,
        Message,
        Timer,
        Webhook,
        WorkflowName,
    )
    from workflows.case import Case, CaseHandlers, CaseInput
    from workflows.ending import CaseEnded
    from workflows.inbox import Accepts, Input
    from workflows.steps.child import run_child
    from workflows.steps.credit import issue_credit
    from workflows.steps.follow_up import record_rating
    from workflows.steps.offer import offer
    from workflows.steps.refund import refund_now

# The patch ID of issuing a coupon through the storefront's store-credit API (before it, the
# coupon was only announced by webhook; docs/versioning.md).
COUPON_THROUGH_STOREFRONT = "complaint-coupon-storefront"

MARK = frozenset({AgentVerb.MARK_MALICIOUS.value})
# An agent's first answer: a reply, a question for the customer, or a proposal.
FIRST_ANSWERS = Accepts(
    agent=frozenset({AgentVerb.RESPOND, AgentVerb.REQUEST_INFO, AgentVerb.PROPOSE}) | MARK
)
# While the complaint is investigated the customer may add a message and evidence too.
INVESTIGATION = FIRST_ANSWERS | Accepts(customer=frozenset({CustomerVerb.REPLY}))
# The customer's answer to a proposal, or to the satisfaction check.
ANSWERS = Accepts(customer=frozenset({CustomerVerb.ACCEPT, CustomerVerb.DECLINE}), agent=MARK)
# Waits where only the agent's malicious mark can interrupt.
MARKABLE = Accepts(agent=MARK)
SURVEY = Accepts(customer=frozenset({CustomerVerb.RATE}), agent=MARK)
FIRST_RESPONSE_CLOCKS = (Timer.FIRST_RESPONSE, Timer.FIRST_RESPONSE_HARD)
# A negative review opened on a non-working day: 2 hours of real time instead of 1 business
# hour, which would not start before the next working morning.
NEGATIVE_REVIEW_CLOCKS = (Timer.NEGATIVE_REVIEW_RESPONSE, Timer.FIRST_RESPONSE_HARD)
# Cases started before the 2-hour clock keep the business-hour clock they listed.
NEGATIVE_REVIEW_CLOCK = "complaint-negative-review-clock"

_RESOLUTION_TEXT = {
    "apology": "an apology",
    "coupon": "a coupon",
    "partial_refund": "a partial refund",
    "refund": "a full refund",
    "return": "a return with a full refund",
    "exchange": "an exchange for the same items",
    "repair": "a free repair",
}


@workflow.defn(name=WorkflowName.COMPLAINT.value)
class ComplaintWorkflow(CaseHandlers):
    """Acknowledge, answer, propose, carry out (or open a child case), follow up."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the complaint to its end."""
        return await self.case.run(self.lifecycle)

    async def lifecycle(self) -> None:
        """Every path of a complaint, from open to the survey."""
        found: Input | None = await self.first_response()
        while True:
            proposal = await self.investigate(found)
            found = None
            amount = amount_of(self.case, proposal)
            if not await self.propose(proposal, amount):
                continue
            if not await self.carry_out(proposal, amount):
                continue
            if await self.follow_up(proposal, amount):
                return

    # ---- first response and investigation ---------------------------------------

    async def first_response(self) -> Input:
        """Acknowledge, and wait for the agent's first answer under both first-response clocks.

        `first_response` (business hours) and `first_response_hard` (elapsed time) run side by
        side; whichever passes first escalates first, and the other escalates again when it
        passes (over a weekend the hard limit comes first). Both stay listed, overdue, until an
        agent answers.
        """
        rec, deadlines = self.case.recorder, self.case.deadlines
        names = self.first_response_clocks()
        clocks = {name: deadlines.due(name) for name in names}
        for name, due_at in clocks.items():
            deadlines.set(name, due_at)
        await rec.set_status(
            CaseStatus.AWAITING_REVIEW, Kind.AWAITING_REVIEW, Actor.SYSTEM, expect=FIRST_ANSWERS
        )
        # The customer is promised the first clock (the soft one), as before.
        await rec.notify(
            Message.COMPLAINT_ACKNOWLEDGED,
            deadline=Deadline(name=names[0], due_at=clocks[names[0]]),
        )
        try:
            for name, due_at in sorted(clocks.items(), key=lambda clock: clock[1]):
                if self.case.now() < due_at:
                    found = await deadlines.wait_until(FIRST_ANSWERS, name, due_at)
                    if found is not None:
                        return found
                limit = describe(self.case.policy.timer(name))
                hard = " (the hard limit)" if name == Timer.FIRST_RESPONSE_HARD else ""
                await deadlines.breach(name, due_at, f"No first response within {limit}{hard}.")
            return await deadlines.wait_any(FIRST_ANSWERS)
        finally:
            for name in clocks:
                deadlines.clear(name)

    def first_response_clocks(self) -> tuple[Timer, Timer]:
        """The first-response clocks: the 2-hour one for a negative review opened on a
        non-working day (a weekend or a holiday of the business calendar), else the usual."""
        case = self.case
        complaint = case.view.complaint
        if complaint is None or not complaint.negative_review:
            return FIRST_RESPONSE_CLOCKS
        today = case.now().astimezone(case.calendar.zone).date()
        if case.calendar.is_business_day(today) or not workflow.patched(NEGATIVE_REVIEW_CLOCK):
            return FIRST_RESPONSE_CLOCKS
        return NEGATIVE_REVIEW_CLOCKS

    async def investigate(self, found: Input | None) -> Propose:
        """Answer the customer and look into it until the agent proposes a workable resolution.

        `found` is the action that met the first response; a later round (after a decline or a
        dissatisfied customer) starts in `awaiting_review` again. A round has one `review`
        deadline: further answers or a refused proposal don't buy the agent more time.
        """
        case, rec, deadlines = self.case, self.case.recorder, self.case.deadlines
        if found is None:
            await rec.set_status(
                CaseStatus.AWAITING_REVIEW,
                Kind.AWAITING_REVIEW,
                Actor.SYSTEM,
                "Back to investigation.",
                expect=INVESTIGATION,
            )
        due_at = deadlines.due(Timer.REVIEW)
        while True:
            if found is None:
                found = await deadlines.wait_escalating(INVESTIGATION, Timer.REVIEW, due_at)
            self.check_malicious(found)
            match found:
                case Respond():
                    rec.add(Kind.RESPONDED, found.actor or Actor.AGENT, found.message)
                    # The customer hears by when to expect a proposal, while that is still ahead.
                    ahead = case.now() < due_at
                    await rec.notify(
                        Message.COMPLAINT_RESPONSE,
                        deadline=Deadline(name=Timer.REVIEW, due_at=due_at) if ahead else None,
                        response=found.message,
                    )
                case RequestInfo():
                    # A question, not a proposal: the agent still owes one by the same deadline.
                    rec.add(Kind.INFO_REQUESTED, found.actor or Actor.AGENT, found.question)
                    await rec.notify(Message.INFO_NEEDED, deadline=None, question=found.question)
                case Reply():
                    case.view.evidence = [*case.view.evidence, *found.evidence]
                    data = {"evidence": found.evidence} if found.evidence else {}
                    rec.add(Kind.CUSTOMER_REPLIED, Actor.CUSTOMER, found.message, data)
                case Propose():
                    why = refusal(case, found)
                    if why is None:
                        return found
                    case.inbox.refuse_last(why)
                case _:
                    case.inbox.refuse_last(
                        "Only respond, request_info, propose or a reply are taken here."
                    )
            found = None

    # ---- proposal and carrying it out -----------------------------------------------

    async def propose(self, proposal: Propose, amount: Decimal | None) -> bool:
        """Put the resolution to the customer; True when they accept it.

        A decline, or no answer within `offer_response`, sends the complaint back to
        investigation one priority higher (docs/decisions.md).
        """
        case, rec = self.case, self.case.recorder
        actor = proposal.actor or Actor.AGENT
        offered = _RESOLUTION_TEXT[proposal.resolution]
        if amount is not None:
            offered += f" of {case.view.order.currency} {amount}"
        coupon = _round(case, proposal.coupon) if proposal.coupon else None
        if coupon is not None:
            offered += f" and a coupon of {case.view.order.currency} {coupon}"
        rec.add(
            Kind.OFFER_MADE,
            actor,
            f"Proposed {offered}.",
            {"resolution": proposal.resolution, "amount": rec.money(amount)}
            | ({"coupon": rec.money(coupon)} if coupon is not None else {}),
        )
        answer = await offer(
            case,
            Message.RESOLUTION_PROPOSED,
            answers=ANSWERS,
            resolution=proposal.resolution,
            amount=rec.money(amount),
            note=proposal.message,
            coupon=rec.money(coupon),
        )
        self.check_malicious(answer)
        if isinstance(answer, Accept):
            rec.add(Kind.OFFER_ACCEPTED, Actor.CUSTOMER, f"The customer accepted {offered}.")
            return True
        case.view.priority = case.view.priority.raised()
        by = Actor.CUSTOMER if isinstance(answer, Decline) else Actor.TIMER
        why = (
            "declined the proposal"
            if by == Actor.CUSTOMER
            else "didn't answer the proposal in time"
        )
        rec.add(
            Kind.OFFER_DECLINED,
            by,
            f"The customer {why}; back to investigation at {case.view.priority} priority.",
            {"priority": case.view.priority.value},
        )
        return False

    async def carry_out(self, proposal: Propose, amount: Decimal | None) -> bool:
        """Deliver the accepted resolution; False when a child case ended without doing so."""
        case, rec = self.case, self.case.recorder
        if proposal.coupon:
            # A combined resolution: the coupon first, then the rest of it.
            await self.issue_coupon(_round(case, proposal.coupon))
        match proposal.resolution, amount:
            case "coupon", Decimal():
                await self.issue_coupon(amount)
            case resolution, Decimal() if resolution in REFUND_RESOLUTIONS:
                await refund_now(case, amount, reason=f"complaint_{resolution}")
            case resolution, _ if resolution in CHILD_CASE_TYPES:
                child_type = CHILD_CASE_TYPES[resolution]
                return await run_child(case, child_type, MARKABLE, self.check_malicious)
            case _:
                rec.add(Kind.APOLOGY_ACCEPTED, Actor.CUSTOMER, "The customer accepted the apology.")
        return True

    async def issue_coupon(self, amount: Decimal) -> None:
        """Issue a coupon through the storefront, once, and tell the storefront and timeline."""
        case, rec = self.case, self.case.recorder
        if workflow.patched(COUPON_THROUGH_STOREFRONT):
            # Issued by the storefront's API, once (its key is the case's `coupon` step), and
            # the customer gets its code.
            await issue_credit(case, amount, reason="complaint_coupon", kind="coupon")
        await rec.publish(Webhook.COUPON_ISSUED, rec.money(amount))
        rec.add(
            Kind.COUPON_ISSUED,
            Actor.SYSTEM,
            f"Coupon of {case.view.order.currency} {amount} issued through the storefront.",
        )

    # ---- after the resolution ---------------------------------------------------------

    async def follow_up(self, proposal: Propose, amount: Decimal | None) -> bool:
        """Resolved: a day later ask whether the customer is satisfied; True once surveyed.

        Dissatisfied goes back to investigation, escalated (False); satisfied, or no answer
        within `offer_response`, sends the survey.
        """
        case, rec, deadlines = self.case, self.case.recorder, self.case.deadlines
        children = case.view.child_case_ids
        child_id = children[-1] if proposal.resolution in CHILD_CASE_TYPES else None
        await rec.set_status(CaseStatus.RESOLVED, Kind.RESOLVED, Actor.SYSTEM, expect=MARKABLE)
        await rec.notify(
            Message.RESOLUTION_DONE,
            resolution=proposal.resolution,
            amount=rec.money(amount),
            child_case_id=child_id,
            # A combined resolution's coupon, issued before the rest.
            coupon=rec.money(proposal.coupon),
        )
        self.check_malicious(await deadlines.wait(MARKABLE, Timer.COMPLAINT_FOLLOW_UP))

        due_at = deadlines.due(Timer.OFFER_RESPONSE)
        deadlines.set(Timer.OFFER_RESPONSE, due_at)
        await rec.set_status(
            CaseStatus.RESOLVED, Kind.SATISFACTION_CHECK, Actor.SYSTEM, expect=ANSWERS
        )
        await rec.notify(
            Message.SATISFACTION_CHECK,
            deadline=Deadline(name=Timer.OFFER_RESPONSE, due_at=due_at),
        )
        answer = await deadlines.wait_until(ANSWERS, Timer.OFFER_RESPONSE, due_at)
        self.check_malicious(answer)
        if isinstance(answer, Decline):
            rec.add(
                Kind.DISSATISFIED,
                Actor.CUSTOMER,
                "The customer is not satisfied with the resolution.",
            )
            await rec.escalate(
                reason="The customer is not satisfied with the complaint's resolution.",
                actor=Actor.CUSTOMER,
            )
            return False
        if answer is None:
            rec.add(
                Kind.SATISFIED,
                Actor.TIMER,
                "No answer to the satisfaction check: taken as satisfied.",
            )
        else:
            rec.add(Kind.SATISFIED, Actor.CUSTOMER, "The customer is satisfied.")
        await self.survey()
        return True

    async def survey(self) -> None:
        """Send the survey and take a rating until it closes."""
        rec, deadlines = self.case.recorder, self.case.deadlines
        due_at = deadlines.due(Timer.SURVEY)
        deadlines.set(Timer.SURVEY, due_at)
        await rec.set_status(CaseStatus.RESOLVED, Kind.SURVEY_SENT, Actor.SYSTEM, expect=SURVEY)
        await rec.notify(Message.SURVEY, deadline=Deadline(name=Timer.SURVEY, due_at=due_at))
        rating = await deadlines.wait_until(SURVEY, Timer.SURVEY, due_at)
        self.check_malicious(rating)
        record_rating(self.case, rating)

    # ---- malicious ------------------------------------------------------------------

    def check_malicious(self, found: Input | None) -> None:
        """End the complaint if an agent marked it malicious: no compensation from here on,
        the review board's queue, and a record the store refuses to delete."""
        if not isinstance(found, MarkMalicious):
            return
        case = self.case
        actor = found.actor or Actor.AGENT
        case.view.malicious = True
        case.view.queue = REVIEW_BOARD
        case.recorder.add(Kind.MARKED_MALICIOUS, actor, found.notes)
        if case.locked:
            case.recorder.add(
                Kind.NOTE,
                Actor.SYSTEM,
                f"Case {case.view.child_case_ids[-1]} it opened keeps running; "
                "an agent decides on it there.",
            )
        raise CaseEnded(
            CaseStatus.CLOSED,
            Kind.CLOSED,
            "Closed as malicious: no compensation; the review board keeps the record.",
            actor,
        )


# ---- the rules of a proposal ------------------------------------------------------------


def items_total(case: Case) -> Decimal:
    """What the complaint's items cost: the most it refunds."""
    return _round(case, case.input.request.items_total)


def _round(case: Case, amount: Decimal) -> Decimal:
    return round_money(amount, case.policy.currency_minor_units)


def refusal(case: Case, proposal: Propose) -> str | None:
    """Why the complaint can't carry out a proposal, or None when it can."""
    resolution = proposal.resolution
    currency = case.view.order.currency
    total = items_total(case)
    if resolution in ("partial_refund", "coupon") and not proposal.amount:
        return f"A {resolution} needs an amount above zero."
    too_much = proposal.amount and _round(case, proposal.amount) > total
    if resolution == "partial_refund" and too_much:
        return f"A partial refund can't exceed the items' {currency} {total}."
    if proposal.coupon is not None and (resolution == "coupon" or not proposal.coupon):
        return "A coupon on top needs an amount above zero, and a resolution other than a coupon."
    credited = case.view.store_credit
    if credited is not None and (resolution == "coupon" or proposal.coupon):
        # Exactly one coupon per case, as one refund: the storefront keys it by the case.
        return (
            f"This complaint already issued a coupon of {credited.currency} {credited.amount}; "
            "propose another resolution."
        )
    refunded = case.view.refund
    if refunded is not None and resolution in (*REFUND_RESOLUTIONS, "return"):
        # Exactly one refund per case; a return would refund the customer a second time.
        return (
            f"This complaint already refunded {refunded.currency} {refunded.amount}; "
            "propose another resolution."
        )
    if resolution in CHILD_CASE_TYPES:
        if case.view.order.delivered_at is None:
            return f"The order hasn't been delivered, so a {resolution} can't start yet."
        if CHILD_CASE_TYPES[resolution] not in WORKFLOW_NAMES:
            return f"{resolution.title()} cases are not available yet."
    return None


def amount_of(case: Case, proposal: Propose) -> Decimal | None:
    """The money a proposal gives: a refund's full total, a partial refund's or a coupon's
    amount; None for the rest (a return's child case refunds on its own)."""
    if proposal.resolution == "refund":
        return items_total(case)
    if proposal.resolution in ("partial_refund", "coupon") and proposal.amount:
        return _round(case, proposal.amount)
    return None
