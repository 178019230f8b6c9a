"""A return (退貨退款): the item comes back and the customer gets their money back (DESIGN 3.2)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import InspectionData
    from domain.inspection import settle
    from domain.messages import InspectedLine
    from domain.models import CaseOutcome
    from domain.names import Actor, Kind, Message, WorkflowName
    from workflows.case import CaseHandlers, CaseInput
    from workflows.steps.credit import credit_now, start_credit
    from workflows.steps.follow_up import follow_up
    from workflows.steps.inbound import receive_item
    from workflows.steps.outbound import ship_to_customer
    from workflows.steps.refund import refund_now, settle_refund, start_refund
    from workflows.steps.review import reject_ineligible, review


# The patch ID of recording the inspection outcome at once (docs/versioning.md).
RECORD_INSPECTION = "return-record-inspection"


@workflow.defn(name=WorkflowName.RETURN.value)
class ReturnWorkflow(CaseHandlers):
    """Review, take the item back, inspect, refund exactly once, follow up."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the return to its end."""
        return await self.case.run(self.lifecycle)

    async def lifecycle(self) -> None:
        """Every path of a return, from open to the survey."""
        case, rec = self.case, self.case.recorder
        await rec.notify(Message.CASE_RECEIVED)
        if not case.view.decision.eligible:
            # Goes on only if a supervisor approves the return as an exception.
            await reject_ineligible(case)
        decision = case.view.decision
        if decision.returnless:
            rec.add(
                Kind.APPROVED, Actor.POLICY, "Approved without sending the item back (returnless)."
            )
            await rec.notify(
                Message.CASE_APPROVED,
                return_address=case.policy.returns.return_address,
                tracking_number=None,
            )
            await self.pay_now(decision.refund_estimate.amount, reason="returnless")
            await follow_up(case)
            return
        await review(case)
        # The terms as approved: a supervisor may have changed the fee or the shipping payer.
        decision = case.view.decision
        amount = decision.refund_estimate.amount
        credit = decision.store_credit

        fast: asyncio.Task[None] | None = None
        if credit is not None and credit.issue_at == "approval":
            # Alongside the rest: the customer may ship while the storefront is retried.
            fast = start_credit(case, amount, reason="approved")

        async def fast_refund() -> None:
            nonlocal fast
            if credit is not None and credit.issue_at == "first_scan":
                fast = start_credit(case, amount, reason="first_scan")
            elif decision.fast_refund:
                rec.add(Kind.FAST_REFUND, Actor.POLICY, "Refunding at the first carrier scan.")
                fast = start_refund(case, amount, reason="fast_refund")

        received = await receive_item(case, on_first_scan=fast_refund)
        inspection = received.inspection
        if received.lost or inspection is None:
            # The carrier owes the shop for a parcel it lost after pickup; the customer is refunded.
            if fast is None:
                await self.pay_now(amount, reason="lost_in_transit")
        elif inspection.lines and decision.lines:
            await self.settle_lines(inspection, paid=fast is not None)
        elif inspection.result == "pass":
            rec.add(Kind.INSPECTION_PASSED, Actor.WAREHOUSE, inspection.notes)
            await self.record_inspection()
            await rec.notify(Message.INSPECTION_PASSED)
            if fast is None:
                await self.pay_now(amount, reason="inspection_passed")
        else:
            rec.add(Kind.INSPECTION_FAILED, Actor.WAREHOUSE, inspection.notes)
            await self.record_inspection()
            partial = inspection.refund_amount
            await rec.notify(
                Message.INSPECTION_FAILED,
                notes=inspection.notes,
                refund_amount=rec.money(min(partial, amount)) if partial else None,
                keep_item=inspection.keep_item,
            )
            if fast is not None:
                paid = "store credit was issued" if credit is not None else "a fast refund was paid"
                await rec.escalate(
                    reason=f"Inspection failed after {paid}; review the loss.",
                    actor=Actor.WAREHOUSE,
                )
            elif partial:
                await self.pay_now(min(partial, amount), reason="inspection_failed_partial")
            if not inspection.keep_item:
                await ship_to_customer(case, case.view.returned_items, "ship_back")
        await settle_refund(case, fast)
        await follow_up(case)

    async def settle_lines(self, inspection: InspectionData, *, paid: bool) -> None:
        """Pay back each line as its inspection says, in one refund, and send the failed
        lines the shop doesn't keep back to the customer."""
        case, rec = self.case, self.case.recorder
        settled = settle(case.view, inspection)
        names = {item.sku: item.name for item in case.view.items}
        failed = [line.sku for line in settled.lines if not line.passed]
        if settled.passed:
            rec.add(Kind.INSPECTION_PASSED, Actor.WAREHOUSE, inspection.notes)
            await self.record_inspection()
            await rec.notify(Message.INSPECTION_PASSED)
            if not paid:
                await self.pay_now(settled.amount, reason="inspection_passed")
            return
        rec.add(
            Kind.INSPECTION_FAILED,
            Actor.WAREHOUSE,
            f"{len(failed)} of {len(settled.lines)} lines failed inspection ({', '.join(failed)}).",
        )
        await self.record_inspection()
        lines = [
            InspectedLine(
                sku=line.sku,
                name=names.get(line.sku, ""),
                passed=line.passed,
                refund=rec.money(line.refund) if line.refund else None,
                keep_item=line.keep_item,
                notes=line.notes,
            )
            for line in settled.lines
        ]
        back = settled.sent_back(case.view.items)
        await rec.notify(
            Message.INSPECTION_FAILED,
            notes=inspection.notes,
            refund_amount=rec.money(settled.amount) if settled.amount else None,
            keep_item=not back,
            lines=lines,
        )
        if paid:
            credit = case.view.decision.store_credit is not None
            what = "store credit was issued" if credit else "a fast refund was paid"
            await rec.escalate(
                reason=f"Lines {', '.join(failed)} failed inspection after {what}; "
                "review the loss.",
                actor=Actor.WAREHOUSE,
            )
        elif settled.amount:
            await self.pay_now(settled.amount, reason="inspection_lines")
        if back:
            await ship_to_customer(case, back, "ship_back")

    async def pay_now(self, amount: Decimal, *, reason: str) -> None:
        """Pay the customer back as they chose at open: a refund, or store credit."""
        if self.case.view.decision.store_credit is not None:
            await credit_now(self.case, amount, reason=reason)
        else:
            await refund_now(self.case, amount, reason=reason)

    async def record_inspection(self) -> None:
        """Record the inspection's outcome before the customer hears of it."""
        # Before this patch the outcome reached the DB only with the case's next record, so the
        # case list (read from the DB) lagged the customer's "inspection passed" email.
        # The extra record_case activity changes the command sequence: histories recorded
        # before it (tests/replay/legacy/) take the old path. See docs/versioning.md.
        if workflow.patched(RECORD_INSPECTION):
            await self.case.recorder.sync()
