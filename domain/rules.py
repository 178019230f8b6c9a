"""The policy rules of DESIGN 5.2: is a would-be case eligible, and on what terms.

Pure and deterministic: the caller passes the time and the customer's case count, so the same
inputs always give the same decision, inside a workflow or in an API dry run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from domain.calendar import describe
from domain.models import (
    SELLER_FAULT_REASONS,
    CaseRequest,
    CaseType,
    CreditMoment,
    CreditTerms,
    Decision,
    Item,
    LineTerms,
    Money,
    Reason,
    ReturnMethod,
    RuleHit,
    SeasonNote,
)
from domain.money import round_money
from domain.policy import PeakSeason, Policy, shop_date
from domain.return_methods import choose, method_for

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

# The rule that tells the customer their order was placed in a peak season (DESIGN 5.2 rule ids
# live in this module; this one joins them for issue 11).
PEAK_SEASON = "peak_season"

# The rule that says the customer takes store credit instead of a refund, with its bonus and
# when it is issued (issue 11).
STORE_CREDIT = "store_credit"
_CREDIT_MOMENTS: dict[str, str] = {
    "approval": "as soon as the return is approved",
    "first_scan": "when the carrier first scans the parcel",
    "inspection": "once the item passes inspection",
    "dispatch": "when the replacement ships",
    "acceptance": "when the offer is accepted",
}

# What a longer timer means to the customer, for the peak-season sentence ({} is the duration);
# a timer not listed reads by its name.
_SEASON_TIMERS: dict[str, str] = {
    "first_response": "our first reply may take up to {}",
    "review": "our reviews may take up to {}",
    "customer_info": "you have {} to answer our questions",
    "customer_shipment": "you have {} to send the item back",
    "carrier_pickup": "a carrier pickup may take up to {}",
    "transit": "a parcel may take up to {} to reach us",
    "inspection": "checking a returned item may take up to {}",
    "refund": "a refund may take up to {} to go through",
    "dispatch": "sending a replacement out may take up to {}",
    "diagnosis": "a repair diagnosis may take up to {}",
    "repair": "a repair may take up to {}",
    "quote_response": "you have {} to answer a repair quote",
    "offer_response": "you have {} to answer our offers",
    "interception": "stopping a parcel on its way may take up to {}",
}
# Past participle and infinitive of what each kind of case asks for, for window sentences.
_WINDOW_VERBS: dict[str, tuple[str, str]] = {
    "returns": ("returned", "return"),
    "exchanges": ("exchanged", "exchange"),
    "refunds": ("refunded", "ask for a refund"),
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
    # The peak season the order was placed in: its extra days widen every return window.
    season: PeakSeason | None = None

    @property
    def currency(self) -> str:
        return self.request.order.currency

    def money(self, amount: Decimal) -> Money:
        return Money(amount=self.quantize(amount), currency=self.currency)

    def quantize(self, amount: Decimal) -> Decimal:
        return round_money(amount, self.policy.currency_minor_units)

    def show(self, amount: Decimal) -> str:
        return f"{self.currency} {self.quantize(amount):,}"

    @property
    def extra_days(self) -> int:
        return self.season.extra_return_days if self.season else 0


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
    delivered_on = shop_date(order.delivered_at, zone) if order.delivered_at else None
    today = shop_date(now, zone)
    warranty_start = delivered_on or shop_date(order.placed_at, zone)
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
        season=policy.season_for(order.placed_at),
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


def _warranty_until(items: list[Item], start: date) -> date | None:
    """The last day any item is under warranty, or None when none has one."""
    months = max((item.warranty_months for item in items), default=0)
    return add_months(start, months) if months > 0 else None


def _reason(ctx: _Context) -> Reason:
    assert ctx.request.reason is not None  # checked in evaluate
    return ctx.request.reason


def _ineligible(ctx: _Context, rules: list[RuleHit], alternatives: list[str]) -> Decision:
    return Decision(
        peak_season=_season_note(rules, ctx),
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


def _label(category: str) -> str:
    """A category as a sentence names it: "personal_hygiene" -> "personal hygiene"."""
    return category.replace("_", " ").strip() or "uncategorised items"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _item_window(ctx: _Context, item: Item) -> tuple[int, str | None]:
    """Rule 2 for one item: its window for the case's reason (peak-season days included), and
    the category that set it (None when `[returns]` did)."""
    fault = ctx.request.line_reason(item) in SELLER_FAULT_REASONS
    key = "defect_window_days" if fault else "window_days"
    section = ctx.policy.category(item.category) if item.category else None
    own: int | None = getattr(section, key) if section else None
    days: int = own if own is not None else getattr(ctx.policy.returns, key)
    return days + ctx.extra_days, (item.category if own is not None else None)


def _window(ctx: _Context, noun: str) -> tuple[bool, RuleHit]:
    """Rule 2: is every item inside the window its category and the reason allow?"""
    assert ctx.delivered_on is not None
    days = max((ctx.today - ctx.delivered_on).days, 0)
    # The reason is named when every line shares it and it widens the window.
    reasons = {ctx.request.line_reason(item) for item in ctx.request.items}
    shared = reasons.pop() if len(reasons) == 1 else None
    because = f" for {_REASON_TEXT[shared]}" if shared in SELLER_FAULT_REASONS and shared else ""
    terms = f"{noun}{because}"
    windows = sorted({_item_window(ctx, item) for item in ctx.request.items}, key=_by_window)
    failing = [(window, category) for window, category in windows if days > window]
    verb = _WINDOW_VERBS[noun][0]
    ago = _days_ago(days)
    if not failing:
        # The strictest window decided; a category names itself when it set that window.
        least = windows[0][0]
        setters = sorted({category for window, category in windows if window == least}, key=str)
        if None in setters:
            return True, RuleHit(
                id="in_window", message=f"{ago}; {terms} are accepted for {_days(least)}."
            )
        named = " and ".join(_label(str(category)) for category in setters)
        return True, RuleHit(
            id="in_window",
            message=(
                f"{_sentence(named)} can be {verb}{because} within {_days(least)} of delivery; "
                f"{ago[:1].lower()}{ago[1:]}."
            ),
        )
    if all(category is None for _, category in failing):
        return False, RuleHit(
            id="outside_return_window",
            message=f"{ago}; {terms} are accepted for only {_days(failing[0][0])}.",
        )
    (first, first_category), *rest = failing
    head = (
        f"{_sentence(_label(first_category or ''))} can be {verb}{because} "
        f"only within {_days(first)} of delivery"
        if first_category
        else f"{_sentence(terms)} are accepted for only {_days(first)}"
    )
    others = "".join(
        f", {_label(category) if category else 'other items'} only within {_days(window)}"
        for window, category in rest
    )
    return False, RuleHit(
        id="outside_return_window",
        message=f"{head}{others}; {ago[:1].lower()}{ago[1:]}.",
    )


def _by_window(entry: tuple[int, str | None]) -> tuple[int, str]:
    return entry[0], entry[1] or ""


def _peak_season(ctx: _Context, noun: str | None, *, timers: bool) -> RuleHit | None:
    """Why an order of a peak season has longer windows (`noun`: the window's kind, None when
    the case has none) and slower SLAs (`timers`: the case goes ahead)."""
    season = ctx.season
    if season is None:
        return None
    parts: list[str] = []
    if noun and season.extra_return_days:
        extra = season.extra_return_days
        more = f"{extra} more day" if extra == 1 else f"{extra} more days"
        parts.append(f"{more} to {_WINDOW_VERBS[noun][1]}")
    if timers:
        for name, duration in season.timers.items():
            wording = _SEASON_TIMERS.get(name, name.replace("_", " ") + " may take up to {}")
            parts.append(wording.format(describe(duration)))
    if not parts:
        return None
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + ", and " + parts[-1]
    return RuleHit(
        id=PEAK_SEASON,
        message=(
            f"Ordered during {season.name} ({season.orders_from} to {season.orders_until}): "
            f"{listed}."
        ),
    )


def _season_note(rules: list[RuleHit], ctx: _Context) -> SeasonNote | None:
    """The decision's `peak_season`, set when its rule fired."""
    fired = any(rule.id == PEAK_SEASON for rule in rules)
    return ctx.season.note() if fired and ctx.season else None


