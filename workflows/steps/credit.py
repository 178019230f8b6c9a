"""Store credit: issued exactly once per case through the storefront (`POST /store-credits`),
instead of a refund, or as a complaint's coupon."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Literal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inputs import IssueStoreCredit
    from domain.models import CaseStatus, CreditTerms, StoreCredit
    from domain.money import round_money
    from domain.names import Actor, AgentVerb, Kind, Message
    from workflows import calls
    from workflows.case import Case
    from workflows.failures import until_done


def bonus_of(terms: CreditTerms, amount: Decimal, minor_units: int) -> Decimal:
    """The policy's bonus on `amount` (the decided amount, or a smaller partial one)."""
    if amount == terms.amount.amount:
        return terms.bonus.amount
    return round_money(amount * terms.bonus_percent / 100, minor_units)


async def credit_now(case: Case, amount: Decimal, reason: str) -> None:
    """Issue the case's store credit and wait in `refund_pending` until the storefront has."""
    await case.recorder.set_status(CaseStatus.REFUND_PENDING, Kind.REFUND_PENDING, Actor.SYSTEM)
    await issue_credit(case, amount, reason=reason)


def start_credit(case: Case, amount: Decimal, reason: str) -> asyncio.Task[None]:
    """Issue the store credit alongside the steps that follow (at approval or first scan)."""
    return case.spawn("store_credit", issue_credit(case, amount, reason=reason))


async def issue_credit(
    case: Case,
    amount: Decimal,
    *,
    reason: str,
    kind: Literal["store_credit", "coupon"] = "store_credit",
) -> None:
    """Issue store credit (with the decision's bonus) or a coupon once per case."""
    view, rec = case.view, case.recorder
    if view.store_credit is not None:
        return  # exactly one credit per case, whichever path asks first
    units = case.policy.currency_minor_units
    amount = round_money(amount, units)
    terms = view.decision.store_credit
    bonus = Decimal(0)
    if terms is not None and kind == "store_credit":
        bonus = bonus_of(terms, amount, units)
    currency = view.order.currency
    # In minor units too: the storefront gets "0.00", never "0".
    bonus = round_money(bonus, units)
    credit = StoreCredit(amount=amount, bonus=bonus, currency=currency, kind=kind)
    view.store_credit = credit
    what = "Coupon" if kind == "coupon" else "Store credit"
    extra = f" + bonus {currency} {credit.bonus}" if credit.bonus else ""
    rec.add(
        Kind.STORE_CREDIT_REQUESTED,
        Actor.SYSTEM,
        f"{what} of {currency} {amount}{extra} requested.",
    )
    request = IssueStoreCredit(
        case_id=view.id,
        customer_id=view.customer.id,
        amount=amount,
        currency=currency,
        bonus=credit.bonus,
        reason=reason,
        # One key per kind of credit and case, the same on every attempt, agent's retry, worker
        # crash and continued run: the storefront credits once.
        idempotency_key=f"{view.id}:{kind}",
    )

    def refused() -> None:
        credit.status = "failed"

    result = await until_done(
        case,
        lambda: calls.issue_store_credit(request, case.journal),
        partner=Actor.STOREFRONT,
        escalation=f"The storefront refused the {what.lower()}",
        settles=frozenset(),
        failed=refused,
    )
    if result is None:  # pragma: no cover - nothing but a retry settles a credit
        return
    credit.status = "issued"
    credit.credit_id = result.credit_id or None
    credit.code = result.code
    code = f" (code {credit.code})" if credit.code else ""
    rec.add(
        Kind.STORE_CREDIT_ISSUED,
        Actor.STOREFRONT,
        f"{what} of {currency} {credit.total} issued{code}.",
        {"credit_id": credit.credit_id, "code": credit.code},
    )
    await rec.sync()
    # Issued alongside the lifecycle, the step ends without another wait to answer the
    # agent's retry at: the retry is answered now that its outcome is projected.
    case.inbox.finish_taken(AgentVerb.RETRY)
    await rec.notify(Message.STORE_CREDIT_ISSUED, resolution=kind)
