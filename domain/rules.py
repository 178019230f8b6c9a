"""The policy rules of DESIGN 5.2: is a would-be case eligible, and on what terms.

Pure and deterministic: the caller passes the time and the customer's case count, so the same
inputs always give the same decision, inside a workflow or in an API dry run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from domain.models import CaseRequest, CaseType, Decision, Item, Money, Reason, RuleHit
from domain.money import round_money
from domain.policy import Policy

Review = Literal["auto", "manual"]

# Rule 6: the customer's cases of these types opened in this window before a case (child
# cases, the shop's own doing, aside) are its `prior_cases`.
RISK_WINDOW = timedelta(days=90)
RISK_TYPES = frozenset({CaseType.RETURN.value, CaseType.EXCHANGE.value, CaseType.REFUND.value})
Payer = Literal["seller", "customer"]

_REASON_TEXT: dict[Reason, str] = {
    Reason.DEFECTIVE: "a defective item",
    Reason.DAMAGED_IN_TRANSIT: "an item damaged in transit",
    Reason.WRONG_ITEM: "a wrong item",
    Reason.MISSING_ITEM: "a missing item",
    Reason.NOT_AS_DESCRIBED: "an item not as described",
    Reason.CHANGED_MIND: "a change of mind",
    Reason.SIZE_FIT: "size or fit",
    Reason.ORDERED_BY_MISTAKE: "an order placed by mistake",
    Reason.BETTER_PRICE: "a better price elsewhere",
    Reason.OTHER: "another reason",
}


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, clamped to the month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    following = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
    last_day = (following - timedelta(days=1)).day
    return date(year, month, min(day.day, last_day))


@dataclass
class _Context:
    """What every rule needs, worked out once."""

    request: CaseRequest
    policy: Policy
    today: date
    delivered_on: date | None
    total: Decimal
    high_risk: bool
    in_warranty: bool
    warranty_until: date | None
    prior_cases: int

    @property
    def currency(self) -> str:
        return self.request.order.currency

    def money(self, amount: Decimal) -> Money:
        return Money(amount=self.quantize(amount), currency=self.currency)

    def quantize(self, amount: Decimal) -> Decimal:
        return round_money(amount, self.policy.currency_minor_units)

    def show(self, amount: Decimal) -> str:
        return f"{self.currency} {self.quantize(amount):,}"


def evaluate(request: CaseRequest, *, policy: Policy, now: datetime, prior_cases: int) -> Decision:
    """Evaluate the policy rules for a would-be case and say which fired and why.

    `prior_cases` is the customer's return / exchange / refund cases of the last 90 days.
    An ineligible decision lists only the rules that explain the refusal (and any
    alternative); `shipping_payer` is None when nothing is shipped back.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if request.reason is None and request.type is not CaseType.COMPLAINT:
        raise ValueError(f"a {request.type.value} case needs a reason")
    zone = ZoneInfo(policy.timezone)
    order = request.order
    delivered_on = _local_date(order.delivered_at, zone) if order.delivered_at else None
    today = _local_date(now, zone)
    warranty_start = delivered_on or _local_date(order.placed_at, zone)
    warranty_until = _warranty_until(request.items, warranty_start)
    ctx = _Context(
        request=request,
        policy=policy,
        today=today,
        delivered_on=delivered_on,
        total=request.items_total,
        high_risk=prior_cases >= policy.returns.serial_returner_threshold,
        in_warranty=warranty_until is not None and today <= warranty_until,
        warranty_until=warranty_until,
        prior_cases=prior_cases,
    )
    match request.type:
        case CaseType.RETURN | CaseType.EXCHANGE:
            return _return_or_exchange(ctx)
        case CaseType.REFUND:
            return _refund_only(ctx)
        case CaseType.REPAIR:
            return _repair(ctx)
        case CaseType.COMPLAINT:
            return _complaint(ctx)


def _local_date(at: datetime, zone: ZoneInfo) -> date:
    # A time without an offset is taken as shop time rather than the host's local time,
    # which would make the answer depend on the machine.
    if at.tzinfo is None or at.utcoffset() is None:
        return at.date()
    return at.astimezone(zone).date()


def _warranty_until(items: list[Item], start: date) -> date | None:
    """The last day any item is under warranty, or None when none has one."""
    months = max((item.warranty_months for item in items), default=0)
    return add_months(start, months) if months > 0 else None


def _reason(ctx: _Context) -> Reason:
    assert ctx.request.reason is not None  # checked in evaluate
    return ctx.request.reason