def _limit(ctx: _Context, key: str) -> tuple[Decimal, str | None]:
    """The strictest of the items' limits named `key` (auto-approve, returnless), and the
    category that set it (None when `[returns]` did)."""
    default: Decimal = getattr(ctx.policy.returns, key)
    limits: list[tuple[Decimal, str | None]] = []
    for item in ctx.request.items:
        section = ctx.policy.category(item.category) if item.category else None
        own: Decimal | None = getattr(section, key) if section else None
        limits.append((own, item.category) if own is not None else (default, None))
    # On a tie the shop-wide value is named: it isn't the category's doing.
    return min(limits, key=lambda entry: (entry[0], entry[1] is not None))


def _for(category: str | None) -> str:
    return f" for {_label(category)}" if category else ""


def _repair_suggestion(ctx: _Context) -> RuleHit:
    return RuleHit(
        id="warranty_repair_suggested",
        message=(
            f"The item is under warranty until {ctx.warranty_until}; "
            "a free repair can be requested instead."
        ),
    )


def _non_returnable(ctx: _Context) -> RuleHit | None:
    """Rule 3: non-returnable categories, unless the seller is at fault for the line."""
    request = ctx.request
    hits = [
        item
        for item in request.items
        if request.line_reason(item) not in SELLER_FAULT_REASONS
        and not ctx.policy.returnable(item.category)
    ]
    if not hits:
        return None
    listed = ", ".join(f"{item.sku} ({item.category})" for item in hits)
    reasons = {request.line_reason(item) for item in hits}
    shared = reasons.pop() if len(reasons) == 1 else None
    why = _REASON_TEXT[shared] if shared else "the reasons given"
    return RuleHit(id="non_returnable_category", message=f"{listed} can't be returned for {why}.")


