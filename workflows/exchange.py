"""An exchange (換貨): the item comes back and a replacement goes out (DESIGN 3.3)."""

from __future__ import annotations

from datetime import datetime, time
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import Decline, EventType, OutOfStockData, SwitchVariant
    from domain.models import (
        CaseOutcome,
        CaseStatus,
        Deadline,
        ExchangeItem,
        OutOfStock,
    )
    from domain.names import Actor, CustomerVerb, Kind, Message, Timer, Webhook, WorkflowName
    from workflows.case import CaseHandlers, CaseInput
    from workflows.ending import CaseEnded
    from workflows.inbox import Accepts, Input
    from workflows.steps.credit import issue_credit
    from workflows.steps.follow_up import follow_up
    from workflows.steps.inbound import receive_item
    from workflows.steps.offer import ACCEPT_OR_DECLINE, offer
    from workflows.steps.outbound import await_delivery, request_dispatch, ship_to_customer
    from workflows.steps.refund import refund, refund_now
    from workflows.steps.review import reject_ineligible, review

PAID = Accepts(events=frozenset({EventType.CUSTOMER_PAID_DIFFERENCE}))
# Out of stock: take the refund (accept), wait for stock (decline), or switch to a variant the
# warehouse offered (only when it offered one).
SWITCH = Accepts(customer=frozenset({CustomerVerb.SWITCH_VARIANT}))
# A customer who waits gets a restock deadline and a message; cases that took the wait before
# it had them keep waiting under `dispatch`, silently.
OUT_OF_STOCK_CHOICES = "exchange-out-of-stock-choices"
# While the out-of-stock choice waits, a cancel would end the case with the original (or a
# difference paid) kept by the shop and nothing refunded: refused, the refund is the way out.
OUT_OF_STOCK_NO_CANCEL = "exchange-out-of-stock-no-cancel"
# Once an advanced exchange's replacement went out, a cancel would leave the customer both items,
# unpaid: refused while the original is awaited.
ADVANCED_NO_CANCEL = "exchange-advanced-no-cancel"