def _ineligible(ctx: _Context, rules: list[RuleHit], alternatives: list[str]) -> Decision:
    return Decision(
        eligible=False,
        review="none",
        high_risk=ctx.high_risk,
        in_warranty=ctx.in_warranty,
        refund_estimate=ctx.money(Decimal(0)),
        restocking_fee=ctx.money(Decimal(0)),
        rules=rules,
        alternatives=alternatives,
    )


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _days_ago(days: int) -> str:
    return "Delivered today" if days <= 0 else f"Delivered {_days(days)} ago"


def _window(ctx: _Context, noun: str) -> tuple[bool, RuleHit]:
    """Rule 2: is the case inside the window its reason allows?"""
    assert ctx.delivered_on is not None
    returns = ctx.policy.returns
    days = max((ctx.today - ctx.delivered_on).days, 0)
    seller_fault = ctx.request.seller_fault
    window = returns.defect_window_days if seller_fault else returns.window_days
    terms = f"{noun} for {_REASON_TEXT[_reason(ctx)]}" if seller_fault else noun
    if days <= window:
        return True, RuleHit(
            id="in_window",
            message=f"{_days_ago(days)}; {terms} are accepted for {_days(window)}.",
        )
    return False, RuleHit(
        id="outside_return_window",
        message=f"{_days_ago(days)}; {terms} are accepted for only {_days(window)}.",
    )


def _repair_suggestion(ctx: _Context) -> RuleHit:
    return RuleHit(
        id="warranty_repair_suggested",
        message=(
            f"The item is under warranty until {ctx.warranty_until}; "
            "a free repair can be requested instead."
        ),
    )


def _non_returnable(ctx: _Context) -> RuleHit | None:
    """Rule 3: non-returnable categories, unless the seller is at fault."""
    if ctx.request.seller_fault:
        return None
    blocked = {c.casefold() for c in ctx.policy.returns.non_returnable_categories}
    hits = [item for item in ctx.request.items if item.category.casefold() in blocked]
    if not hits:
        return None
    listed = ", ".join(f"{item.sku} ({item.category})" for item in hits)
    return RuleHit(
        id="non_returnable_category",
        message=f"{listed} can't be returned for {_REASON_TEXT[_reason(ctx)]}.",
    )


def _shipping(ctx: _Context) -> tuple[Payer, RuleHit]:
    """Rule 4: who pays to send the item back."""
    because = _REASON_TEXT[_reason(ctx)]
    if ctx.request.seller_fault:
        return "seller", RuleHit(
            id="seller_pays_shipping",
            message=f"The shop pays return shipping for {because} and books the pickup.",
        )
    return "customer", RuleHit(
        id="customer_pays_shipping",
        message=f"The customer pays return shipping for {because}.",
    )


def _restocking_fee(ctx: _Context) -> tuple[Decimal, RuleHit | None]:
    """Rule 5: a fee on opened items sent back for a customer reason."""
    percent = ctx.policy.returns.restocking_fee_percent
    opened = [item for item in ctx.request.items if item.opened]
    if ctx.request.seller_fault or not opened or percent == 0:
        return Decimal(0), None
    # Per line, each rounded, so the fee shown for a line is the fee charged for it.
    fee = sum((ctx.quantize(item.total * percent / 100) for item in opened), Decimal(0))
    skus = ", ".join(item.sku for item in opened)
    return fee, RuleHit(
        id="restocking_fee",
        message=(
            f"A {percent.normalize():f}% restocking fee of {ctx.show(fee)} applies "
            f"to opened items ({skus})."
        ),
    )


def _high_risk(ctx: _Context) -> RuleHit:
    """Rule 6."""
    return RuleHit(
        id="high_risk",
        message=(
            f"The customer opened {ctx.prior_cases} return, exchange or refund cases in the "
            f"last 90 days (limit {ctx.policy.returns.serial_returner_threshold}), "
            "so the case is high risk."
        ),
    )