def _shipping(ctx: _Context, *, dropoff: bool = False) -> tuple[Payer, RuleHit]:
    """Rule 4: who pays to send the item back: the shop, when it is at fault for any line."""
    because = _REASON_TEXT[ctx.request.fault_reason or _reason(ctx)]
    if ctx.request.seller_fault:
        booked = "drop-off" if dropoff else "pickup"
        return "seller", RuleHit(
            id="seller_pays_shipping",
            message=f"The shop pays return shipping for {because} and books the {booked}.",
        )
    return "customer", RuleHit(
        id="customer_pays_shipping",
        message=f"The customer pays return shipping for {because}.",
    )


def _restocking_fee(ctx: _Context) -> tuple[Decimal, RuleHit | None]:
    """Rule 5: a fee on opened items sent back for a customer reason, at each item's category's
    percentage."""
    # Opened lines by (percent, the category that set it: None for [returns]).
    groups: dict[tuple[Decimal, str | None], list[Item]] = {}
    for item in ctx.request.items:
        rate = _fee_rate(ctx, item)
        if rate is not None:
            groups.setdefault(rate, []).append(item)
    if not groups:
        return Decimal(0), None
    # Per line, each rounded, so the fee shown for a line is the fee charged for it.
    fee = sum(
        (
            ctx.quantize(item.total * percent / 100)
            for (percent, _), items in groups.items()
            for item in items
        ),
        Decimal(0),
    )
    if len(groups) == 1:
        [((percent, category), items)] = groups.items()
        what = f"opened {_label(category)}" if category else "opened items"
        return fee, RuleHit(
            id="restocking_fee",
            message=(
                f"A {percent.normalize():f}% restocking fee of {ctx.show(fee)} applies "
                f"to {what} ({', '.join(item.sku for item in items)})."
            ),
        )
    shares = "; ".join(
        f"{percent.normalize():f}% on {_label(category) if category else 'other items'} "
        f"({', '.join(item.sku for item in items)})"
        for (percent, category), items in groups.items()
    )
    return fee, RuleHit(
        id="restocking_fee",
        message=f"A restocking fee of {ctx.show(fee)} applies to opened items: {shares}.",
    )


