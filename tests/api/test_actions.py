"""What agents and integrations tell a case: actions, refusals, repeated events (DESIGN 6)."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from tests.api.conftest import Api, assert_problem, token_of

OPENED_MUG = [{"sku": "MUG", "category": "kitchen", "unit_price": "450.00", "opened": True}]


async def _act(api: Api, case_id: str, body: dict[str, Any]) -> Any:
    return await api.request("POST", f"/v1/cases/{case_id}/actions", "agent", json=body)


async def test_agent_approves_a_case_in_review(api: Api) -> None:
    # The shared agent key acts under its own name; the `actor` the body claims is ignored.
    case = await api.open(items=OPENED_MUG)
    assert case["decision"]["review"] == "manual"
    await api.reach(case["id"], "awaiting_review", recorded=True)

    approved = await _act(
        api, case["id"], {"action": "approve", "notes": "Looks fine", "actor": "amy"}
    )
    assert approved.status_code == 200, approved.text
    view = approved.json()
    assert view["id"] == case["id"]
    assert view["status"] == "awaiting_shipment"
    assert any(
        e["kind"] == "approved" and e["actor"] == "agent-key" and e["message"] == "Looks fine"
        for e in view["timeline"]
    )
    assert {d["name"] for d in view["deadlines"]} >= {"customer_shipment"}

    # Approved already: approving or rejecting now is refused, and nothing changes.
    for body in ({"action": "approve"}, {"action": "reject", "reason": "changed my mind"}):
        refused = await _act(api, case["id"], body)
        problem = assert_problem(refused, 409, type_suffix="action-not-allowed")
        assert body["action"] in problem["detail"]
    assert (await api.case(case["id"]))["status"] == "awaiting_shipment"

    # A record_inspection before the item arrived is refused too.
    early = await _act(api, case["id"], {"action": "record_inspection", "result": "pass"})
    assert_problem(early, 409, type_suffix="action-not-allowed")

    # Anytime actions still work.
    noted = await _act(api, case["id"], {"action": "note", "message": "Customer called"})
    assert noted.status_code == 200, noted.text
    assert noted.json()["timeline"][-1]["kind"] == "note"


async def test_agent_rejects_and_the_ended_case_takes_nothing_more(api: Api) -> None:
    case = await api.open(items=OPENED_MUG)
    await api.reach(case["id"], "awaiting_review", recorded=True)

    rejected = await _act(api, case["id"], {"action": "reject", "reason": "Used item"})
    assert rejected.status_code == 200, rejected.text
    assert rejected.json()["status"] == "rejected"
    assert rejected.json()["deadlines"] == []
    await api.reach(case["id"], "rejected", recorded=True)

    again = await _act(api, case["id"], {"action": "approve"})
    assert_problem(again, 409, type_suffix="action-not-allowed")
    late_event = await api.request(
        "POST",
        f"/v1/cases/{case['id']}/events",
        "integration",
        json={
            "event_id": "ev-late",
            "type": "carrier.picked_up",
            "occurred_at": "2026-11-20T10:00:00+08:00",
        },
    )
    assert_problem(late_event, 409)
    customer = await api.request(
        "POST",
        f"/v1/cases/{case['id']}/customer-actions",
        token_of(case),
        json={"action": "cancel"},
    )
    assert_problem(customer, 409, type_suffix="action-not-allowed")
    # The ended case still reads, from its record.
    assert (await api.case(case["id"]))["status"] == "rejected"


async def test_customer_action_the_case_cannot_take_is_409(api: Api) -> None:
    case = await api.open()
    await api.reach(case["id"], "awaiting_shipment", recorded=True)
    rating = await api.request(
        "POST",
        f"/v1/cases/{case['id']}/customer-actions",
        token_of(case),
        json={"action": "rate", "score": 5},
    )
    assert_problem(rating, 409, type_suffix="action-not-allowed")


async def test_repeated_event_id_is_accepted_and_ignored(api: Api) -> None:
    case = await api.open()
    case_id = case["id"]
    await api.reach(case_id, "awaiting_shipment", recorded=True)

    event_id = f"ev-{secrets.token_hex(6)}"
    for _ in range(3):
        await api.event(case_id, "carrier.picked_up", event_id=event_id)
    await api.reach(case_id, "in_transit")
    # Events are taken in order: once the next one shows, every repeat before it was seen.
    await api.event(case_id, "warehouse.received")
    await api.reach(case_id, "inspecting")
    # The same event_id again, even with another type, is still the event already taken.
    await api.event(case_id, "carrier.in_transit", event_id=event_id)
    await api.event(case_id, "inspection.completed", result="pass")
    view = await api.reach(case_id, "resolved")

    kinds = [e["kind"] for e in view["timeline"]]
    assert kinds.count("carrier.picked_up") == 1, kinds
    assert "carrier.in_transit" not in kinds
    assert kinds.count("warehouse.received") == 1
    assert len(api.peers.refunds_for(case_id)) == 1


async def test_updated_at_is_the_time_of_the_latest_timeline_entry(api: Api) -> None:
    # A projection leaves `updated_at` out of its changes when it is the time of its last new
    # entry; the store sets it from that entry, so the record moves with every entry.
    case = await api.open(items=OPENED_MUG)
    await api.reach(case["id"], "awaiting_review", recorded=True)
    reviewed = await api.case(case["id"])
    updated = _at(reviewed["updated_at"])
    assert updated > _at(case["updated_at"])
    assert updated == max(_at(e["at"]) for e in reviewed["timeline"])

    noted = await _act(api, case["id"], {"action": "note", "message": "Customer called"})
    assert noted.status_code == 200, noted.text
    stored = await api.case(case["id"])
    note = stored["timeline"][-1]
    assert note["kind"] == "note"
    assert _at(stored["updated_at"]) == _at(note["at"]) > updated


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