@workflow.defn(name=WorkflowName.EXCHANGE.value)
class ExchangeWorkflow(CaseHandlers):
    """Review, settle the price difference, take the original back, send the replacement."""

    # What the customer paid on top of the original's credit (set by `replace`).
    paid = Decimal(0)
    # Whether the original came back to the shop (an advanced exchange ships first).
    original_back = False

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the exchange to its end."""
        return await self.case.run(self.lifecycle)

    @property
    def credit(self) -> Decimal:
        """What the returned items are worth to the customer, after any restocking fee."""
        view = self.case.view
        total = sum((item.total for item in view.returned_items), Decimal("0"))
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
        self.original_back = True
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
                await ship_to_customer(case, case.view.returned_items, "ship_back")
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
            await self.standard(paid, refund_instead=self.credit + self.paid)
            return
        if workflow.patched(ADVANCED_NO_CANCEL):
            case.locked = True
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
        """Send the replacement until delivered. True if it shipped.

        Out of stock, the customer chooses: wait for stock (until a restock deadline), switch
        to a variant the warehouse offered (settling the new price difference), or take a
        refund; no answer takes the refund. With `refund_out_of_stock` off the refund is left
        to the caller (the original isn't back yet), and `self.paid` holds what was paid.
        """
        case = self.case
        self.paid = paid
        waiting = case.view.status
        # What a cheaper replacement pays back once it ships; a switch prices it again.
        back = case.view.decision.refund_estimate.amount
        attempt, timer, due_at = 1, Timer.DISPATCH, None
        while True:
            items = case.view.exchange_for or case.view.returned_items
            found = await request_dispatch(
                case, items, step=f"replacement.{attempt}", timer=timer, due_at=due_at
            )
            if found.type == EventType.REPLACEMENT_SHIPPED:
                break
            stock = found.data_as(OutOfStockData)
            amount = self.credit + self.paid
            answer = await self.choose(stock, amount)
            if isinstance(answer, Decline):
                timer, due_at = await self.wait_for_stock(stock, waiting)
            elif isinstance(answer, SwitchVariant):
                switched = await self.switch(answer, stock, waiting)
                if switched is None:
                    return await self.refund_instead(
                        self.credit + self.paid, Actor.TIMER, refund_out_of_stock
                    )
                back, timer, due_at = switched, Timer.DISPATCH, None
            else:
                return await self.refund_instead(amount, Actor.SYSTEM, refund_out_of_stock)
            attempt += 1
        case.view.out_of_stock = None
        if back > 0 and case.view.decision.store_credit is not None:
            # The customer chose store credit at open: the difference comes back as credit.
            await issue_credit(case, back, reason="exchange_difference")
        elif back > 0:
            await refund(case, back, reason="exchange_difference")
        await await_delivery(case)
        return True

    async def choose(self, stock: OutOfStockData, amount: Decimal) -> Input | None:
        """Offer the out-of-stock choices under `offer_response`; the customer's answer, or
        None when none came in time."""
        case, rec, deadlines = self.case, self.case.recorder, self.case.deadlines
        case.view.out_of_stock = OutOfStock(
            sku=stock.sku, expected_at=stock.expected_at, alternatives=stock.alternatives
        )
        # The shop holds what a cancel would strand from here to the case's end (no status
        # after this one takes a cancel anyway).
        holds = self.original_back or self.paid > 0
        if holds and not case.locked and workflow.patched(OUT_OF_STOCK_NO_CANCEL):
            case.locked = True
        answers = ACCEPT_OR_DECLINE | SWITCH if stock.alternatives else ACCEPT_OR_DECLINE
        # As `offer` does, with a wait of its own: a variant not offered is refused and the
        # customer may choose again under the same deadline.
        due_at = deadlines.due(Timer.OFFER_RESPONSE)
        deadlines.set(Timer.OFFER_RESPONSE, due_at)
        message = Message.OUT_OF_STOCK_OFFER
        await rec.set_status(CaseStatus.AWAITING_CUSTOMER, message, Actor.SYSTEM, expect=answers)
        deadline = Deadline(name=Timer.OFFER_RESPONSE, due_at=due_at)
        await rec.notify(message, deadline=deadline, amount=rec.money(amount))
        while True:
            answer = await deadlines.wait_until(answers, Timer.OFFER_RESPONSE, due_at)
            if not isinstance(answer, SwitchVariant) or offered(stock, answer.sku):
                return answer
            skus = ", ".join(a.sku for a in stock.alternatives)
            case.inbox.refuse_last(f"{answer.sku!r} isn't one of the variants offered ({skus}).")

    async def wait_for_stock(
        self, stock: OutOfStockData, waiting: CaseStatus
    ) -> tuple[Timer, datetime | None]:
        """The customer waits: the warehouse's turn again, under the restock deadline; the
        timer and deadline the next dispatch waits under."""
        case, rec = self.case, self.case.recorder
        choices = workflow.patched(OUT_OF_STOCK_CHOICES)
        if not choices:
            case.view.out_of_stock = None
        # It is the warehouse's turn again, so the case leaves awaiting_customer (where a
        # cancel would end it with the original kept and nothing refunded).
        await rec.set_status(
            waiting, Kind.OFFER_DECLINED, Actor.CUSTOMER, "The customer waits for the replacement."
        )
        if not choices:
            return Timer.DISPATCH, None
        due_at = self.restock_due(stock)
        expected = stock.expected_at.isoformat() if stock.expected_at else "no date"
        rec.add(
            Kind.WAITING_FOR_STOCK,
            Actor.CUSTOMER,
            f"Waiting for stock (expected: {expected}); ship by {due_at.isoformat()}.",
            {"expected_at": stock.expected_at.isoformat() if stock.expected_at else None},
        )
        deadline = Deadline(name=Timer.RESTOCK, due_at=due_at)
        await rec.notify(Message.WAITING_FOR_STOCK, deadline=deadline)
        return Timer.RESTOCK, due_at

    def restock_due(self, stock: OutOfStockData) -> datetime:
        """When a replacement waited for must ship: the warehouse's usual `dispatch` time from
        its restock date, or the `restock` timer when it named none."""
        case = self.case
        if stock.expected_at is None:
            return case.deadlines.due(Timer.RESTOCK)
        restocked = datetime.combine(stock.expected_at, time(0), tzinfo=case.calendar.zone)
        return case.calendar.add(max(restocked, case.now()), case.policy.timer(Timer.DISPATCH))

    async def switch(
        self, action: SwitchVariant, stock: OutOfStockData, waiting: CaseStatus
    ) -> Decimal | None:
        """Swap the replacement for the chosen variant and settle the new price difference as
        at open; what a cheaper one pays back once shipped, or None when a dearer one's
        difference went unpaid (the customer then gets the refund)."""
        case, rec = self.case, self.case.recorder
        view, currency = case.view, case.view.order.currency
        chosen = next(a for a in stock.alternatives if a.sku == action.sku)
        lines = view.exchange_for or [
            ExchangeItem(sku=item.sku, quantity=item.quantity, unit_price=item.unit_price)
            for item in view.returned_items
        ]
        # The out-of-stock line gives way to the variant; with none named, the whole replacement.
        named = stock.sku is not None and any(line.sku == stock.sku for line in lines)
        kept = [line for line in lines if line.sku != stock.sku] if named else []
        view.exchange_for = [*kept, chosen]
        view.out_of_stock = None
        total = sum((line.unit_price * line.quantity for line in view.exchange_for), Decimal(0))
        credit = self.credit + self.paid
        due, back = max(total - credit, Decimal(0)), max(credit - total, Decimal(0))
        await rec.set_status(
            waiting,
            Kind.VARIANT_SWITCHED,
            Actor.CUSTOMER,
            f"Switched to {chosen.sku} x {chosen.quantity}; the replacement costs "
            f"{currency} {total}.",
        )
        await rec.notify(
            Message.VARIANT_SWITCHED,
            amount=rec.money(due) if due else None,
            refund_amount=rec.money(back) if back else None,
        )
        if due <= 0:
            return back
        if await offer(case, Message.DIFFERENCE_DUE, answers=PAID, amount=rec.money(due)) is None:
            return None
        self.paid += due
        await rec.set_status(
            waiting, Kind.DIFFERENCE_PAID, Actor.STOREFRONT, f"Paid {currency} {due}."
        )
        return Decimal(0)

    async def refund_instead(self, amount: Decimal, actor: str, refund_now_too: bool) -> bool:
        """Refund instead of replacing (left to the caller when `refund_now_too` is off)."""
        case = self.case
        case.view.out_of_stock = None
        case.recorder.add(Kind.OUT_OF_STOCK_REFUND, actor, "Refunding instead of replacing.")
        if refund_now_too:
            await refund_now(case, amount, reason="out_of_stock")
        return False


def offered(stock: OutOfStockData, sku: str) -> bool:
    """Whether the warehouse offered that variant."""
    return any(alternative.sku == sku for alternative in stock.alternatives)
