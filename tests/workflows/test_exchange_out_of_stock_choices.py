"""A replacement out of stock: the customer waits for the warehouse's restock date, or switches
to a variant it offered, cheaper or dearer (issue 11). The refund and no answer are in
test_exchange_out_of_stock.py."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from domain.calendar import BusinessCalendar
from domain.models import CaseView
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    customer,
    deadline,
    deadline_names,
    entry,
    in_order,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    near,
    ops_mails_arrive,
    reach,
    reach_deadline,
    reach_kind,
    reach_overdue,
    requests_for,
    send_back,
    shipment_keys,
    signal,
    sleep_past,
    state,
    stop,
)
from workflows.case import CaseInput

SAME_PRICE = [{"sku": "TEE-L-BLK", "quantity": 1, "unit_price": "990.00"}]
NAVY = {"sku": "TEE-L-NVY", "quantity": 1, "unit_price": "890.00"}
XL = {"sku": "TEE-XL-BLK", "quantity": 1, "unit_price": "1090.00"}


async def out_of_stock(
    stack: Stack, **data: Any
) -> tuple[CaseInput, WorkflowHandle[Any, CaseView], CaseView]:
    """An exchange whose original passed inspection and whose replacement is out of stock,
    the warehouse saying `data` of it; the case waits for the customer's choice."""
    case = case_input(now=await stack.now(), type="exchange", exchange_for=SAME_PRICE)
    handle = await stack.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    await reach_deadline(handle, "dispatch")
    await signal(handle, "replacement.out_of_stock", **data)
    view = await reach_deadline(handle, "offer_response")
    assert view.status == "awaiting_customer"
    await mails_arrive(stack.mail, case, "out_of_stock_offer")
    return case, handle, view


async def test_the_customer_waits_until_the_restock_date(stack: Stack) -> None:
    today = (await stack.now()).date()
    expected = today + timedelta(days=5)
    case, handle, view = await out_of_stock(
        stack, sku="TEE-L-BLK", expected_at=expected.isoformat(), alternatives=[NAVY]
    )
    assert view.out_of_stock is not None and view.out_of_stock.expected_at == expected
    assert {"accept", "decline", "switch_variant"} <= set(view.customer_actions)
    offer = mail_text(stack.mail, case, "out_of_stock_offer")
    assert f"expects it back in stock on {expected.isoformat()}" in offer
    assert "TEE-L-NVY x 1: TWD 890.00 each" in offer and "refund TWD 990.00" in offer

    view = await customer(handle, "decline")
    assert view.status == "inspecting"
    view = await reach_deadline(handle, "restock")
    assert deadline_names(view) == {"restock"}
    # The warehouse's usual dispatch time (1 business day), counted from the restock date.
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    restocked = datetime.combine(expected, time(0), tzinfo=calendar.zone)
    due = deadline(view, "restock").due_at
    assert near(due, calendar.add(restocked, "1bd"))
    assert entry(view, "waiting_for_stock").data == {"expected_at": expected.isoformat()}
    # The page still shows the restock date; the replacement was asked for again.
    assert view.out_of_stock is not None and view.out_of_stock.expected_at == expected
    assert shipment_keys(stack.peers, case.case_id) == [
        f"{case.case_id}:replacement.1",
        f"{case.case_id}:replacement.2",
    ]
    await mails_arrive(stack.mail, case, "waiting_for_stock")
    waiting = mail_text(stack.mail, case, "waiting_for_stock")
    assert f"expects it back in stock on {expected.isoformat()}" in waiting
    assert f"We'll ship it by {due.astimezone(calendar.zone):%Y-%m-%d %H:%M}" in waiting

    # Not shipped by then: the shop's deadline, escalated; the case keeps waiting.
    await sleep_past(stack.env, handle, "restock")
    view = await reach_overdue(handle, deadline(view, "restock"))
    assert entry(view, "escalated").data == {"timer": "restock"}
    await ops_mails_arrive(stack.mail, case.case_id, 1)

    await signal(handle, "replacement.shipped", tracking_number="TRK-RESTOCKED")
    await reach(handle, "replacement_shipped")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved" and view.out_of_stock is None
    assert stack.peers.refunds_for(case.case_id) == []
    assert mail_names(stack.mail, case)[-3:] == [
        "out_of_stock_offer",
        "waiting_for_stock",
        "replacement_shipped",
    ]
    await stop(stack.client, handle)


