"""Refunding: exactly one refund per case through the payment connector, until it settles."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inputs import RequestRefund
    from domain.actions import EventType, IntegrationEvent
    from domain.models import CaseStatus, Refund
    from domain.money import round_money
    from domain.names import Actor, AgentVerb, Kind, Message, Timer
    from workflows import calls
    from workflows.case import Case
    from workflows.failures import until_done

SETTLEMENT = frozenset({EventType.REFUND_SETTLED, EventType.REFUND_FAILED})
# An agent's retry of a refund paid alongside the lifecycle is answered once it is paid; before,
# it waited for the lifecycle's next step (a fast refund's: the parcel's arrival).
RETRY_ANSWERED_WHEN_PAID = "refund-retry-answered-when-paid"


async def refund_now(case: Case, amount: Decimal, reason: str) -> None:
    """Refund and wait in `refund_pending` until it settles."""
    await case.recorder.set_status(CaseStatus.REFUND_PENDING, Kind.REFUND_PENDING, Actor.SYSTEM)
    await refund(case, amount, reason=reason)


def start_refund(case: Case, amount: Decimal, reason: str) -> asyncio.Task[None]:
    """Refund alongside the steps that follow (fast refund)."""
    return case.spawn("fast_refund", refund(case, amount, reason=reason))


async def settle_refund(case: Case, task: asyncio.Task[None] | None) -> None:
    """Wait in `refund_pending` for a refund started alongside other steps."""
    if task is None:
        return
    if not task.done():
        await case.recorder.set_status(CaseStatus.REFUND_PENDING, Kind.REFUND_PENDING, Actor.SYSTEM)
    await task


async def refund(case: Case, amount: Decimal, *, reason: str, timer: Timer = Timer.REFUND) -> None:
    """Refund once per case through the payment connector, and wait until it settles."""
    view, rec = case.view, case.recorder
    if view.refund is not None:
        return  # exactly one refund per case, whichever path asks first
    currency = view.order.currency
    # Providers get the amount in the currency's minor units, e.g. "297.00", never "297".
    amount = round_money(amount, case.policy.currency_minor_units)
    money = Refund(amount=amount, currency=currency, status="requested")
    view.refund = money
    rec.add(Kind.REFUND_REQUESTED, Actor.SYSTEM, f"Refund of {currency} {amount} requested.")
    request = RequestRefund(
        case_id=view.id,
        order_id=view.order.id,
        amount=amount,
        currency=currency,
        payment_method=view.order.payment_method,
        reason=reason,
        # The same key on every attempt and every agent's retry: the provider pays once.
        idempotency_key=f"{view.id}:refund",
    )

    def refused() -> None:
        money.status = "failed"

    result = await until_done(
        case,
        lambda: calls.request_refund(request, case.journal),
        partner=Actor.PAYMENT,
        escalation="The payment provider refused the refund",
        settles=SETTLEMENT,
        failed=refused,
    )
    if result is None:
        # Settled by hand with the provider, who reports back (or reports it failed).
        await _await_settlement(case, money, timer=None)
        return
    money.refund_id = result.refund_id
    if result.status == "succeeded":
        await _settled(case, money)
        return
    money.status = "pending"
    await _await_settlement(case, money, timer=timer)


async def _await_settlement(case: Case, money: Refund, *, timer: Timer | None) -> None:
    while True:
        event: IntegrationEvent = await (
            case.deadlines.event(SETTLEMENT, timer)
            if timer
            else case.deadlines.any_event(SETTLEMENT)
        )
        if event.type == EventType.REFUND_SETTLED:
            money.refund_id = event.data.get("refund_id") or money.refund_id
            await _settled(case, money)
            return
        money.status = "failed"
        # Never a second refund call: an agent settles it with the provider, who reports back.
        await case.recorder.escalate(
            reason="The payment provider reported the refund failed.", actor=Actor.PAYMENT
        )
        timer = None


async def _settled(case: Case, money: Refund) -> None:
    money.status = "succeeded"
    case.recorder.add(
        Kind.REFUND_SUCCEEDED, Actor.PAYMENT, f"Refunded {money.currency} {money.amount}."
    )
    await case.recorder.sync()
    # A fast refund ends without another wait to answer the agent's retry at: the retry is
    # answered now that its outcome is projected (as a store credit's is).
    retried = any(item.name == AgentVerb.RETRY for item in case.inbox.consumed)
    if retried and workflow.patched(RETRY_ANSWERED_WHEN_PAID):
        case.inbox.finish_taken(AgentVerb.RETRY)
    await case.recorder.notify(Message.REFUND_SENT)
