"""Realistic sample cases of every type and the `extra` each message needs: for previews
(`aftersales notifications preview`) and the notification tests."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from domain.locales import Locale
from domain.messages import MessageArgs
from domain.models import (
    Address,
    CaseStatus,
    CaseType,
    CaseView,
    Complaint,
    ComplaintCategory,
    Customer,
    Deadline,
    Decision,
    ExchangeItem,
    Item,
    Money,
    Order,
    OutOfStock,
    Priority,
    Reason,
    Refund,
    Repair,
    RepairDiagnosis,
    RepairReport,
    RuleHit,
    Shipment,
    StoreCredit,
    TimelineEntry,
)

TAIPEI = ZoneInfo("Asia/Taipei")
STATUS_URL = "http://localhost:8000/status/8f3c1d2e9a7b4c6d"
EXCHANGE_STATUS_URL = "http://localhost:8000/status/2b7e4a9c1d3f5e80"
COMPLAINT_STATUS_URL = "http://localhost:8000/status/5c9e2f7a1b4d8e36"
REFUND_STATUS_URL = "http://localhost:8000/status/6d1f8b3a0c2e9d47"
REPAIR_STATUS_URL = "http://localhost:8000/status/9a4c2e7b1f3d8e65"
DUE = datetime(2026, 11, 29, 10, 0, tzinfo=TAIPEI)

# Every message's `extra`, with values a real caller would pass.
EXTRA: dict[str, dict[str, Any]] = {
    "case_approved": {
        "return_address": "Returns Dept.\nNo. 100, Section 1, Zhongxiao E. Rd.\n100 Taipei City",
        "tracking_number": None,
    },
    "case_rejected": {"reason": "The item shows signs of use."},
    "info_needed": {"question": "Could you send a photo of the label inside the collar?"},
    "info_reminder": {"question": "Could you send a photo of the label inside the collar?"},
    "sms_nudge": {"awaiting": "info_needed"},
    "shipment_reminder": {
        "return_address": {
            "name": "Returns Dept.",
            "line1": "No. 100, Section 1, Zhongxiao E. Rd.",
            "city": "Taipei City",
            "postal_code": "100",
            "country": "TW",
        }
    },
    "pickup_rebooked": {"tracking_number": "TCAT-55512345"},
    "inspection_failed": {
        "notes": "Stains on the front; the original tags are missing.",
        "refund_amount": {"amount": "495.00", "currency": "TWD"},
    },
    "case_expired": {"timer": "customer_shipment"},
    "ops_escalation": {"timer": "review"},
    "difference_due": {"amount": {"amount": "300.00", "currency": "TWD"}},
    "replacement_shipped": {"tracking_number": "TCAT-66600002"},
    "out_of_stock_offer": {"amount": {"amount": "990.00", "currency": "TWD"}},
    "variant_switched": {"amount": {"amount": "100.00", "currency": "TWD"}, "refund_amount": None},
    "original_not_returned": {"amount": {"amount": "990.00", "currency": "TWD"}},
    "refund_offer": {
        "amount": {"amount": "297.00", "currency": "TWD"},
        "note": "Sorry about the scratch on the print; we can refund 30% and you keep it.",
        "credit": {"amount": "326.70", "currency": "TWD"},
    },
    "store_credit_issued": {"resolution": "store_credit"},
    "repair_quote": {
        "amount": {"amount": "1500.00", "currency": "TWD"},
        "parts": ["Left driver unit", "Ear cushion"],
        "notes": "The left driver is burnt out after a drop; this isn't covered by the warranty.",
    },
    "unrepairable": {
        "notes": "The main board is cracked and no spare boards are made any more.",
        "lost": False,
    },
    "complaint_response": {
        "response": "We're sorry the seam opened. Was the shirt washed cold, as its label asks?",
    },
    "resolution_proposed": {
        "resolution": "partial_refund",
        "amount": {"amount": "300.00", "currency": "TWD"},
        "note": "We'd like to make it up to you; please keep the shirt.",
    },
    "resolution_done": {"resolution": "return", "amount": None, "child_case_id": "R-8K2W4NZA"},
}

# The warehouse's word on an exchange's replacement out of stock, with two variants in stock.
OUT_OF_STOCK = OutOfStock(
    sku="TEE-L-BLK",
    expected_at=date(2026, 12, 5),
    alternatives=[
        ExchangeItem(sku="TEE-L-NVY", quantity=1, unit_price=Decimal("990.00")),
        ExchangeItem(sku="TEE-XL-BLK", quantity=1, unit_price=Decimal("1090.00")),
    ],
)

QuoteStatus = Literal["sent", "accepted", "declined", "expired"]
CaseKind = Literal["return", "exchange", "refund", "repair", "complaint"]
# Where a refund-only case stands (DESIGN 3.4): not shipped, shipped but not delivered,
# delivered with a seller fault (offer or returnless), or delivered for a customer reason.
RefundStage = Literal["unshipped", "in_transit", "delivered", "customer_reason"]

# The deadline a message is sent with, where it isn't the return shipment's.
DEADLINE_FOR: dict[str, str] = {
    "case_received": "review",
    "info_needed": "customer_info",
    "info_reminder": "customer_info",
    "sms_nudge": "customer_info",
    "item_received": "inspection",
    # An exchange's replacement goes out by the dispatch deadline once inspection passes.
    "inspection_passed": "dispatch",
    "difference_due": "offer_response",
    "out_of_stock_offer": "offer_response",
    "waiting_for_stock": "restock",
    "refund_offer": "offer_response",
    "interception_requested": "interception",
    "survey": "survey",
    # A repair's own deadlines.
    "repair_quote": "quote_response",
    "repair_started": "repair",
    "unrepairable": "review",
    # A complaint's own deadlines: the first answer, then the proposal and satisfaction check.
    "complaint_acknowledged": "first_response",
    "complaint_response": "review",
    "resolution_proposed": "offer_response",
    "satisfaction_check": "offer_response",
}
# Deadlines a complaint names differently: it is answered, not reviewed.
COMPLAINT_DEADLINE_FOR: dict[str, str] = {"case_received": "first_response"}
# Deadlines a repair names differently: the item is diagnosed, not inspected.
REPAIR_DEADLINE_FOR: dict[str, str] = {"item_received": "diagnosis"}
# Messages sent with no deadline at all.
NO_DEADLINE = frozenset(
    {
        "case_rejected",
        "picked_up",
        "inspection_failed",
        "refund_sent",
        "store_credit_issued",
        "case_expired",
        "case_cancelled",
        "fulfilment_cancelled",
        "interception_failed",
        "offer_declined",
        "variant_switched",
        "diagnosis_delayed",
        "repair_declined",
        "repair_done",
    }
)
# Messages sent with no deadline by one case type only: a return's refund follows inspection
# at once, and an undelivered refund-only case skips review.
NO_DEADLINE_FOR: dict[str, frozenset[str]] = {
    "return": frozenset({"inspection_passed"}),
    "exchange": frozenset(),
    "refund": frozenset({"inspection_passed", "case_received", "case_approved"}),
    # The item going back to the customer is tracked by its delivery, not a customer deadline.
    "repair": frozenset({"replacement_shipped", "refund_sent"}),
    # The follow-up runs from the resolution; resolution_done says it comes, not when.
    "complaint": frozenset({"resolution_done"}),
}


def sample_case(
    *,
    locale: Locale = Locale.EN,
    description: str = "Too small, I need an L.",
    customer_name: str = "Amy Lin",
    shipping_payer: Literal["seller", "customer"] = "customer",
    returnless: bool = False,
    refunded: bool = True,
) -> CaseView:
    """A return case late in its life, so every message finds the fields it reads."""
    created = datetime(2026, 11, 20, 9, 30, tzinfo=TAIPEI)
    return CaseView(
        id="R-7Q2K9MXA",
        type=CaseType.RETURN,
        status=CaseStatus.AWAITING_SHIPMENT,
        order=Order(
            id="SO-1001",
            placed_at=datetime(2026, 11, 10, 10, 0, tzinfo=TAIPEI),
            shipped_at=datetime(2026, 11, 11, 10, 0, tzinfo=TAIPEI),
            delivered_at=datetime(2026, 11, 12, 15, 0, tzinfo=TAIPEI),
            currency="TWD",
        ),
        customer=Customer(
            id="C-42",
            email="amy@example.com",
            phone="+886912345678",
            locale=locale,
            timezone="Asia/Taipei",
            address=Address(name=customer_name, line1="No. 1, Songzhi Rd.", city="Taipei"),
        ),
        items=[
            Item(
                sku="TEE-M-BLK",
                name="T-shirt",
                category="apparel",
                unit_price=Decimal("990.00"),
                warranty_months=12,
            )
        ],
        reason=Reason.SIZE_FIT,
        description=description,
        decision=Decision(
            eligible=True,
            review="auto",
            shipping_payer=shipping_payer,
            fast_refund=True,
            returnless=returnless,
            refund_estimate=Money(amount=Decimal("990.00"), currency="TWD"),
            restocking_fee=Money(amount=Decimal("0"), currency="TWD"),
            rules=[
                RuleHit(
                    id="outside_return_window",
                    message="Delivered 9 days ago; returns are accepted for 7 days.",
                ),
                RuleHit(id="customer_pays_shipping", message="The customer pays return shipping."),
            ],
            alternatives=["repair", "exchange"],
        ),
        refund=(
            Refund(amount=Decimal("990.00"), currency="TWD", status="succeeded", refund_id="re_123")
            if refunded
            else None
        ),
        shipments=[Shipment(direction="inbound", carrier="tcat", tracking_number="TCAT-55500001")],
        deadlines=[Deadline(name="customer_shipment", due_at=DUE)],
        status_url=STATUS_URL,
        timeline=[TimelineEntry(at=created, kind="opened", actor="storefront")],
        created_at=created,
        updated_at=created,
    )


def sample_exchange_case(
    *,
    locale: Locale = Locale.EN,
    shipping_payer: Literal["seller", "customer"] = "customer",
    returnless: bool = False,
    difference: Decimal = Decimal("0"),
    replacement_sent: bool = False,
    refunded: bool = False,
) -> CaseView:
    """An exchange of a T-shirt for the next size up; `difference` is what a cheaper one refunds."""
    case = sample_case(locale=locale, shipping_payer=shipping_payer, returnless=returnless)
    case.id = "X-4H8N2PQA"
    case.type = CaseType.EXCHANGE
    case.exchange_for = [
        ExchangeItem(sku="TEE-L-BLK", quantity=1, unit_price=Decimal("990.00") - difference)
    ]
    case.decision.fast_refund = False
    case.decision.refund_estimate = Money(amount=difference, currency="TWD")
    case.decision.rules = [
        RuleHit(
            id="outside_return_window",
            message="Delivered 9 days ago; exchanges are accepted for 7 days.",
        ),
        RuleHit(id="customer_pays_shipping", message="The customer pays return shipping."),
    ]
    case.decision.alternatives = ["repair", "refund"]
    case.refund = (
        Refund(amount=difference, currency="TWD", status="succeeded", refund_id="re_456")
        if refunded
        else None
    )
    if replacement_sent:
        case.shipments.append(
            Shipment(direction="outbound", carrier="tcat", tracking_number="TCAT-66600002")
        )
    case.status_url = EXCHANGE_STATUS_URL
    return case


def sample_refund_case(
    *,
    locale: Locale = Locale.EN,
    stage: RefundStage = "unshipped",
    returnless: bool = False,
    refunded: bool = False,
) -> CaseView:
    """A refund-only case for the whole order, at the given stage of DESIGN 3.4."""
    case = sample_case(locale=locale, refunded=False)
    case.id = "F-9T3W6KZB"
    case.type = CaseType.REFUND
    case.status_url = REFUND_STATUS_URL
    if stage != "delivered":
        # Only a delivered order can be on its way back (after an interception failed).
        case.shipments = []
    case.description = "Please cancel, I ordered the wrong colour."
    case.reason = Reason.ORDERED_BY_MISTAKE
    full = Money(amount=Decimal("990.00"), currency="TWD")
    none = Money(amount=Decimal("0"), currency="TWD")
    if stage == "unshipped":
        case.order.shipped_at = case.order.delivered_at = None
        rules = [
            RuleHit(
                id="not_delivered",
                message="The order hasn't shipped: it is cancelled and refunded in full.",
            )
        ]
        decision = Decision(
            eligible=True, review="auto", refund_estimate=full, restocking_fee=none, rules=rules
        )
    elif stage == "in_transit":
        case.order.delivered_at = None
        rules = [
            RuleHit(
                id="not_delivered",
                message=(
                    "The order has shipped but not been delivered: "
                    "it is intercepted and refunded in full."
                ),
            )
        ]
        decision = Decision(
            eligible=True, review="auto", refund_estimate=full, restocking_fee=none, rules=rules
        )
    elif stage == "delivered":
        case.reason = Reason.NOT_AS_DESCRIBED
        case.description = "The print is scratched, but I'd like to keep the shirt."
        rules = [
            RuleHit(
                id="in_window",
                message="Delivered 9 days ago; refunds for an item not as described are "
                "accepted for 15 days.",
            )
        ]
        decision = Decision(
            eligible=True,
            review="auto" if returnless else "manual",
            returnless=returnless,
            refund_estimate=full,
            restocking_fee=none,
            rules=rules,
        )
    else:
        rules = [
            RuleHit(
                id="use_return",
                message="A delivered order is refunded for an order placed by mistake only "
                "through a return: please open a return case.",
            )
        ]
        decision = Decision(
            eligible=False,
            review="none",
            refund_estimate=none,
            restocking_fee=none,
            rules=rules,
            alternatives=["return"],
        )
    case.decision = decision
    if refunded:
        case.refund = Refund(
            amount=Decimal("990.00"), currency="TWD", status="succeeded", refund_id="re_789"
        )
    return case


# The refund-only stage each message belongs to; the rest come after an interception failed
# and the parcel is on its way back, or (case_approved, offers) to a delivered seller fault.
REFUND_STAGE_FOR: dict[str, RefundStage] = {
    "case_received": "unshipped",
    "fulfilment_cancelled": "unshipped",
    "interception_requested": "in_transit",
    "interception_failed": "in_transit",
    "case_rejected": "customer_reason",
    "case_approved": "delivered",
    "info_needed": "delivered",
    "info_reminder": "delivered",
    "refund_offer": "delivered",
    "offer_declined": "delivered",
}


# Where a repair stands (DESIGN 3.5): before diagnosis, quoted, quote declined or unanswered,
# repairing, repaired and on its way back, delivered with its warranty, or unrepairable and then
# refunded or replaced.
RepairStage = Literal[
    "new",
    "quoted",
    "declined",
    "expired",
    "repairing",
    "repaired",
    "done",
    "unrepairable",
    "refunded",
    "replaced",
]


def sample_repair_case(
    *, locale: Locale = Locale.EN, stage: RepairStage = "new", in_warranty: bool = True
) -> CaseView:
    """A repair of headphones with one dead earcup, at the given stage of DESIGN 3.5."""
    case = sample_case(locale=locale, shipping_payer="seller" if in_warranty else "customer")
    case.id = "P-3M7R5TXC"
    case.type = CaseType.REPAIR
    case.status_url = REPAIR_STATUS_URL
    case.status = CaseStatus.INSPECTING
    case.items = [
        Item(
            sku="HP-200-BLK",
            name="Wireless headphones",
            category="electronics",
            unit_price=Decimal("3290.00"),
            opened=True,
            warranty_months=12,
        )
    ]
    case.reason = Reason.DEFECTIVE
    case.description = "No sound from the left earcup."
    case.refund = None
    case.shipments = [
        Shipment(
            direction="inbound",
            booked_by="seller" if in_warranty else "customer",
            carrier="tcat",
            tracking_number="TCAT-55500009",
        )
    ]
    zero = Money(amount=Decimal("0"), currency="TWD")
    if in_warranty:
        rules = [
            RuleHit(
                id="in_warranty", message="Under warranty until 2027-11-12: the repair is free."
            ),
            RuleHit(
                id="seller_pays_shipping",
                message="The shop pays shipping for a warranty repair and books the pickup.",
            ),
        ]
    else:
        rules = [
            RuleHit(
                id="out_of_warranty",
                message="The warranty ended on 2026-12-12: the repair is paid, after a quote.",
            ),
            RuleHit(
                id="customer_pays_shipping",
                message="The customer pays shipping for a repair out of warranty.",
            ),
        ]
    case.decision = Decision(
        eligible=True,
        review="auto",
        shipping_payer="seller" if in_warranty else "customer",
        in_warranty=in_warranty,
        refund_estimate=zero,
        restocking_fee=zero,
        rules=rules,
    )
    repair = Repair()
    if stage in ("quoted", "declined", "expired") or (stage == "repairing" and not in_warranty):
        repair.diagnosis = RepairDiagnosis(
            repairable=True,
            parts=["Left driver unit", "Ear cushion"],
            cost=Decimal("1500.00"),
            notes="The left driver is burnt out after a drop.",
        )
        quote_status: dict[str, QuoteStatus] = {
            "quoted": "sent",
            "declined": "declined",
            "expired": "expired",
        }
        repair.quote_status = quote_status.get(stage, "accepted")
    elif stage in ("repairing", "repaired", "done"):
        repair.diagnosis = RepairDiagnosis(
            repairable=True,
            parts=["Left driver unit"],
            notes="A loose solder joint on the left driver.",
        )
    elif stage in ("unrepairable", "refunded", "replaced"):
        repair.diagnosis = RepairDiagnosis(
            repairable=False, notes="The main board is cracked; no spare boards are made any more."
        )
    if stage in ("repaired", "done"):
        repair.report = RepairReport(
            parts_replaced=["Left driver unit"],
            work_done="Replaced the left driver and resoldered its cable; tested both channels.",
            qc_passed=True,
        )
    if stage in ("declined", "expired"):
        repair.outcome = "returned_unrepaired"
    elif stage in ("repaired", "done"):
        repair.outcome = "repaired"
    elif stage in ("refunded", "replaced"):
        repair.outcome = stage
    if stage == "done":
        repair.warranty_until = date(2027, 2, 28)
    case.repair = repair
    if stage in ("declined", "expired", "repaired", "done", "replaced"):
        case.status = CaseStatus.REPLACEMENT_SHIPPED
        case.shipments.append(
            Shipment(direction="outbound", booked_by="seller", tracking_number="TCAT-66600009")
        )
    if stage == "refunded":
        case.refund = Refund(
            amount=Decimal("3290.00"), currency="TWD", status="succeeded", refund_id="re_321"
        )
    return case


# The repair stage each message belongs to; the rest are sent before the diagnosis.
REPAIR_STAGE_FOR: dict[str, RepairStage] = {
    "repair_quote": "quoted",
    "repair_declined": "declined",
    "repair_started": "repairing",
    "replacement_shipped": "repaired",
    "repair_done": "done",
    "survey": "done",
    "unrepairable": "unrepairable",
    "refund_sent": "refunded",
}


def sample_complaint_case(
    *,
    locale: Locale = Locale.EN,
    category: ComplaintCategory = ComplaintCategory.PRODUCT_QUALITY,
    priority: Priority = Priority.HIGH,
    refunded: bool = False,
) -> CaseView:
    """A complaint about a shirt's seam (DESIGN 3.6), of high severity, routed to quality."""
    case = sample_case(locale=locale, refunded=False)
    case.id = "C-3M7P1QXD"
    case.type = CaseType.COMPLAINT
    case.status = CaseStatus.AWAITING_REVIEW
    case.status_url = COMPLAINT_STATUS_URL
    case.reason = None
    case.description = "The seam on the left sleeve came apart after one wash."
    case.complaint = Complaint(category=category, channel="chat", severity="high")
    case.priority = priority
    case.queue = "quality"
    case.shipments = []
    none = Money(amount=Decimal("0"), currency="TWD")
    case.decision = Decision(
        eligible=True,
        review="manual",
        refund_estimate=none,
        restocking_fee=none,
        rules=[RuleHit(id="manual_review", message="An agent handles every complaint.")],
    )
    if refunded:
        case.refund = Refund(
            amount=Decimal("300.00"), currency="TWD", status="succeeded", refund_id="re_654"
        )
    return case