def _fee_rate(ctx: _Context, item: Item) -> tuple[Decimal, str | None] | None:
    """The restocking fee's percentage on one line, and the category that set it (None for
    `[returns]`); None when the line pays no fee (unopened, or the shop's fault)."""
    if not item.opened or ctx.request.line_reason(item) in SELLER_FAULT_REASONS:
        return None
    section = ctx.policy.category(item.category) if item.category else None
    own = section.restocking_fee_percent if section else None
    percent = own if own is not None else ctx.policy.returns.restocking_fee_percent
    return (percent, item.category if own is not None else None) if percent else None


def _line_terms(ctx: _Context, refusals: dict[str, RuleHit]) -> list[LineTerms]:
    """Every line with its fee and what it refunds if it passes inspection; a refused line
    refunds nothing and names its rule."""
    request = ctx.request
    lines: list[LineTerms] = []
    for item in request.items:
        refused = refusals.get(item.sku)
        rate = None if refused else _fee_rate(ctx, item)
        fee = ctx.quantize(item.total * rate[0] / 100) if rate else Decimal(0)
        lines.append(
            LineTerms(
                sku=item.sku,
                reason=request.line_reason(item),
                eligible=refused is None,
                refund=ctx.money(Decimal(0) if refused else ctx.quantize(item.total) - fee),
                restocking_fee=ctx.money(fee),
                rule=refused,
            )
        )
    return lines


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
    limit, category = _limit(ctx, "auto_approve_max_value")
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
        why = (
            f"the total {ctx.show(ctx.total)} is above the {ctx.show(limit)} "
            f"auto-approve limit{_for(category)}"
        )
    elif seller_fault and not ctx.request.evidence:
        why = f"no photo or other evidence of {_REASON_TEXT[_reason(ctx)]} is attached"
    elif any(
        item.opened and ctx.request.line_reason(item) not in SELLER_FAULT_REASONS
        for item in ctx.request.items
    ):
        why = "an item has been opened"
    else:
        basis = "with evidence attached" if seller_fault else "with every item unopened"
        return "auto", RuleHit(
            id="auto_approve",
            message=(
                f"Approved automatically: total {ctx.show(ctx.total)} within the "
                f"{ctx.show(limit)} limit{_for(category)}, {basis}."
            ),
        )
    return "manual", RuleHit(id="manual_review", message=f"An agent reviews the case: {why}.")


def _returnless(ctx: _Context, outcome: str) -> RuleHit | None:
    """Rule 8: low-value seller-fault cases keep the item."""
    limit, category = _limit(ctx, "returnless_max_value")
    if not ctx.request.all_seller_fault or ctx.high_risk or ctx.total > limit:
        return None
    return RuleHit(
        id="returnless",
        message=(
            f"The total {ctx.show(ctx.total)} is within the {ctx.show(limit)} returnless "
            f"limit{_for(category)}: "
            f"the customer keeps the item and gets {outcome} without sending it back."
        ),
    )


def _estimate(ctx: _Context, fee: Decimal) -> Decimal:
    """Rule 10: what a return refunds (items less the fee), or what an exchange pays back."""
    credit = ctx.quantize(ctx.total) - fee
    request = ctx.request
    if request.type is not CaseType.EXCHANGE:
        return credit
    # What comes back to the customer is the price difference, if the replacement is cheaper;
    # with no replacement named it is a like-for-like swap.
    replacement = (
        sum((line.unit_price * line.quantity for line in request.exchange_for), Decimal(0))
        if request.exchange_for
        else ctx.total
    )
    return max(credit - ctx.quantize(replacement), Decimal(0))


# The rule that lists the lines a return or exchange leaves out, each with its own rule, while
# the others go ahead (issue 11).
LINES_EXCLUDED = "lines_excluded"


