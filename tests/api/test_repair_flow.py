"""A paid repair through the API: the storefront opens it, the customer ships and accepts the
quote, the agent diagnoses, the repair centre and the carrier report (DESIGN 3.5, 6)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.api.conftest import Api, token_of


async def test_paid_repair_through_the_api(api: Api) -> None:
    delivered = datetime.now(UTC) - timedelta(days=400)
    case = await api.open(
        type="repair",
        reason="defective",
        evidence=["https://cdn.example.com/evidence/hinge.jpg"],
        order={"delivered_at": delivered.isoformat(), "placed_at": delivered.isoformat()},
    )
    case_id, token = case["id"], token_of(case)
    assert case_id.startswith("P-")
    assert case["decision"]["in_warranty"] is False
    assert case["decision"]["shipping_payer"] == "customer"
    assert case["repair"] == {
        "diagnosis": None,
        "quote_status": None,
        "report": None,
        "outcome": None,
        "warranty_until": None,
    }

    await api.reach(case_id, "awaiting_shipment")
    shipped = await api.request(
        "POST",
        f"/v1/cases/{case_id}/customer-actions",
        token,
        json={"action": "provide_tracking", "carrier": "Black Cat", "tracking_number": "BC-R-1"},
    )
    assert shipped.status_code == 200, shipped.text
    await api.event(case_id, "carrier.picked_up")
    await api.reach(case_id, "in_transit")
    await api.event(case_id, "warehouse.received")
    await api.reach(case_id, "inspecting")

    diagnosed = await api.request(
        "POST",
        f"/v1/cases/{case_id}/actions",
        "agent",
        json={
            "action": "record_diagnosis",
            "repairable": True,
            "cost": "450.00",
            "parts": ["Hinge"],
            "notes": "Cracked hinge.",
        },
    )
    assert diagnosed.status_code == 200, diagnosed.text
    quoted = diagnosed.json()
    assert quoted["status"] == "awaiting_customer"
    assert quoted["repair"]["quote_status"] == "sent"
    assert quoted["repair"]["diagnosis"]["cost"] == "450.00"
    assert [d["name"] for d in quoted["deadlines"]] == ["quote_response"]
    # The shop holds the item now: the customer can't cancel, only answer the quote.
    refused = await api.request(
        "POST", f"/v1/cases/{case_id}/customer-actions", token, json={"action": "cancel"}
    )
    assert refused.status_code == 409, refused.text

    accepted = await api.request(
        "POST", f"/v1/cases/{case_id}/customer-actions", token, json={"action": "accept"}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "repairing"
    await api.event(
        case_id, "repair.completed", parts_replaced=["Hinge"], work_done="New hinge fitted."
    )
    await api.event(case_id, "replacement.shipped", tracking_number="TRK-R-1")
    await api.reach(case_id, "replacement_shipped")
    await api.event(case_id, "carrier.delivered")
    done = await api.reach(case_id, "resolved")
    repair = done["repair"]
    assert repair["outcome"] == "repaired" and repair["quote_status"] == "accepted"
    assert repair["report"] == {
        "parts_replaced": ["Hinge"],
        "work_done": "New hinge fitted.",
        "qc_passed": True,
    }
    assert repair["warranty_until"] is not None
    assert done["refund"] is None