def sample_for(kind: CaseKind, message: str, locale: Locale = Locale.EN) -> CaseView:
    """A case of this kind at the point where it sends this message, with its deadline."""
    if kind == "exchange":
        # An exchange refunds only a cheaper replacement's difference (or an out-of-stock one).
        refunded = message in ("refund_sent", "survey")
        case = sample_exchange_case(
            locale=locale,
            replacement_sent=message in ("replacement_shipped", "original_not_returned"),
            difference=Decimal("100.00") if refunded else Decimal("0"),
            refunded=refunded,
        )
        if message in ("out_of_stock_offer", "waiting_for_stock"):
            case.out_of_stock = OUT_OF_STOCK.model_copy(deep=True)
        if message == "variant_switched":
            case.exchange_for = [OUT_OF_STOCK.alternatives[1].model_copy()]
    elif kind == "refund":
        case = sample_refund_case(
            locale=locale,
            stage=REFUND_STAGE_FOR.get(message, "delivered"),
            refunded=message in ("refund_sent", "survey"),
        )
    elif kind == "repair":
        stage = REPAIR_STAGE_FOR.get(message, "new")
        # A quote is only ever sent out of warranty.
        case = sample_repair_case(
            locale=locale, stage=stage, in_warranty=stage not in ("quoted", "declined")
        )
    elif kind == "complaint":
        case = sample_complaint_case(
            locale=locale, refunded=message in ("refund_sent", "resolution_done", "survey")
        )
    else:
        case = sample_case(locale=locale)
    if message == "store_credit_issued":
        # Paid back in store credit with a 10% bonus instead of the refund.
        refund = case.refund
        amount = refund.amount if refund else Decimal("990.00")
        case.refund = None
        case.store_credit = StoreCredit(
            amount=amount,
            bonus=(amount / 10).quantize(Decimal("0.01")),
            currency=case.order.currency,
            status="issued",
            credit_id="sc_5521",
            code="SC-7Q2K-9MXA",
        )
    if message in NO_DEADLINE or message in NO_DEADLINE_FOR[kind]:
        case.deadlines = []
    else:
        name = DEADLINE_FOR.get(message, "customer_shipment")
        if kind == "repair":
            name = REPAIR_DEADLINE_FOR.get(message, name)
        if kind == "complaint":
            name = COMPLAINT_DEADLINE_FOR.get(message, name)
        case.deadlines = [Deadline(name=name, due_at=DUE)]
    return case


def context(case: CaseView, message: str, **overrides: Any) -> dict[str, Any]:
    """The context a notification activity builds for one message of this case."""
    deadline = case.next_deadline
    values: dict[str, Any] = {
        "case": case.model_dump(mode="json"),
        "status_url": case.status_url,
        "timezone": "Asia/Taipei",
        "deadline": deadline.model_dump(mode="json") if deadline else None,
        # Through the activity's typed arguments, so a sample can't pass what no caller can.
        "extra": MessageArgs.model_validate(EXTRA.get(message, {})).context(),
    }
    values.update(overrides)
    return values


CASE_KINDS: tuple[CaseKind, ...] = ("return", "exchange", "refund", "repair", "complaint")


def preview_context(message: str, locale: Locale, kind: CaseKind = "return") -> dict[str, Any]:
    """The render context of one message for a sample case of this kind, in this locale."""
    return context(sample_for(kind, message, locale), message)
