"""A whole return through the API, as storefront, customer and integrations drive it."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tests.api.conftest import Api, token_of
from tests.conftest import until

CJK = re.compile(r"[\u4e00-\u9fff]")
# A customer-shipped return with a fast refund at the first scan, message by message.
MESSAGES = 6  # received, approved, picked up, item received, inspection passed, refund sent


def _due(case: dict[str, Any], name: str) -> datetime:
    due = {d["name"]: d["due_at"] for d in case["deadlines"]}
    assert name in due, f"no {name} deadline in {case['deadlines']} (status {case['status']})"
    return datetime.fromisoformat(due[name])


async def _until_deadline(api: Api, case_id: str, name: str, who: str = "agent") -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    while True:
        case = await api.case(case_id, who)
        if any(d["name"] == name for d in case["deadlines"]):
            return case
        assert loop.time() < end, f"{case_id} never showed a {name} deadline: {case}"
        await asyncio.sleep(0.05)


async def test_full_return(api: Api) -> None:
    case = await api.open(customer={"locale": "zh-TW"})
    case_id, token = case["id"], token_of(case)
    email = case["customer"]["email"]
    assert case["decision"]["shipping_payer"] == "customer"
    assert case["decision"]["fast_refund"] is True

    # Waiting for the customer's parcel: the live case shows its deadlines.
    await api.reach(case_id, "awaiting_shipment")
    waiting = await _until_deadline(api, case_id, "customer_shipment_reminder")
    now = datetime.now(UTC)
    assert (
        now + timedelta(days=6)
        < _due(waiting, "customer_shipment")
        <= now + timedelta(days=7, minutes=1)
    )
    assert now < _due(waiting, "customer_shipment_reminder") < _due(waiting, "customer_shipment")
    # The customer reads the same live case with the token.
    await api.reach(case_id, "awaiting_shipment", recorded=True)
    mine = await api.case(case_id, token)
    assert mine["status"] == "awaiting_shipment"
    assert {d["name"] for d in mine["deadlines"]} >= {"customer_shipment"}

    shipped = await api.request(
        "POST",
        f"/v1/cases/{case_id}/customer-actions",
        token,
        json={
            "action": "provide_tracking",
            "carrier": "Black Cat",
            "tracking_number": "BC123456789",
        },
    )
    assert shipped.status_code == 200, shipped.text
    after = shipped.json()
    assert after["shipments"] == [
        {
            "direction": "inbound",
            "carrier": "Black Cat",
            "tracking_number": "BC123456789",
            "label_url": None,
            "booked_by": "customer",
            "dropoff": None,
        }
    ]
    assert [d["name"] for d in after["deadlines"]] == ["transit"]
    assert any(e["kind"] == "tracking_provided" for e in after["timeline"])

    await api.event(case_id, "carrier.picked_up", tracking_number="BC123456789")
    await api.reach(case_id, "in_transit")
    in_transit = await _until_deadline(api, case_id, "transit")
    assert _due(in_transit, "transit") > datetime.now(UTC) + timedelta(days=9)
    await api.event(case_id, "warehouse.received")
    await api.reach(case_id, "inspecting")
    inspecting = await _until_deadline(api, case_id, "inspection")
    assert _due(inspecting, "inspection") > datetime.now(UTC)
    await api.event(case_id, "inspection.completed", result="pass", grade="A", notes="As new")
    resolved = await api.reach(case_id, "resolved")

    # Exactly one refund, of the item's price, to the order's payment method.
    refunds = api.peers.refunds_for(case_id)
    assert len(refunds) == 1, refunds
    refund = refunds[0]
    assert Decimal(str(refund["amount"])) == Decimal("990.00")
    assert refund["currency"] == "TWD"
    assert refund["order_id"] == case["order"]["id"]
    assert refund["payment_method"] == "card"
    assert resolved["refund"] == {
        "amount": "990.00",
        "currency": "TWD",
        "status": "succeeded",
        "refund_id": refund["refund_id"],
    }
    kinds = [e["kind"] for e in resolved["timeline"]]
    for kind in (
        "opened",
        "approved",
        "awaiting_shipment",
        "tracking_provided",
        "carrier.picked_up",
        "in_transit",
        "fast_refund",
        "refund_requested",
        "refund_succeeded",
        "warehouse.received",
        "received",
        "inspection.completed",
        "inspection_passed",
        "resolved",
    ):
        assert kind in kinds, f"{kind} missing from {kinds}"
    assert resolved["sla_breached"] is False

    # One signed webhook per status change, in order (the peers refuse unsigned posts).
    # The live case shows `resolved` as the workflow moves there; the webhook follows.
    await until(lambda: "case.resolved" in [e["type"] for e in api.peers.webhook_events(case_id)])
    events = api.peers.webhook_events(case_id)
    types = [e["type"] for e in events]
    assert types[:4] == [
        "case.open",
        "case.awaiting_shipment",
        "case.in_transit",
        "case.inspecting",
    ]
    assert types[-1] == "case.resolved"
    assert set(types[4:-1]) <= {"case.refund_pending"}
    assert len(types) == len(set(types))
    for event in events:
        assert event["status"] == event["type"].removeprefix("case.")
        assert event["data"]["case"]["id"] == case_id
    assert len({e["id"] for e in events}) == len(events)
    assert not [
        r
        for r in api.peers.rejections
        if isinstance(r.payload, dict) and r.payload.get("case_id") == case_id
    ]

    # Every message reached the customer's mailbox, in Traditional Chinese.
    messages = api.mail.to(email)
    assert len(messages) == MESSAGES, [str(m["Subject"]) for m in messages]
    for message in messages:
        subject = str(message["Subject"])
        assert CJK.search(subject), subject
        assert case_id in subject
    assert len({str(m["Message-ID"]) for m in messages}) == MESSAGES

    # The record behind lists and the status page caught up with the live case.
    await api.reach(case_id, "resolved", recorded=True)
