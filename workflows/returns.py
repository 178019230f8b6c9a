"""A return (退貨退款): the item comes back and the customer gets their money back (DESIGN 3.2)."""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.models import CaseView
    from workflows.case import CaseInput
    from workflows.inbound import InboundCase


# The patch ID of recording the inspection outcome at once (docs/versioning.md).
RECORD_INSPECTION = "return-record-inspection"


@workflow.defn(name="ReturnWorkflow")
class ReturnWorkflow(InboundCase):
    """Review, take the item back, inspect, refund exactly once, follow up."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseView:
        """Run the return to its end."""
        return await self.run_case(self.lifecycle)

    async def lifecycle(self) -> None:
        """Every path of a return, from open to the survey."""
        decision = self.view.decision
        await self.notify("case_received")
        if not decision.eligible:
            await self.reject_ineligible()
        amount = decision.refund_estimate.amount
        if decision.returnless:
            self.add_timeline(
                "approved", "policy", "Approved without sending the item back (returnless)."
            )
            await self.notify(
                "case_approved",
                return_address=self.policy.returns.return_address,
                tracking_number=None,
            )
            await self.refund_now(amount, reason="returnless")
            await self.follow_up()
            return
        await self.review()

        fast: asyncio.Task[None] | None = None

        async def fast_refund() -> None:
            nonlocal fast
            if decision.fast_refund:
                self.add_timeline("fast_refund", "policy", "Refunding at the first carrier scan.")
                fast = self.start_refund(amount, reason="fast_refund")

        received = await self.receive_item(on_first_scan=fast_refund)
        if received.lost:
            # The carrier owes the shop for a parcel it lost after pickup; the customer is refunded.
            if fast is None:
                await self.refund_now(amount, reason="lost_in_transit")
        else:
            inspection = received.inspection
            assert inspection is not None
            if inspection.result == "pass":
                self.add_timeline("inspection_passed", "warehouse", inspection.notes)
                await self.record_inspection()
                await self.notify("inspection_passed")
                if fast is None:
                    await self.refund_now(amount, reason="inspection_passed")
            else:
                self.add_timeline("inspection_failed", "warehouse", inspection.notes)
                await self.record_inspection()
                partial = inspection.refund_amount
                await self.notify(
                    "inspection_failed",
                    notes=inspection.notes,
                    refund_amount=self.money(min(partial, amount)) if partial else None,
                    keep_item=inspection.keep_item,
                )
                if fast is not None:
                    await self.escalate(
                        reason="Inspection failed after a fast refund was paid; review the loss.",
                        actor="warehouse",
                    )
                elif partial:
                    await self.refund_now(min(partial, amount), reason="inspection_failed_partial")
                if not inspection.keep_item:
                    await self.ship_to_customer(self.view.items, "ship_back")
        await self.settle_refund(fast)
        await self.follow_up()

    async def record_inspection(self) -> None:
        """Record the inspection's outcome before the customer hears of it."""
        # Before this patch the outcome reached the DB only with the case's next record, so the
        # case list (read from the DB) lagged the customer's "inspection passed" email.
        # The extra record_case activity changes the command sequence: histories recorded
        # before it (tests/replay/legacy/) take the old path. See docs/versioning.md.
        if workflow.patched(RECORD_INSPECTION):
            await self.sync()