def _review(ctx: _Context, returnless: bool) -> tuple[Review, RuleHit]:
    """Rule 7: auto-approve, or the first reason an agent must look."""
    limit = ctx.policy.returns.auto_approve_max_value
    seller_fault = ctx.request.seller_fault
    if returnless:
        # DESIGN 3.2 step 2: a returnless case is approved before review.
        return "auto", RuleHit(
            id="auto_approve",
            message="Approved automatically: a low-value seller-fault case needs no review.",
        )
    if ctx.high_risk:
        why = "the customer is high risk"
    elif ctx.total > limit:
        why = f"the total {ctx.show(ctx.total)} is above the {ctx.show(limit)} auto-approve limit"
    elif seller_fault and not ctx.request.evidence:
        why = f"no photo or other evidence of {_REASON_TEXT[_reason(ctx)]} is attached"
    elif not seller_fault and any(item.opened for item in ctx.request.items):
        why = "an item has been opened"
    else:
        basis = "with evidence attached" if seller_fault else "with every item unopened"
        return "auto", RuleHit(
            id="auto_approve",
            message=(
                f"Approved automatically: total {ctx.show(ctx.total)} within the "
                f"{ctx.show(limit)} limit, {basis}."
            ),
        )
    return "manual", RuleHit(id="manual_review", message=f"An agent reviews the case: {why}.")


def _returnless(ctx: _Context, outcome: str) -> RuleHit | None:
    """Rule 8: low-value seller-fault cases keep the item."""
    limit = ctx.policy.returns.returnless_max_value
    if not ctx.request.seller_fault or ctx.high_risk or ctx.total > limit:
        return None
    return RuleHit(
        id="returnless",
        message=(
            f"The total {ctx.show(ctx.total)} is within the {ctx.show(limit)} returnless limit: "
            f"the customer keeps the item and gets {outcome} without sending it back."
        ),
    )


def _return_or_exchange(ctx: _Context) -> Decision:
    request = ctx.request
    exchange = request.type is CaseType.EXCHANGE
    if ctx.delivered_on is None:
        return _ineligible(
            ctx,
            [
                RuleHit(
                    id="not_delivered",
                    message=(
                        "The order hasn't been delivered, so it can't be "
                        f"{'exchanged' if exchange else 'returned'} yet; "
                        "a refund-only case can cancel or intercept it."
                    ),
                )
            ],
            ["refund"],
        )
    rules: list[RuleHit] = []
    alternatives: list[str] = []
    eligible, window_hit = _window(ctx, "exchanges" if exchange else "returns")
    rules.append(window_hit)
    if not eligible and request.seller_fault and ctx.in_warranty:
        rules.append(_repair_suggestion(ctx))
        alternatives.append("repair")
    blocked = _non_returnable(ctx)
    if blocked:
        rules.append(blocked)
        eligible = False
    if not eligible:
        return _ineligible(ctx, rules, alternatives)

    returnless_hit = _returnless(ctx, "a replacement" if exchange else "a full refund")
    shipping_payer: Payer | None = None
    if not returnless_hit:
        shipping_payer, shipping_hit = _shipping(ctx)
        rules.append(shipping_hit)
    fee, fee_hit = _restocking_fee(ctx)
    if fee_hit:
        rules.append(fee_hit)
    if ctx.high_risk:
        rules.append(_high_risk(ctx))
    review, review_hit = _review(ctx, returnless_hit is not None)
    rules.append(review_hit)
    if returnless_hit:
        rules.append(returnless_hit)

    credit = ctx.quantize(ctx.total) - fee
    if exchange:
        # What comes back to the customer is the price difference, if the replacement is cheaper;
        # with no replacement named it is a like-for-like swap.
        replacement = (
            sum((line.unit_price * line.quantity for line in request.exchange_for), Decimal(0))
            if request.exchange_for
            else ctx.total
        )
        estimate = max(credit - ctx.quantize(replacement), Decimal(0))
    else:
        estimate = credit
    # Exchanges refund nothing up front, and returnless cases have no carrier scan to wait for.
    fast_refund = (
        ctx.policy.returns.fast_refund and not ctx.high_risk and not returnless_hit and not exchange
    )
    if fast_refund:
        rules.append(
            RuleHit(
                id="fast_refund",
                message="The refund is paid at the first carrier scan, before inspection.",
            )
        )
    advanced = (
        exchange
        and ctx.policy.returns.advanced_exchange
        and not ctx.high_risk
        and not returnless_hit
    )
    if advanced:
        rules.append(
            RuleHit(
                id="advanced_exchange",
                message=(
                    "The replacement ships right after approval; the original must come back "
                    "before the shipment deadline or the replacement is charged."
                ),
            )
        )
    return Decision(
        eligible=True,
        advanced_exchange=advanced,
        review=review,
        shipping_payer=shipping_payer,
        high_risk=ctx.high_risk,
        fast_refund=fast_refund,
        returnless=returnless_hit is not None,
        in_warranty=ctx.in_warranty,
        refund_estimate=ctx.money(estimate),
        restocking_fee=ctx.money(fee),
        rules=rules,
        alternatives=alternatives,
    )