async def test_switching_to_a_cheaper_variant_refunds_the_difference(stack: Stack) -> None:
    case, handle, _view = await out_of_stock(stack, alternatives=[NAVY, XL])
    # Only what the warehouse offered: the customer never names a price.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await customer(handle, "switch_variant", sku="TEE-L-PINK")
    assert "isn't one of the variants offered" in str(refused.value.cause)
    view = await state(handle)
    assert view.status == "awaiting_customer" and "offer_response" in deadline_names(view)

    view = await customer(handle, "switch_variant", sku="TEE-L-NVY")
    assert view.status == "inspecting"
    assert [line.sku for line in view.exchange_for] == ["TEE-L-NVY"]
    assert view.out_of_stock is None
    assert entry(view, "variant_switched").actor == "customer"
    view = await reach_deadline(handle, "dispatch")
    assert deadline_names(view) == {"dispatch"}
    shipments = stack.peers.shipments_for(case.case_id)
    assert [s["items"][0]["sku"] for s in shipments] == ["TEE-L-BLK", "TEE-L-NVY"]
    await mails_arrive(stack.mail, case, "variant_switched")
    switched = mail_text(stack.mail, case, "variant_switched")
    assert "TEE-L-NVY x 1" in switched and "difference of TWD 100.00" in switched

    await signal(handle, "replacement.shipped", tracking_number="TRK-NAVY")
    await reach(handle, "replacement_shipped")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("100.00", "exchange_difference")
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    assert "out_of_stock_refund" not in kinds(view)
    assert in_order(view, "out_of_stock_offer", "variant_switched", "replacement_shipped")
    await mails_arrive(stack.mail, case, "refund_sent")
    await stop(stack.client, handle)


async def test_switching_to_a_dearer_variant_waits_for_the_difference(stack: Stack) -> None:
    case, handle, _view = await out_of_stock(stack, alternatives=[NAVY, XL])
    view = await customer(handle, "switch_variant", sku="TEE-XL-BLK")
    # The difference is due first, under the offer deadline.
    view = await reach_kind(handle, "difference_due")
    view = await reach_deadline(handle, "offer_response")
    assert view.status == "awaiting_customer"
    assert [line.sku for line in view.exchange_for] == ["TEE-XL-BLK"]
    # Unlike at open, no cancel while the difference is due: the shop holds the original.
    assert "cancel" not in view.customer_actions
    await mails_arrive(stack.mail, case, "variant_switched", "difference_due")
    assert "costs TWD 100.00 more" in mail_text(stack.mail, case, "variant_switched")
    assert "TWD 100.00" in mail_text(stack.mail, case, "difference_due")
    assert shipment_keys(stack.peers, case.case_id) == [f"{case.case_id}:replacement.1"]

    await signal(handle, "customer.paid_difference")
    view = await reach_deadline(handle, "dispatch")
    assert view.status == "inspecting"
    assert entry(view, "difference_paid").message == "Paid TWD 100.00."
    shipments = stack.peers.shipments_for(case.case_id)
    assert [s["items"][0]["sku"] for s in shipments] == ["TEE-L-BLK", "TEE-XL-BLK"]
    await signal(handle, "replacement.shipped", tracking_number="TRK-XL")
    await reach(handle, "replacement_shipped")
    await signal(handle, "carrier.delivered")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert stack.peers.refunds_for(case.case_id) == []
    await stop(stack.client, handle)


def test_the_event_data_is_checked() -> None:
    from domain.actions import EventType, IntegrationEvent, OutOfStockData

    event = IntegrationEvent(
        event_id="ev-1",
        type=EventType.REPLACEMENT_OUT_OF_STOCK,
        occurred_at=datetime(2026, 12, 1),
        data={"expected_at": "2026-12-20", "alternatives": [NAVY]},
    )
    parsed = event.parsed()
    assert isinstance(parsed, OutOfStockData) and parsed.expected_at == date(2026, 12, 20)
    with pytest.raises(ValueError, match="expected_at"):
        IntegrationEvent(**{**event.model_dump(), "data": {"expected_at": "soon"}}).parsed()
