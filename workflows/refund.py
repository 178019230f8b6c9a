"""Refund only (僅退款): money back without a return, or before the order arrives (DESIGN 3.4)."""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.carriers import CarrierActivities
    from activities.inputs import RequestInterception
    from domain.actions import EventType, IntegrationEvent, Propose
    from domain.models import CaseStatus, CaseView
    from workflows.case import (
        ACTIVITY_TIMEOUT,
        CONNECTOR_RETRY,
        Accepts,
        CaseEnded,
        CaseInput,
    )
    from workflows.inbound import InboundCase


@workflow.defn(name="RefundWorkflow")
class RefundWorkflow(InboundCase):
    """Cancel and refund, intercept and refund, or offer a refund for an item the customer keeps."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseView:
        """Run the refund case to its end."""
        return await self.run_case(self.lifecycle)

    async def lifecycle(self) -> None:
        """Every path of a refund-only case, from open to the survey."""
        decision = self.view.decision
        order = self.view.order
        await self.notify("case_received")
        if not decision.eligible:
            await self.reject_ineligible()
        total = decision.refund_estimate.amount
        if order.delivered_at is None and order.shipped_at is None:
            await self.cancel_unshipped(total)
        elif order.delivered_at is None:
            await self.intercept(total)
        elif decision.returnless:
            self.add_timeline(
                "approved", "policy", "Approved: a full refund, and the customer keeps the item."
            )
            await self.refund_now(total, reason="returnless")
        else:
            await self.offer_refund(total)
        await self.follow_up()

    async def cancel_unshipped(self, total: Decimal) -> None:
        """Not shipped: the storefront cancels fulfilment; the refund goes out within the hour."""
        self.add_timeline("approved", "policy", "Approved: the order had not shipped.")
        await self.publish("case.cancel_fulfilment", {"order_id": self.view.order.id})
        await self.notify("fulfilment_cancelled")
        await self.set_status(CaseStatus.REFUND_PENDING, "refund_pending", "system")
        await self.refund(total, reason="not_shipped", timer="refund_unshipped")

    async def intercept(self, total: Decimal) -> None:
        """Shipped, not delivered: stop the parcel; if delivered first, take it back instead."""
        self.add_timeline("approved", "policy", "Approved: the parcel is still on its way.")
        await workflow.execute_activity_method(
            CarrierActivities.request_interception,
            RequestInterception(
                case_id=self.view.id,
                tracking_number=getattr(self.view.order, "tracking_number", None),
                idempotency_key=f"{self.view.id}:interception",
            ),
            start_to_close_timeout=ACTIVITY_TIMEOUT,
            retry_policy=CONNECTOR_RETRY,
            summary="ask the carrier to intercept the parcel",
        )
        await self.set_status(CaseStatus.IN_TRANSIT, "interception_requested", "carrier")
        await self.notify("interception_requested")
        outcome = await self.wait_escalating(
            Accepts(events=frozenset({EventType.CARRIER_INTERCEPTED, EventType.CARRIER_DELIVERED})),
            "interception",
        )
        assert isinstance(outcome, IntegrationEvent)
        if outcome.type == EventType.CARRIER_INTERCEPTED:
            await self.refund_now(total, reason="intercepted")
            return
        # Delivered before the carrier could stop it: the case goes on as a return.
        self.add_timeline("interception_failed", "carrier", "Delivered before it could be stopped.")
        self.view.decision.shipping_payer = "seller"
        await self.notify("interception_failed")
        received = await self.receive_item()
        inspection = received.inspection
        if inspection is not None and inspection.result == "fail":
            self.add_timeline("inspection_failed", "warehouse", inspection.notes)
            partial = inspection.refund_amount
            await self.notify(
                "inspection_failed",
                notes=inspection.notes,
                refund_amount=self.money(min(partial, total)) if partial else None,
                keep_item=inspection.keep_item,
            )
            if partial:
                await self.refund_now(min(partial, total), reason="inspection_failed_partial")
            if not inspection.keep_item:
                await self.ship_to_customer(self.view.items, "ship_back")
            return
        await self.refund_now(total, reason="returned_undelivered")

    async def offer_refund(self, total: Decimal) -> None:
        """Delivered with a seller fault: an agent sets an offer; the customer takes it or not."""
        proposals = Accepts(agent=frozenset({"propose", "reject"}))
        await self.set_status(
            CaseStatus.AWAITING_REVIEW, "awaiting_review", "system", expect=proposals
        )
        # One deadline for the review: a refused proposal must not restart it.
        due_at = self.due("review")
        proposal = await self.wait_escalating(proposals, "review", due_at)
        while isinstance(proposal, Propose) and proposal.resolution not in (
            "partial_refund",
            "refund",
        ):
            self.refuse_last("A refund-only case offers a refund or a partial_refund.")
            proposal = await self.wait_escalating(proposals, "review", due_at)
        actor = getattr(proposal, "actor", None) or "agent"
        if not isinstance(proposal, Propose):
            reason = getattr(proposal, "reason", "")
            await self.notify("case_rejected", reason=reason)
            raise CaseEnded(CaseStatus.REJECTED, "rejected", reason, actor)
        amount = total if proposal.resolution == "refund" else min(proposal.amount or total, total)
        self.add_timeline("offer_made", actor, f"Offered {self.view.order.currency} {amount}.")
        answer = await self.offer(
            "refund_offer",
            amount=self.money(amount),
            note=proposal.message,
        )
        if answer is None or getattr(answer, "action", None) == "decline":
            # No answer counts as declined, but the record says the timer closed it.
            by = "customer" if answer else "timer"
            self.add_timeline("offer_declined", by, "No refund was taken.")
            await self.notify("offer_declined")
            closed = "The customer declined the offer." if answer else "The offer went unanswered."
            raise CaseEnded(CaseStatus.CLOSED, "closed", closed, by)
        self.add_timeline("offer_accepted", "customer", "The customer accepted the offer.")
        await self.refund_now(amount, reason="offer_accepted")