def _return_or_exchange(ctx: _Context) -> Decision:
    """A return or exchange, line by line: the lines the policy refuses stay out (rule
    `lines_excluded`) and the others go ahead; when it refuses every line, the case."""
    request = ctx.request
    noun = "exchanges" if request.type is CaseType.EXCHANGE else "returns"
    if ctx.delivered_on is None or len(request.items) == 1:
        return _whole_case(ctx, {})
    refusals = {item.sku: hit for item in request.items if (hit := _line_refusal(ctx, item, noun))}
    kept = [item for item in request.items if item.sku not in refusals]
    if not refusals or not kept:
        return _whole_case(ctx, refusals)
    narrowed = replace(
        ctx,
        request=request.model_copy(update={"items": kept}),
        total=sum((item.total for item in kept), Decimal(0)),
    )
    decided = _whole_case(narrowed, {})
    verb = _WINDOW_VERBS[noun][0]
    # Each refusal, named by its line unless its sentence names it already.
    listed = " ".join(
        hit.message if hit.message.startswith(sku) else f"{sku}: {hit.message}"
        for sku, hit in refusals.items()
    )
    left = len(request.items) - len(kept)
    excluded = RuleHit(
        id=LINES_EXCLUDED,
        message=(
            f"{left} of {len(request.items)} lines can't be {verb} and stay with the customer; "
            f"the others go ahead. {listed}"
        ),
    )
    rules = list(decided.rules)
    rules.insert(1, excluded)
    return decided.model_copy(update={"rules": rules, "lines": _line_terms(ctx, refusals)})


def _line_refusal(ctx: _Context, item: Item, noun: str) -> RuleHit | None:
    """Why the policy refuses this line on its own (its window, its category), or None."""
    alone = replace(ctx, request=ctx.request.model_copy(update={"items": [item]}), total=item.total)
    inside, window_hit = _window(alone, noun)
    if not inside:
        return window_hit
    return _non_returnable(alone)


def _whole_case(ctx: _Context, refusals: dict[str, RuleHit]) -> Decision:
    """Rules 2-10 over the case's lines together (`refusals`: each line's own refusal, kept
    with the lines when the case is refused)."""
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
    noun = "exchanges" if exchange else "returns"
    eligible, window_hit = _window(ctx, noun)
    rules.append(window_hit)
    if not eligible and request.seller_fault and ctx.in_warranty:
        rules.append(_repair_suggestion(ctx))
        alternatives.append("repair")
    blocked = _non_returnable(ctx)
    if blocked:
        rules.append(blocked)
        eligible = False
    season_hit = _peak_season(ctx, noun, timers=eligible)
    if season_hit:
        rules.insert(1, season_hit)
    if not eligible:
        refused = _ineligible(ctx, rules, alternatives)
        # Each line keeps its own refusal, so an exception can be weighed line by line.
        return refused.model_copy(update={"lines": _line_terms(ctx, refusals) if refusals else []})

    returnless_hit = _returnless(ctx, "a replacement" if exchange else "a full refund")
    shipping_payer: Payer | None = None
    method: ReturnMethod | None = None
    chain: str | None = None
    if not returnless_hit:
        payer: Payer = "seller" if request.seller_fault else "customer"
        method, chain, method_hit = choose(request, ctx.policy, payer)
        shipping_payer, shipping_hit = _shipping(ctx, dropoff=chain is not None)
        rules.append(shipping_hit)
        if method_hit:
            rules.append(method_hit)
    fee, fee_hit = _restocking_fee(ctx)
    if fee_hit:
        rules.append(fee_hit)
    if ctx.high_risk:
        rules.append(_high_risk(ctx))
    review, review_hit = _review(ctx, returnless_hit is not None)
    rules.append(review_hit)
    if returnless_hit:
        rules.append(returnless_hit)

    estimate = _estimate(ctx, fee)
    credit, credit_hit = _store_credit(ctx, estimate, returnless=returnless_hit is not None)
    # Exchanges refund nothing up front, and returnless cases have no carrier scan to wait for;
    # store credit has its own moment instead.
    fast_refund = (
        ctx.policy.returns.fast_refund
        and not ctx.high_risk
        and not returnless_hit
        and not exchange
        and credit is None
    )
    if fast_refund:
        rules.append(
            RuleHit(
                id="fast_refund",
                message="The refund is paid at the first carrier scan, before inspection.",
            )
        )
    if credit_hit:
        rules.append(credit_hit)
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
        peak_season=_season_note(rules, ctx),
        advanced_exchange=advanced,
        review=review,
        shipping_payer=shipping_payer,
        return_method=method,
        dropoff_chain=chain,
        high_risk=ctx.high_risk,
        fast_refund=fast_refund,
        returnless=returnless_hit is not None,
        in_warranty=ctx.in_warranty,
        refund_estimate=ctx.money(estimate),
        restocking_fee=ctx.money(fee),
        rules=rules,
        alternatives=alternatives,
        store_credit=credit,
        lines=_line_terms(ctx, {}),
    )


