"""Complaints (DESIGN 3.6): the priority a complaint opens with, and the child case that
carries out a resolution the customer accepted (a return, an exchange or a repair).

Pure and deterministic, so the API (at open) and the complaint workflow (inside the sandbox)
decide the same way from the same inputs.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from domain.models import (
    CaseRequest,
    CaseType,
    ComplaintCategory,
    Decision,
    ExchangeItem,
    Money,
    Priority,
    Reason,
    RuleHit,
)
from domain.money import round_money
from domain.policy import Policy
from domain.rules import evaluate

# Where a complaint marked malicious goes (DESIGN 3.6 step 5).
REVIEW_BOARD = "review_board"

# The resolutions an agent may propose that another case carries out, and its type.
CHILD_CASE_TYPES: dict[str, CaseType] = {
    "return": CaseType.RETURN,
    "exchange": CaseType.EXCHANGE,
    "repair": CaseType.REPAIR,
}
# The resolutions that pay money back through the payment connector.
REFUND_RESOLUTIONS = frozenset({"partial_refund", "refund"})

# The reason a child case gives when the complaint named none: every one a seller fault, as
# the shop agreed to make it right.
_CHILD_REASON: dict[ComplaintCategory, Reason] = {
    ComplaintCategory.PRODUCT_QUALITY: Reason.DEFECTIVE,
    ComplaintCategory.LOGISTICS: Reason.DAMAGED_IN_TRANSIT,
    ComplaintCategory.ORDER_PROCESSING: Reason.WRONG_ITEM,
}
# Rules of the evaluation that the agent's decision overrides in a child case.
_OVERRIDDEN_RULES = frozenset(
    {
        "not_delivered",
        "outside_return_window",
        "warranty_repair_suggested",
        "non_returnable_category",
        "use_return",
        "customer_pays_shipping",
        "seller_pays_shipping",
        "restocking_fee",
        "manual_review",
        "auto_approve",
        "returnless",
        "in_warranty",
        "out_of_warranty",
    }
)


def opening_priority(request: CaseRequest) -> Priority:
    """`high` for a complaint of severity `high` or about a negative review; else `normal`."""
    complaint = request.complaint
    if complaint is not None and (complaint.severity == "high" or complaint.negative_review):
        return Priority.HIGH
    return Priority.NORMAL


def child_request(request: CaseRequest, case_type: CaseType) -> CaseRequest:
    """The complaint's request as a case of another type: same order, customer and items.

    The reason is the complaint's, or one that puts the fault on the seller; an exchange asks
    for the same items again.
    """
    reason = request.reason
    if reason is None:
        category = request.complaint.category if request.complaint else None
        reason = _CHILD_REASON.get(category, Reason.NOT_AS_DESCRIBED) if category else None
    exchange_for = (
        [
            ExchangeItem(sku=item.sku, quantity=item.quantity, unit_price=item.unit_price)
            for item in request.items
        ]
        if case_type is CaseType.EXCHANGE
        else []
    )
    return request.model_copy(
        update={
            "type": case_type,
            "reason": reason or Reason.NOT_AS_DESCRIBED,
            "complaint": None,
            "exchange_for": exchange_for,
        },
        deep=True,
    )


def child_decision(
    request: CaseRequest,
    *,
    policy: Policy,
    now: datetime,
    high_risk: bool,
    parent_case_id: str,
) -> Decision:
    """The policy's decision for a child case, made eligible on the agent's terms.

    The rules are evaluated as for any case (so a fast refund, the window and the customer's
    risk read as usual), then the agent's decision overrides them: approved without review,
    the shop pays shipping and books the pickup, no restocking fee, the item comes back (never
    returnless), and a repair is free. A return refunds the items' total; an exchange sends the
    same items again, so nothing is refunded or due.
    """
    threshold = policy.returns.serial_returner_threshold
    evaluated = evaluate(request, policy=policy, now=now, prior_cases=threshold if high_risk else 0)
    currency = request.order.currency
    total = round_money(request.items_total, policy.currency_minor_units)
    is_return = request.type is CaseType.RETURN
    kept = [rule for rule in evaluated.rules if rule.id not in _OVERRIDDEN_RULES]
    rules = [
        RuleHit(
            id="complaint_resolution",
            message=(
                f"Opened to carry out the resolution the customer accepted for complaint "
                f"{parent_case_id}: approved without review."
            ),
        ),
        RuleHit(
            id="seller_pays_shipping",
            message="The shop pays shipping for a complaint's resolution and books the pickup.",
        ),
        *kept,
    ]
    fast_refund = is_return and policy.returns.fast_refund and not high_risk
    if fast_refund and not any(rule.id == "fast_refund" for rule in rules):
        rules.append(
            RuleHit(
                id="fast_refund",
                message="The refund is paid at the first carrier scan, before inspection.",
            )
        )
    return evaluated.model_copy(
        update={
            "eligible": True,
            "review": "auto",
            "shipping_payer": "seller",
            "high_risk": high_risk,
            "fast_refund": fast_refund,
            "returnless": False,
            "in_warranty": evaluated.in_warranty or request.type is CaseType.REPAIR,
            "refund_estimate": Money(amount=total if is_return else Decimal(0), currency=currency),
            "restocking_fee": Money(amount=Decimal(0), currency=currency),
            "rules": rules,
            "alternatives": [],
        },
        deep=True,
    )
