"""Refund only (僅退款): money back without a return, or before the order arrives (DESIGN 3.4)."""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inputs import RequestInterception
    from domain.actions import Accept, EventType, Propose
    from domain.models import CaseOutcome, CaseStatus, RuleHit
    from domain.names import Actor, AgentVerb, Kind, Message, Timer, Webhook, WorkflowName
    from domain.rules import STORE_CREDIT, credit_sentence, credit_terms
    from workflows import calls
    from workflows.case import CaseHandlers, CaseInput
    from workflows.ending import CaseEnded
    from workflows.failures import until_done
    from workflows.inbox import Accepts
    from workflows.steps.credit import credit_now
    from workflows.steps.follow_up import follow_up
    from workflows.steps.inbound import receive_item
    from workflows.steps.offer import offer
    from workflows.steps.outbound import ship_to_customer
    from workflows.steps.refund import refund, refund_now
    from workflows.steps.review import reject_ineligible

PROPOSALS = Accepts(agent=frozenset({AgentVerb.PROPOSE, AgentVerb.REJECT}))
INTERCEPTION = frozenset({EventType.CARRIER_INTERCEPTED, EventType.CARRIER_DELIVERED})
REFUNDS = ("partial_refund", "refund")


@workflow.defn(name=WorkflowName.REFUND.value)
class RefundWorkflow(CaseHandlers):
    """Cancel and refund, intercept and refund, or offer a refund for an item the customer keeps."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the refund case to its end."""
        return await self.case.run(self.lifecycle)

    async def lifecycle(self) -> None:
        """Every path of a refund-only case, from open to the survey."""
        case = self.case
        decision, order = case.view.decision, case.view.order
        await case.recorder.notify(Message.CASE_RECEIVED)
        if not decision.eligible:
            # Ends the case: only returns and exchanges wait for a supervisor's exception.
            await reject_ineligible(case)
        total = decision.refund_estimate.amount
        if order.delivered_at is None and order.shipped_at is None:
            await self.cancel_unshipped(total)
        elif order.delivered_at is None:
            await self.intercept(total)
        elif decision.returnless:
            case.recorder.add(
                Kind.APPROVED,
                Actor.POLICY,
                "Approved: a full refund, and the customer keeps the item.",
            )
            await refund_now(case, total, reason="returnless")
        else:
            await self.offer_refund(total)
        await follow_up(case)

    async def cancel_unshipped(self, total: Decimal) -> None:
        """Not shipped: the storefront cancels fulfilment; the refund goes out within the hour."""
        rec = self.case.recorder
        rec.add(Kind.APPROVED, Actor.POLICY, "Approved: the order had not shipped.")
        await rec.publish(Webhook.CANCEL_FULFILMENT, {"order_id": self.case.view.order.id})
        await rec.notify(Message.FULFILMENT_CANCELLED)
        await rec.set_status(CaseStatus.REFUND_PENDING, Kind.REFUND_PENDING, Actor.SYSTEM)
        await refund(self.case, total, reason="not_shipped", timer=Timer.REFUND_UNSHIPPED)

    async def intercept(self, total: Decimal) -> None:
        """Shipped, not delivered: stop the parcel; if delivered first, take it back instead."""
        case, rec = self.case, self.case.recorder
        rec.add(Kind.APPROVED, Actor.POLICY, "Approved: the parcel is still on its way.")
        request = RequestInterception(
            case_id=case.view.id,
            tracking_number=case.view.order.tracking_number,
            idempotency_key=f"{case.view.id}:interception",
        )
        # Refused: an agent retries, or the carrier reports the parcel stopped or delivered.
        await until_done(
            case,
            lambda: calls.request_interception(request, case.journal),
            partner=Actor.CARRIER,
            escalation="The carrier refused the interception",
            settles=INTERCEPTION,
        )
        await rec.set_status(CaseStatus.IN_TRANSIT, Kind.INTERCEPTION_REQUESTED, Actor.CARRIER)
        await rec.notify(Message.INTERCEPTION_REQUESTED)
        outcome = await case.deadlines.event(INTERCEPTION, Timer.INTERCEPTION)
        if outcome.type == EventType.CARRIER_INTERCEPTED:
            await refund_now(case, total, reason="intercepted")
            return
        # Delivered before the carrier could stop it: the case goes on as a return.
        rec.add(Kind.INTERCEPTION_FAILED, Actor.CARRIER, "Delivered before it could be stopped.")
        case.view.decision.shipping_payer = "seller"
        await rec.notify(Message.INTERCEPTION_FAILED)
        inspection = (await receive_item(case)).inspection
        if inspection is not None and inspection.result == "fail":
            rec.add(Kind.INSPECTION_FAILED, Actor.WAREHOUSE, inspection.notes)
            partial = inspection.refund_amount
            await rec.notify(
                Message.INSPECTION_FAILED,
                notes=inspection.notes,
                refund_amount=rec.money(min(partial, total)) if partial else None,
                keep_item=inspection.keep_item,
            )
            if partial:
                await refund_now(case, min(partial, total), reason="inspection_failed_partial")
            if not inspection.keep_item:
                await ship_to_customer(case, case.view.returned_items, "ship_back")
            return
        await refund_now(case, total, reason="returned_undelivered")

    async def offer_refund(self, total: Decimal) -> None:
        """Delivered with a seller fault: an agent sets an offer; the customer takes it or not."""
        case, rec = self.case, self.case.recorder
        await rec.set_status(
            CaseStatus.AWAITING_REVIEW, Kind.AWAITING_REVIEW, Actor.SYSTEM, expect=PROPOSALS
        )
        # One deadline for the review: a refused proposal must not restart it.
        due_at = case.deadlines.due(Timer.REVIEW)
        proposal = await case.deadlines.wait_escalating(PROPOSALS, Timer.REVIEW, due_at)
        while isinstance(proposal, Propose) and proposal.resolution not in REFUNDS:
            case.inbox.refuse_last("A refund-only case offers a refund or a partial_refund.")
            proposal = await case.deadlines.wait_escalating(PROPOSALS, Timer.REVIEW, due_at)
        actor = getattr(proposal, "actor", None) or Actor.AGENT
        if not isinstance(proposal, Propose):
            reason = getattr(proposal, "reason", "")
            await rec.notify(Message.CASE_REJECTED, reason=reason)
            raise CaseEnded(CaseStatus.REJECTED, Kind.REJECTED, reason, actor)
        amount = total if proposal.resolution == "refund" else min(proposal.amount or total, total)
        rec.add(Kind.OFFER_MADE, actor, f"Offered {case.view.order.currency} {amount}.")
        # The customer may take it as store credit with the policy's bonus instead.
        credit = credit_terms(
            amount,
            currency=case.view.order.currency,
            policy=case.policy,
            issue_at="acceptance",
        )
        answer = await offer(
            case,
            Message.REFUND_OFFER,
            amount=rec.money(amount),
            note=proposal.message,
            credit=rec.money(credit.total),
        )
        if not isinstance(answer, Accept):
            # No answer counts as declined, but the record says the timer closed it.
            by = Actor.CUSTOMER if answer else Actor.TIMER
            rec.add(Kind.OFFER_DECLINED, by, "No refund was taken.")
            await rec.notify(Message.OFFER_DECLINED)
            closed = "The customer declined the offer." if answer else "The offer went unanswered."
            raise CaseEnded(CaseStatus.CLOSED, Kind.CLOSED, closed, by)
        if answer.resolution == "store_credit":
            decision = case.view.decision
            decision.store_credit = credit
            decision.rules.append(RuleHit(id=STORE_CREDIT, message=credit_sentence(credit)))
            rec.add(
                Kind.OFFER_ACCEPTED, Actor.CUSTOMER, "The customer took the offer as store credit."
            )
            await credit_now(case, amount, reason="offer_accepted")
            return
        rec.add(Kind.OFFER_ACCEPTED, Actor.CUSTOMER, "The customer accepted the offer.")
        await refund_now(case, amount, reason="offer_accepted")