def credit_terms(
    amount: Decimal, *, currency: str, policy: Policy, issue_at: CreditMoment
) -> CreditTerms:
    """Store credit for `amount` with the policy's bonus on top, issued at `issue_at`."""
    percent = policy.returns.store_credit_bonus_percent
    units = policy.currency_minor_units
    amount = round_money(amount, units)
    bonus = round_money(amount * percent / 100, units)
    return CreditTerms(
        amount=Money(amount=amount, currency=currency),
        bonus_percent=percent,
        bonus=Money(amount=bonus, currency=currency),
        issue_at=issue_at,
    )


def credit_sentence(terms: CreditTerms) -> str:
    """The `store_credit` rule's sentence: the amount, its bonus and when it is issued."""
    currency = terms.amount.currency
    amount = f"{currency} {terms.amount.amount:,}"
    when = _CREDIT_MOMENTS[terms.issue_at]
    if not terms.bonus.amount:
        return f"Store credit of {amount} instead of a refund, issued {when}."
    return (
        f"Store credit instead of a refund: {amount} plus a "
        f"{terms.bonus_percent.normalize():f}% bonus of {currency} {terms.bonus.amount:,}, "
        f"{currency} {terms.total:,} in all, issued {when}."
    )


def _store_credit(
    ctx: _Context, estimate: Decimal, *, returnless: bool
) -> tuple[CreditTerms | None, RuleHit | None]:
    """The customer chose store credit: how much, with the bonus, and when it is issued."""
    request = ctx.request
    if request.resolution != "store_credit" or estimate <= 0:
        return None, None
    moment: CreditMoment
    if request.type is CaseType.EXCHANGE:
        moment = "dispatch"
    elif returnless:
        moment = "approval"  # nothing comes back to scan or inspect
    elif ctx.high_risk:
        moment = "inspection"  # like a fast refund, early credit is not for high-risk customers
    else:
        moment = ctx.policy.returns.store_credit_at
    terms = credit_terms(estimate, currency=ctx.currency, policy=ctx.policy, issue_at=moment)
    return terms, RuleHit(id=STORE_CREDIT, message=credit_sentence(terms))


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
        season_hit = _peak_season(ctx, None, timers=True)
        if season_hit:
            rules.insert(1, season_hit)
        return Decision(
            eligible=True,
            peak_season=_season_note(rules, ctx),
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
    season_hit = _peak_season(ctx, "refunds", timers=eligible)
    if season_hit:
        rules.append(season_hit)
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
        peak_season=_season_note(rules, ctx),
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
    season_hit = _peak_season(ctx, None, timers=True)
    if season_hit:
        rules.append(season_hit)
    if ctx.high_risk:
        rules.append(_high_risk(ctx))
    review, review_hit = _review(ctx, returnless=False)
    rules.append(review_hit)
    return Decision(
        eligible=True,
        peak_season=_season_note(rules, ctx),
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
    rules = [RuleHit(id="manual_review", message="An agent handles every complaint.")]
    season_hit = _peak_season(ctx, None, timers=True)
    if season_hit:
        rules.append(season_hit)
    return Decision(
        eligible=True,
        peak_season=_season_note(rules, ctx),
        review="manual",
        high_risk=ctx.high_risk,
        in_warranty=ctx.in_warranty,
        refund_estimate=ctx.money(Decimal(0)),
        restocking_fee=ctx.money(Decimal(0)),
        rules=rules,
    )


# ---- a supervisor's word over the policy's (docs/decisions.md, "Exceptions") ----------------

AGENT_EXCEPTION = "agent_exception"
AGENT_ADJUSTMENT = "agent_adjustment"
# The rules a supervisor's change of terms replaces with its own sentence.
_FEE_RULES = frozenset({"restocking_fee"})
_SHIPPING_RULES = frozenset({"seller_pays_shipping", "customer_pays_shipping"})
EXCEPTION_TYPES = frozenset({CaseType.RETURN, CaseType.EXCHANGE})


class TermsRefused(ValueError):
    """A supervisor's exception or change of terms this case can't take, and why."""


def excepted(
    request: CaseRequest, *, policy: Policy, opened_at: datetime, by: str, reason: str
) -> Decision:
    """The decision of a return or exchange a supervisor approves against the policy.

    The window and category rules give way to `agent_exception`, naming the supervisor and
    their reason; shipping and the restocking fee follow the policy. An exception takes the
    careful path: the item comes back and is inspected before any refund (no returnless, no
    fast refund, no advance replacement), and nobody reviews it again.
    """
    if request.type not in EXCEPTION_TYPES:
        raise TermsRefused(f"a {request.type.value} case can't be approved as an exception")
    if request.order.delivered_at is None:
        raise TermsRefused("the order hasn't been delivered: open a refund-only case instead")
    zone = ZoneInfo(policy.timezone)
    ctx = _Context(
        request=request,
        policy=policy,
        today=shop_date(opened_at, zone),
        delivered_on=shop_date(request.order.delivered_at, zone),
        total=request.items_total,
        high_risk=False,
        in_warranty=False,
        warranty_until=None,
        prior_cases=0,
    )
    payer: Payer = "seller" if request.seller_fault else "customer"
    # The way back the customer chose still holds where the policy offers it.
    method, chain, method_hit = choose(request, policy, payer)
    payer, shipping_hit = _shipping(ctx, dropoff=chain is not None)
    fee, fee_hit = _restocking_fee(ctx)
    exception = RuleHit(id=AGENT_EXCEPTION, message=f"Approved as an exception by {by}: {reason}")
    estimate = _estimate(ctx, fee)
    rules = [
        exception,
        shipping_hit,
        *([method_hit] if method_hit else []),
        *([fee_hit] if fee_hit else []),
    ]
    credit: CreditTerms | None = None
    if request.resolution == "store_credit" and estimate > 0:
        # The careful path: an exception's credit waits for the inspection too.
        moment: CreditMoment = "dispatch" if request.type is CaseType.EXCHANGE else "inspection"
        credit = credit_terms(estimate, currency=ctx.currency, policy=policy, issue_at=moment)
        rules.append(RuleHit(id=STORE_CREDIT, message=credit_sentence(credit)))
    return Decision(
        eligible=True,
        review="auto",
        shipping_payer=payer,
        return_method=method,
        dropoff_chain=chain,
        refund_estimate=ctx.money(estimate),
        restocking_fee=ctx.money(fee),
        rules=rules,
        store_credit=credit,
        lines=_line_terms(ctx, {}),
    )


def adjusted(
    decision: Decision,
    request: CaseRequest,
    *,
    policy: Policy,
    fee: Decimal | None,
    payer: Payer | None,
    by: str,
) -> Decision:
    """The decision with a supervisor's restocking fee and shipping payer instead of the
    policy's; the refund estimate follows the fee, and `agent_adjustment` says what changed."""
    if fee is None and payer is None:
        return decision
    if request.type not in EXCEPTION_TYPES:
        raise TermsRefused(f"a {request.type.value} case has no restocking fee or return shipping")
    ctx = _Context(
        request=request,
        policy=policy,
        today=date.min,
        delivered_on=None,
        total=request.items_total,
        high_risk=decision.high_risk,
        in_warranty=decision.in_warranty,
        warranty_until=None,
        prior_cases=0,
    )
    changes: list[str] = []
    replaced: set[str] = set()
    new_fee = decision.restocking_fee.amount
    if fee is not None and ctx.quantize(fee) != new_fee:
        if ctx.quantize(fee) > ctx.quantize(ctx.total):
            raise TermsRefused(
                f"the restocking fee {ctx.show(fee)} is more than the items' {ctx.show(ctx.total)}"
            )
        old, new_fee = new_fee, ctx.quantize(fee)
        waived = " (waived)" if new_fee == 0 else ""
        changes.append(f"restocking fee {ctx.show(old)} -> {ctx.show(new_fee)}{waived}")
        replaced |= _FEE_RULES
    new_payer = decision.shipping_payer
    if payer is not None and payer != new_payer:
        if new_payer is None:
            raise TermsRefused("nothing is shipped back in this case: no shipping payer to change")
        new_payer = payer
        who = "the shop (pickup booked)" if payer == "seller" else "the customer"
        changes.append(f"return shipping paid by {who}")
        replaced |= _SHIPPING_RULES
    if not changes:
        return decision
    adjustment = RuleHit(id=AGENT_ADJUSTMENT, message=f"Changed by {by}: {'; '.join(changes)}.")
    # A pickup becomes the customer's own parcel and back with the payer; a drop-off stays.
    method = decision.return_method
    if method is not None and new_payer is not None:
        method = method_for(method, new_payer)
    estimate = _estimate(ctx, new_fee)
    rules = [rule for rule in decision.rules if rule.id not in replaced]
    credit = decision.store_credit
    if credit is not None:
        # The credit follows the new fee, bonus and all.
        credit = credit_terms(
            estimate, currency=ctx.currency, policy=policy, issue_at=credit.issue_at
        )
        sentence = credit_sentence(credit)
        rules = [
            rule if rule.id != STORE_CREDIT else RuleHit(id=STORE_CREDIT, message=sentence)
            for rule in rules
        ]
    return decision.model_copy(
        update={
            "lines": _spread_fee(ctx, decision.lines, new_fee),
            "shipping_payer": new_payer,
            "return_method": method,
            "restocking_fee": ctx.money(new_fee),
            "refund_estimate": ctx.money(estimate),
            "rules": [*rules, adjustment],
            "store_credit": credit,
        }
    )


def _spread_fee(ctx: _Context, lines: list[LineTerms], fee: Decimal) -> list[LineTerms]:
    """The lines with a supervisor's restocking fee in place of the policy's: shared in
    proportion to the fees the lines had (to their totals when none had one), no line paying
    more than its total, so the lines' fees add up to the case's."""
    taken = [index for index, line in enumerate(lines) if line.eligible]
    if not taken:
        return lines
    gross = {i: lines[i].refund.amount + lines[i].restocking_fee.amount for i in taken}
    weights = {i: lines[i].restocking_fee.amount for i in taken}
    if not any(weights.values()):
        weights = dict(gross)
    whole = sum(weights.values(), Decimal(0))
    shares = {i: ctx.quantize(fee * weights[i] / whole) if whole else Decimal(0) for i in taken}
    # Rounding and any share above a line's total go to the lines with room, in order.
    left = fee - sum(shares.values(), Decimal(0))
    for i in taken:
        over = shares[i] - gross[i]
        if over > 0:
            shares[i], left = gross[i], left + over
    for i in taken:
        # Positive: room left under the line's total; negative (rounding up): what it has.
        more = min(left, gross[i] - shares[i]) if left > 0 else max(left, -shares[i])
        shares[i] += more
        left -= more
    spread = list(lines)
    for i in taken:
        spread[i] = lines[i].model_copy(
            update={
                "restocking_fee": ctx.money(shares[i]),
                "refund": ctx.money(gross[i] - shares[i]),
            }
        )
    return spread