def _refund_only(ctx: _Context) -> Decision:
    """DESIGN 3.4: refund-only before delivery, or for a seller fault the customer keeps."""
    order = ctx.request.order
    if ctx.delivered_on is None:
        state = "has shipped but not been delivered" if order.shipped_at else "hasn't shipped"
        action = "intercepted" if order.shipped_at else "cancelled"
        rules = [
            RuleHit(
                id="not_delivered",
                message=f"The order {state}: it is {action} and refunded in full.",
            ),
            RuleHit(
                id="auto_approve",
                message="Approved automatically: undelivered orders are refunded without review.",
            ),
        ]
        return Decision(
            eligible=True,
            review="auto",
            high_risk=ctx.high_risk,
            in_warranty=ctx.in_warranty,
            refund_estimate=ctx.money(ctx.total),
            restocking_fee=ctx.money(Decimal(0)),
            rules=rules,
        )
    if not ctx.request.seller_fault:
        return _ineligible(
            ctx,
            [
                RuleHit(
                    id="use_return",
                    message=(
                        f"A delivered order is refunded for {_REASON_TEXT[_reason(ctx)]} "
                        "only through a return: please open a return case."
                    ),
                )
            ],
            ["return"],
        )
    eligible, window_hit = _window(ctx, "refunds")
    rules = [window_hit]
    if not eligible:
        alternatives: list[str] = []
        if ctx.in_warranty:
            rules.append(_repair_suggestion(ctx))
            alternatives.append("repair")
        return _ineligible(ctx, rules, alternatives)
    returnless_hit = _returnless(ctx, "a full refund")
    if ctx.high_risk:
        rules.append(_high_risk(ctx))
    review: Review
    if returnless_hit:
        review, review_hit = _review(ctx, returnless=True)
        rules += [review_hit, returnless_hit]
    else:
        # The customer keeps the item, so an agent always sets the partial amount to offer.
        review = "manual"
        rules.append(
            RuleHit(
                id="manual_review",
                message="An agent reviews the case and offers a refund for the item kept.",
            )
        )
    return Decision(
        eligible=True,
        review=review,
        high_risk=ctx.high_risk,
        returnless=returnless_hit is not None,
        in_warranty=ctx.in_warranty,
        refund_estimate=ctx.money(ctx.total),
        restocking_fee=ctx.money(Decimal(0)),
        rules=rules,
    )


def _repair(ctx: _Context) -> Decision:
    """DESIGN 3.5: free in warranty, quoted otherwise; the shop ships only warranty repairs."""
    if ctx.in_warranty:
        warranty = RuleHit(
            id="in_warranty",
            message=f"Under warranty until {ctx.warranty_until}: the repair is free.",
        )
        shipping_payer: Payer = "seller"
        shipping = RuleHit(
            id="seller_pays_shipping",
            message="The shop pays shipping for a warranty repair and books the pickup.",
        )
    else:
        ended = f"ended on {ctx.warranty_until}" if ctx.warranty_until else "does not apply"
        warranty = RuleHit(
            id="out_of_warranty",
            message=f"The warranty {ended}: the repair is paid, after a quote.",
        )
        shipping_payer = "customer"
        shipping = RuleHit(
            id="customer_pays_shipping",
            message="The customer pays shipping for a repair out of warranty.",
        )
    rules = [warranty, shipping]
    if ctx.high_risk:
        rules.append(_high_risk(ctx))
    review, review_hit = _review(ctx, returnless=False)
    rules.append(review_hit)
    return Decision(
        eligible=True,
        review=review,
        shipping_payer=shipping_payer,
        high_risk=ctx.high_risk,
        in_warranty=ctx.in_warranty,
        refund_estimate=ctx.money(Decimal(0)),
        restocking_fee=ctx.money(Decimal(0)),
        rules=rules,
    )


def _complaint(ctx: _Context) -> Decision:
    """DESIGN 3.6: every complaint goes to an agent."""
    return Decision(
        eligible=True,
        review="manual",
        high_risk=ctx.high_risk,
        in_warranty=ctx.in_warranty,
        refund_estimate=ctx.money(Decimal(0)),
        restocking_fee=ctx.money(Decimal(0)),
        rules=[RuleHit(id="manual_review", message="An agent handles every complaint.")],
    )
