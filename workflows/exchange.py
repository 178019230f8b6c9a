"""An exchange (換貨): the item comes back and a replacement goes out (DESIGN 3.3)."""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import EventType
    from domain.models import CaseStatus, CaseView
    from workflows.case import Accepts, CaseEnded, CaseInput
    from workflows.inbound import InboundCase
    from workflows.outbound import OutboundCase


@workflow.defn(name="ExchangeWorkflow")
class ExchangeWorkflow(InboundCase, OutboundCase):
    """Review, settle the price difference, take the original back, send the replacement."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseView:
        """Run the exchange to its end."""
        return await self.run_case(self.lifecycle)

    @property
    def credit(self) -> Decimal:
        """What the returned items are worth to the customer, after any restocking fee."""
        total = sum((item.total for item in self.view.items), Decimal("0"))
        return total - self.view.decision.restocking_fee.amount

    @property
    def difference_due(self) -> Decimal:
        """What a dearer replacement costs the customer on top of the credit."""
        return max(self.input.request.exchange_total - self.credit, Decimal("0"))

    async def lifecycle(self) -> None:
        """Every path of an exchange, from open to the survey."""
        decision = self.view.decision
        await self.notify("case_received")
        if not decision.eligible:
            await self.reject_ineligible()
        if decision.returnless:
            self.add_timeline(
                "approved", "policy", "Approved: the replacement ships, the item stays."
            )
            await self.notify(
                "case_approved",
                return_address=self.policy.returns.return_address,
                tracking_number=None,
            )
            # Keeping the item doesn't make a dearer replacement free: the difference is due first.
            await self.replace(await self.settle_difference())
            await self.follow_up()
            return
        await self.review()
        paid = await self.settle_difference()
        if decision.advanced_exchange:
            await self.advanced(paid)
        else:
            await self.standard(paid)
        await self.follow_up()

    async def settle_difference(self) -> Decimal:
        """A dearer replacement waits for the customer to pay the difference, or is cancelled."""
        due = self.difference_due
        if due <= 0:
            return Decimal("0")
        paid = await self.offer(
            "difference_due",
            answers=Accepts(events=frozenset({EventType.CUSTOMER_PAID_DIFFERENCE})),
            amount=self.money(due),
        )
        if paid is None:
            raise CaseEnded(
                CaseStatus.CANCELLED,
                "cancelled",
                "The price difference was not paid in time.",
                "timer",
            )
        self.add_timeline(
            "difference_paid", "storefront", f"Paid {self.view.order.currency} {due}."
        )
        return due

    async def standard(self, paid: Decimal, *, refund_instead: Decimal | None = None) -> None:
        """Take the original back, and replace it once it passes inspection.

        With `refund_instead` (the customer took a refund for a replacement out of stock before
        the original came back) the passed original is refunded instead of replaced.
        """
        received = await self.receive_item()
        inspection = received.inspection
        if inspection is not None and inspection.result == "fail":
            self.add_timeline("inspection_failed", "warehouse", inspection.notes)
            await self.notify(
                "inspection_failed",
                notes=inspection.notes,
                refund_amount=None,
                keep_item=inspection.keep_item,
            )
            if paid:
                await self.refund_now(paid, reason="exchange_refused")
            if not inspection.keep_item:
                await self.ship_to_customer(self.view.items, "ship_back")
            return
        if inspection is not None:
            self.add_timeline("inspection_passed", "warehouse", inspection.notes)
            await self.notify("inspection_passed")
        if refund_instead is not None:
            await self.refund_now(refund_instead, reason="out_of_stock")
            return
        # A parcel the carrier lost after pickup is the carrier's to pay for; the customer is
        # still owed the replacement.
        await self.replace(paid)

    async def advanced(self, paid: Decimal) -> None:
        """Ship the replacement first; an original that never comes back is charged."""
        self.add_timeline(
            "advanced_exchange", "policy", "The replacement ships before the original comes back."
        )
        if not await self.replace(paid, refund=False):
            # Out of stock and the customer took the refund: nothing went out, so the original
            # comes back first as in a return; one that never does expires unpaid.
            await self.standard(paid, refund_instead=self.credit + paid)
            return
        received = await self.receive_item(expires=False)
        if received.never_shipped:
            amount = self.credit
            await self.escalate(
                reason=(
                    "The original never came back after an advanced exchange; charge the customer."
                ),
                timer="customer_shipment",
            )
            await self.notify("original_not_returned", amount=self.money(amount))
            await self.publish(
                "case.charge_customer",
                self.money(amount),
            )
            return
        inspection = received.inspection
        if inspection is not None and inspection.result == "fail":
            self.add_timeline("inspection_failed", "warehouse", inspection.notes)
            await self.escalate(
                reason="The original failed inspection after its replacement shipped.",
                actor="warehouse",
            )

    async def replace(self, paid: Decimal, *, refund: bool = True) -> bool:
        """Send the replacement until delivered; out of stock offers a refund. True if it shipped.

        With `refund` off the refund the customer takes is left to the caller (the original
        isn't back yet).
        """
        items = self.view.exchange_for or self.view.items
        waiting = self.view.status
        attempt = 1
        while await self.dispatch(items, step=f"replacement.{attempt}") is None:
            amount = self.credit + paid
            answer = await self.offer("out_of_stock_offer", amount=self.money(amount))
            if answer is None or getattr(answer, "action", None) == "accept":
                self.add_timeline(
                    "out_of_stock_refund", "system", "Refunding instead of replacing."
                )
                if refund:
                    await self.refund_now(amount, reason="out_of_stock")
                return False
            # Declined: the customer waits for stock or another variant the agent arranges. It is
            # the warehouse's turn again, so the case leaves awaiting_customer (where a cancel
            # would end it with the original kept and nothing refunded).
            await self.set_status(
                waiting, "offer_declined", "customer", "The customer waits for the replacement."
            )
            attempt += 1
        cheaper = self.view.decision.refund_estimate.amount
        if cheaper > 0:
            await self.refund(cheaper, reason="exchange_difference")
        await self.await_delivery()
        return True
