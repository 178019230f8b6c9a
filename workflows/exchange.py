"""An exchange (換貨): the item comes back and a replacement goes out (DESIGN 3.3)."""

from __future__ import annotations

from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import Decline, EventType
    from domain.models import CaseOutcome, CaseStatus
    from domain.names import Actor, Kind, Message, Timer, Webhook, WorkflowName
    from workflows.case import CaseHandlers, CaseInput
    from workflows.ending import CaseEnded
    from workflows.inbox import Accepts
    from workflows.steps.credit import issue_credit
    from workflows.steps.follow_up import follow_up
    from workflows.steps.inbound import receive_item
    from workflows.steps.offer import offer
    from workflows.steps.outbound import await_delivery, dispatch, ship_to_customer
    from workflows.steps.refund import refund, refund_now
    from workflows.steps.review import reject_ineligible, review

PAID = Accepts(events=frozenset({EventType.CUSTOMER_PAID_DIFFERENCE}))


@workflow.defn(name=WorkflowName.EXCHANGE.value)
class ExchangeWorkflow(CaseHandlers):
    """Review, settle the price difference, take the original back, send the replacement."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the exchange to its end."""
        return await self.case.run(self.lifecycle)

    @property
    def credit(self) -> Decimal:
        """What the returned items are worth to the customer, after any restocking fee."""
        view = self.case.view
        total = sum((item.total for item in view.items), Decimal("0"))
        return total - view.decision.restocking_fee.amount

    @property
    def difference_due(self) -> Decimal:
        """What a dearer replacement costs the customer on top of the credit."""
        return max(self.case.input.request.exchange_total - self.credit, Decimal("0"))

    async def lifecycle(self) -> None:
        """Every path of an exchange, from open to the survey."""
        case, rec = self.case, self.case.recorder
        await rec.notify(Message.CASE_RECEIVED)
        if not case.view.decision.eligible:
            # Goes on only if a supervisor approves the exchange as an exception.
            await reject_ineligible(case)
        decision = case.view.decision
        if decision.returnless:
            rec.add(Kind.APPROVED, Actor.POLICY, "Approved: the replacement ships, the item stays.")
            await rec.notify(
                Message.CASE_APPROVED,
                return_address=case.policy.returns.return_address,
                tracking_number=None,
            )
            # Keeping the item doesn't make a dearer replacement free: the difference is due first.
            await self.replace(await self.settle_difference())
            await follow_up(case)
            return
        await review(case)
        paid = await self.settle_difference()
        if case.view.decision.advanced_exchange:
            await self.advanced(paid)
        else:
            await self.standard(paid)
        await follow_up(case)

    async def settle_difference(self) -> Decimal:
        """A dearer replacement waits for the customer to pay the difference, or is cancelled."""
        due = self.difference_due
        if due <= 0:
            return Decimal("0")
        rec = self.case.recorder
        paid = await offer(self.case, Message.DIFFERENCE_DUE, answers=PAID, amount=rec.money(due))
        if paid is None:
            raise CaseEnded(
                CaseStatus.CANCELLED,
                Kind.CANCELLED,
                "The price difference was not paid in time.",
                Actor.TIMER,
            )
        rec.add(
            Kind.DIFFERENCE_PAID, Actor.STOREFRONT, f"Paid {self.case.view.order.currency} {due}."
        )
        return due

    async def standard(self, paid: Decimal, *, refund_instead: Decimal | None = None) -> None:
        """Take the original back, and replace it once it passes inspection.

        With `refund_instead` (the customer took a refund for a replacement out of stock before
        the original came back) the passed original is refunded instead of replaced.
        """
        case, rec = self.case, self.case.recorder
        inspection = (await receive_item(case)).inspection
        if inspection is not None and inspection.result == "fail":
            rec.add(Kind.INSPECTION_FAILED, Actor.WAREHOUSE, inspection.notes)
            await rec.notify(
                Message.INSPECTION_FAILED,
                notes=inspection.notes,
                refund_amount=None,
                keep_item=inspection.keep_item,
            )
            if paid:
                await refund_now(case, paid, reason="exchange_refused")
            if not inspection.keep_item:
                await ship_to_customer(case, case.view.items, "ship_back")
            return
        if inspection is not None:
            rec.add(Kind.INSPECTION_PASSED, Actor.WAREHOUSE, inspection.notes)
            await rec.notify(Message.INSPECTION_PASSED)
        if refund_instead is not None:
            await refund_now(case, refund_instead, reason="out_of_stock")
            return
        # A parcel the carrier lost after pickup is the carrier's to pay for; the customer is
        # still owed the replacement.
        await self.replace(paid)

    async def advanced(self, paid: Decimal) -> None:
        """Ship the replacement first; an original that never comes back is charged."""
        case, rec = self.case, self.case.recorder
        rec.add(
            Kind.ADVANCED_EXCHANGE,
            Actor.POLICY,
            "The replacement ships before the original comes back.",
        )
        if not await self.replace(paid, refund_out_of_stock=False):
            # Out of stock and the customer took the refund: nothing went out, so the original
            # comes back first as in a return; one that never does expires unpaid.
            await self.standard(paid, refund_instead=self.credit + paid)
            return
        received = await receive_item(case, expires=False)
        if received.never_shipped:
            amount = self.credit
            await rec.escalate(
                reason=(
                    "The original never came back after an advanced exchange; charge the customer."
                ),
                timer=Timer.CUSTOMER_SHIPMENT,
            )
            await rec.notify(Message.ORIGINAL_NOT_RETURNED, amount=rec.money(amount))
            await rec.publish(Webhook.CHARGE_CUSTOMER, rec.money(amount))
            return
        inspection = received.inspection
        if inspection is not None and inspection.result == "fail":
            rec.add(Kind.INSPECTION_FAILED, Actor.WAREHOUSE, inspection.notes)
            await rec.escalate(
                reason="The original failed inspection after its replacement shipped.",
                actor=Actor.WAREHOUSE,
            )

    async def replace(self, paid: Decimal, *, refund_out_of_stock: bool = True) -> bool:
        """Send the replacement until delivered; out of stock offers a refund. True if it shipped.

        With `refund_out_of_stock` off the refund the customer takes is left to the caller (the
        original isn't back yet).
        """
        case, rec = self.case, self.case.recorder
        items = case.view.exchange_for or case.view.items
        waiting = case.view.status
        attempt = 1
        while await dispatch(case, items, step=f"replacement.{attempt}") is None:
            amount = self.credit + paid
            answer = await offer(case, Message.OUT_OF_STOCK_OFFER, amount=rec.money(amount))
            if not isinstance(answer, Decline):
                rec.add(Kind.OUT_OF_STOCK_REFUND, Actor.SYSTEM, "Refunding instead of replacing.")
                if refund_out_of_stock:
                    await refund_now(case, amount, reason="out_of_stock")
                return False
            # Declined: the customer waits for stock or another variant the agent arranges. It is
            # the warehouse's turn again, so the case leaves awaiting_customer (where a cancel
            # would end it with the original kept and nothing refunded).
            await rec.set_status(
                waiting,
                Kind.OFFER_DECLINED,
                Actor.CUSTOMER,
                "The customer waits for the replacement.",
            )
            attempt += 1
        cheaper = case.view.decision.refund_estimate.amount
        if cheaper > 0 and case.view.decision.store_credit is not None:
            # The customer chose store credit at open: the difference comes back as credit.
            await issue_credit(case, cheaper, reason="exchange_difference")
        elif cheaper > 0:
            await refund(case, cheaper, reason="exchange_difference")
        await await_delivery(case)
        return True
