"""A realistic return case and the `extra` each message needs, shared by the notification tests."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from domain.models import (
    Address,
    CaseStatus,
    CaseType,
    CaseView,
    Customer,
    Deadline,
    Decision,
    Item,
    Locale,
    Money,
    Order,
    Reason,
    Refund,
    RuleHit,
    Shipment,
    TimelineEntry,
)

TAIPEI = ZoneInfo("Asia/Taipei")
STATUS_URL = "http://localhost:8000/status/8f3c1d2e9a7b4c6d"
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


def context(case: CaseView, message: str, **overrides: Any) -> dict[str, Any]:
    """The context a notification activity builds for one message of this case."""
    deadline = case.next_deadline
    values: dict[str, Any] = {
        "case": case.model_dump(mode="json"),
        "status_url": case.status_url,
        "timezone": "Asia/Taipei",
        "deadline": deadline.model_dump(mode="json") if deadline else None,
        "extra": dict(EXTRA.get(message, {})),
    }
    values.update(overrides)
    return values
