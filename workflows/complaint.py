"""A complaint (客訴): acknowledged at once, answered, investigated, resolved, followed up
(DESIGN 3.6).

An agent must answer within the first-response deadline (1 business hour, and a hard limit of
24 hours; each breach escalates). The agent then proposes a resolution; the customer accepts
or declines. An accepted resolution is carried out here (an apology, a coupon through the
storefront, a refund through the payment connector) or by a child case of its own (a return,
an exchange or a repair), which the complaint waits for. A day after it is resolved the
customer is asked whether they are satisfied: no goes back to investigation, escalated; yes or
no answer sends the survey. An agent may mark the complaint malicious at any wait: nothing
more is paid, the case goes to the review board and closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from domain.actions import Accept, Decline, MarkMalicious, Propose, Rate, Respond
    from domain.calendar import describe
    from domain.complaints import (
        CHILD_CASE_TYPES,
        REFUND_RESOLUTIONS,
        REVIEW_BOARD,
        child_decision,
        child_request,
    )
    from domain.models import CaseStatus, CaseType, CaseView, Deadline
    from domain.opening import details, new_case_id, new_token, summary
    from workflows.case import Accepts, CaseEnded, CaseInput, Input
    from workflows.inbound import InboundCase

MARK = frozenset({"mark_malicious"})
# What an agent does while the complaint is being investigated.
INVESTIGATION = Accepts(agent=frozenset({"respond", "propose"}) | MARK)
# The customer's answer to a proposal, or to the satisfaction check.
ANSWERS = Accepts(customer=frozenset({"accept", "decline"}), agent=MARK)
# Waits where only the agent's malicious mark can interrupt.
MARKABLE = Accepts(agent=MARK)
SURVEY = Accepts(customer=frozenset({"rate"}), agent=MARK)

_RESOLUTION_TEXT = {
    "apology": "an apology",
    "coupon": "a coupon",
    "partial_refund": "a partial refund",
    "refund": "a full refund",
    "return": "a return with a full refund",
    "exchange": "an exchange for the same items",
    "repair": "a free repair",
}


def _workflow_for(case_type: CaseType) -> Any:
    """The workflow class of a case type, or None while that type isn't built.

    Looked up when needed: the registry imports this module. Passed through, so the sandbox
    takes the worker's own registry instead of importing every workflow module again.
    """
    with workflow.unsafe.imports_passed_through():
        from workflows.registry import WORKFLOWS

    return WORKFLOWS.get(case_type)


@workflow.defn(name="ComplaintWorkflow")
class ComplaintWorkflow(InboundCase):
    """Acknowledge, answer, propose, carry out (or open a child case), follow up."""

    # Set while a child case carries out the resolution: the complaint can't be cancelled then,
    # or the customer would be told nothing happens while their return goes on.
    _child_running = False

    @workflow.run
    async def run(self, input: CaseInput) -> CaseView:
        """Run the complaint to its end."""
        return await self.run_case(self.lifecycle)

    @property
    def cancellable(self) -> bool:
        """Before the resolution is carried out, and never while a child case carries it out."""
        return super().cancellable and not self._child_running

    @property
    def items_total(self) -> Decimal:
        """What the complaint's items cost: the most it refunds."""
        return self._round(self.input.request.items_total)

    def _round(self, amount: Decimal) -> Decimal:
        exponent = Decimal(1).scaleb(-self.policy.currency_minor_units)
        return amount.quantize(exponent, rounding=ROUND_HALF_UP)

    async def lifecycle(self) -> None:
        """Every path of a complaint, from open to the survey."""
        found: Input | None = await self.first_response()
        while True:
            proposal = await self.investigate(found)
            found = None
            amount = self.amount_of(proposal)
            if not await self.propose(proposal, amount):
                continue
            if not await self.carry_out(proposal, amount):
                continue
            if await self.follow_up_complaint(proposal, amount):
                return

    # ---- first response and investigation ---------------------------------------

    async def first_response(self) -> Input:
        """Acknowledge, and wait for the agent's first answer under both first-response clocks.

        `first_response` (business hours) and `first_response_hard` (elapsed time) run side by
        side; whichever passes first escalates first, and the other escalates again when it
        passes (over a weekend the hard limit comes first). Both stay listed, overdue, until an
        agent answers.
        """
        clocks = {
            "first_response": self.due("first_response"),
            "first_response_hard": self.due("first_response_hard"),
        }
        for name, due_at in clocks.items():
            self.set_deadline(name, due_at)
        await self.set_status(
            CaseStatus.AWAITING_REVIEW, "awaiting_review", "system", expect=INVESTIGATION
        )
        await self.notify(
            "complaint_acknowledged",
            deadline=Deadline(name="first_response", due_at=clocks["first_response"]),
        )
        try:
            for name, due_at in sorted(clocks.items(), key=lambda clock: clock[1]):
                if workflow.now() < due_at:
                    found = await self.wait_until(INVESTIGATION, name, due_at)
                    if found is not None:
                        return found
                limit = describe(self.policy.timer(name))
                hard = " (the hard limit)" if name == "first_response_hard" else ""
                await self.breach(name, due_at, f"No first response within {limit}{hard}.")
            answer = await self.wait_until(INVESTIGATION, None, None)
            assert answer is not None
            return answer
        finally:
            for name in clocks:
                self._clear_deadline(name)

    async def investigate(self, found: Input | None) -> Propose:
        """Answer the customer and look into it until the agent proposes a workable resolution.

        `found` is the action that met the first response; a later round (after a decline or a
        dissatisfied customer) starts in `awaiting_review` again. A round has one `review`
        deadline: further answers or a refused proposal don't buy the agent more time.
        """
        if found is None:
            await self.set_status(
                CaseStatus.AWAITING_REVIEW,
                "awaiting_review",
                "system",
                "Back to investigation.",
                expect=INVESTIGATION,
            )
        due_at = self.due("review")
        while True:
            if found is None:
                found = await self.wait_escalating(INVESTIGATION, "review", due_at)
            self.check_malicious(found)
            if isinstance(found, Respond):
                self.add_timeline("responded", found.actor or "agent", found.message)
                # The customer hears by when to expect a proposal, while that is still ahead.
                ahead = workflow.now() < due_at
                await self.notify(
                    "complaint_response",
                    deadline=Deadline(name="review", due_at=due_at) if ahead else None,
                    response=found.message,
                )
            else:
                assert isinstance(found, Propose)
                refusal = self.refusal(found)
                if refusal is None:
                    return found
                self.refuse_last(refusal)
            found = None

    def refusal(self, proposal: Propose) -> str | None:
        """Why the complaint can't carry out a proposal, or None when it can."""
        resolution = proposal.resolution
        currency = self.view.order.currency
        if resolution in ("partial_refund", "coupon") and not proposal.amount:
            return f"A {resolution} needs an amount above zero."
        too_much = proposal.amount and self._round(proposal.amount) > self.items_total
        if resolution == "partial_refund" and too_much:
            return f"A partial refund can't exceed the items' {currency} {self.items_total}."
        refunded = self.view.refund
        if refunded is not None and resolution in (*REFUND_RESOLUTIONS, "return"):
            # Exactly one refund per case; a return would refund the customer a second time.
            return (
                f"This complaint already refunded {refunded.currency} {refunded.amount}; "
                "propose another resolution."
            )
        if resolution in CHILD_CASE_TYPES:
            if self.view.order.delivered_at is None:
                return f"The order hasn't been delivered, so a {resolution} can't start yet."
            if _workflow_for(CHILD_CASE_TYPES[resolution]) is None:
                return f"{resolution.title()} cases are not available yet."
        return None

    def amount_of(self, proposal: Propose) -> Decimal | None:
        """The money a proposal gives: a refund's full total, a partial refund's or a coupon's
        amount; None for the rest (a return's child case refunds on its own)."""
        if proposal.resolution == "refund":
            return self.items_total
        if proposal.resolution in ("partial_refund", "coupon") and proposal.amount:
            return self._round(proposal.amount)
        return None

    # ---- proposal and carrying it out -----------------------------------------------

    async def propose(self, proposal: Propose, amount: Decimal | None) -> bool:
        """Put the resolution to the customer; True when they accept it.

        A decline, or no answer within `offer_response`, sends the complaint back to
        investigation one priority higher (docs/decisions.md).
        """
        actor = proposal.actor or "agent"
        offered = _RESOLUTION_TEXT[proposal.resolution]
        if amount is not None:
            offered += f" of {self.view.order.currency} {amount}"
        self.add_timeline(
            "offer_made",
            actor,
            f"Proposed {offered}.",
            {"resolution": proposal.resolution, "amount": self.money(amount)},
        )
        answer = await self.offer(
            "resolution_proposed",
            answers=ANSWERS,
            resolution=proposal.resolution,
            amount=self.money(amount),
            note=proposal.message,
        )
        self.check_malicious(answer)
        if isinstance(answer, Accept):
            self.add_timeline("offer_accepted", "customer", f"The customer accepted {offered}.")
            return True
        self.view.priority = self.view.priority.raised()
        by = "customer" if isinstance(answer, Decline) else "timer"
        why = "declined the proposal" if by == "customer" else "didn't answer the proposal in time"
        self.add_timeline(
            "offer_declined",
            by,
            f"The customer {why}; back to investigation at {self.view.priority} priority.",
            {"priority": self.view.priority.value},
        )
        return False

    async def carry_out(self, proposal: Propose, amount: Decimal | None) -> bool:
        """Deliver the accepted resolution; False when a child case ended without doing so."""
        resolution = proposal.resolution
        if resolution == "coupon":
            assert amount is not None
            await self.publish("case.coupon_issued", self.money(amount))
            self.add_timeline(
                "coupon_issued",
                "system",
                f"Coupon of {self.view.order.currency} {amount} issued through the storefront.",
            )
        elif resolution in REFUND_RESOLUTIONS:
            assert amount is not None
            await self.refund_now(amount, reason=f"complaint_{resolution}")
        elif resolution in CHILD_CASE_TYPES:
            return await self.run_child(CHILD_CASE_TYPES[resolution])
        else:
            self.add_timeline("apology_accepted", "customer", "The customer accepted the apology.")
        return True

    def child_input(self, case_type: CaseType) -> CaseInput:
        """A new case of its own to carry out the resolution, linked to this one.

        Its ID and token come from the workflow's seeded randomness, so a replay opens the
        same case; its status page lives beside this one's.
        """
        rng = workflow.random()
        case_id = new_case_id(case_type, rng)
        token = new_token(rng)
        request = child_request(self.input.request, case_type)
        return CaseInput(
            case_id=case_id,
            request=request,
            decision=child_decision(
                request,
                policy=self.policy,
                now=workflow.now(),
                high_risk=self.view.decision.high_risk,
                parent_case_id=self.view.id,
            ),
            policy=self.policy,
            token=token,
            status_url=f"{self.view.status_url.rsplit('/', 1)[0]}/{token}",
            opened_at=workflow.now(),
            holidays=self.input.holidays,
            queue=self.view.queue,
            parent_case_id=self.view.id,
            priority=self.view.priority,
        )

    async def run_child(self, case_type: CaseType) -> bool:
        """Open the child case and wait for it to end; True when it delivered its outcome.

        The child runs on this task queue with parent-close policy ABANDON: it is a case of its
        own, with promises to the customer (a pickup, a refund) that must not stop mid-step if
        this complaint closes first (marked malicious, or ended by an operator).
        """
        child = self.child_input(case_type)
        handle = await workflow.start_child_workflow(
            _workflow_for(case_type).run,
            child,
            id=child.case_id,
            task_queue=workflow.info().task_queue,
            parent_close_policy=ParentClosePolicy.ABANDON,
            result_type=CaseView,
            static_summary=summary(child.case_id, child.request, child.decision),
            static_details=details(
                child.case_id, child.request, child.decision, parent_case_id=self.view.id
            ),
        )
        noun = f"{case_type.value.title()} case {child.case_id}"
        self.view.child_case_ids.append(child.case_id)
        self.add_timeline(
            "child_case_opened",
            "system",
            f"{noun} opened to carry out the resolution.",
            {"child_case_id": child.case_id},
        )
        self._child_running = True
        try:
            await self.set_status(
                CaseStatus.AWAITING_SHIPMENT,
                "awaiting_shipment",
                "system",
                f"{noun} takes the item back.",
                expect=MARKABLE,
            )
            marked = asyncio.create_task(self.wait_until(MARKABLE, None, None))
            await workflow.wait([marked, handle], return_when=asyncio.FIRST_COMPLETED)
            if marked.done():
                self.check_malicious(marked.result())
            marked.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await marked
            try:
                result: CaseView | None = handle.result()
            except ChildWorkflowError:
                result = None
        finally:
            self._child_running = False
        if result is not None and any(entry.kind == "resolved" for entry in result.timeline):
            self.add_timeline(
                "child_case_resolved",
                "system",
                f"{noun} delivered its outcome.",
                {"child_case_id": child.case_id},
            )
            return True
        ended = result.status.value if result is not None else "failed"
        await self.escalate(
            reason=f"{noun} ended {ended} without carrying out the resolution.", actor="system"
        )
        return False

    # ---- after the resolution ---------------------------------------------------------

    async def follow_up_complaint(self, proposal: Propose, amount: Decimal | None) -> bool:
        """Resolved: a day later ask whether the customer is satisfied; True once surveyed.

        Dissatisfied goes back to investigation, escalated (False); satisfied, or no answer
        within `offer_response`, sends the survey.
        """
        child_id = self.view.child_case_ids[-1] if proposal.resolution in CHILD_CASE_TYPES else None
        await self.set_status(CaseStatus.RESOLVED, "resolved", "system", expect=MARKABLE)
        await self.notify(
            "resolution_done",
            resolution=proposal.resolution,
            amount=self.money(amount),
            child_case_id=child_id,
        )
        self.check_malicious(await self.wait(MARKABLE, "complaint_follow_up"))

        due_at = self.due("offer_response")
        self.set_deadline("offer_response", due_at)
        await self.set_status(CaseStatus.RESOLVED, "satisfaction_check", "system", expect=ANSWERS)
        await self.notify(
            "satisfaction_check", deadline=Deadline(name="offer_response", due_at=due_at)
        )
        answer = await self.wait_until(ANSWERS, "offer_response", due_at)
        self.check_malicious(answer)
        if isinstance(answer, Decline):
            self.add_timeline(
                "dissatisfied", "customer", "The customer is not satisfied with the resolution."
            )
            await self.escalate(
                reason="The customer is not satisfied with the complaint's resolution.",
                actor="customer",
            )
            return False
        if answer is None:
            self.add_timeline(
                "satisfied", "timer", "No answer to the satisfaction check: taken as satisfied."
            )
        else:
            self.add_timeline("satisfied", "customer", "The customer is satisfied.")
        await self.survey()
        return True

    async def survey(self) -> None:
        """Send the survey and take a rating until it closes."""
        due_at = self.due("survey")
        self.set_deadline("survey", due_at)
        await self.set_status(CaseStatus.RESOLVED, "survey_sent", "system", expect=SURVEY)
        await self.notify("survey", deadline=Deadline(name="survey", due_at=due_at))
        rating = await self.wait_until(SURVEY, "survey", due_at)
        self.check_malicious(rating)
        if rating is None:
            self.add_timeline("survey_expired", "timer", "No rating before the survey closed.")
            return
        assert isinstance(rating, Rate)
        self.view.rating = rating.score
        self.add_timeline("rated", "customer", rating.comment, {"score": rating.score})

    # ---- malicious ------------------------------------------------------------------

    def check_malicious(self, found: Input | None) -> None:
        """End the complaint if an agent marked it malicious: no compensation from here on,
        the review board's queue, and a record the store refuses to delete."""
        if not isinstance(found, MarkMalicious):
            return
        actor = found.actor or "agent"
        self.view.malicious = True
        self.view.queue = REVIEW_BOARD
        self.add_timeline("marked_malicious", actor, found.notes)
        if self._child_running:
            self.add_timeline(
                "note",
                "system",
                f"Case {self.view.child_case_ids[-1]} it opened keeps running; "
                "an agent decides on it there.",
            )
        raise CaseEnded(
            CaseStatus.CLOSED,
            "closed",
            "Closed as malicious: no compensation; the review board keeps the record.",
            actor,
        )
