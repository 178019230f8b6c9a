"""Complaints through the API (DESIGN 3.6): one resolved by a child return driven to completion,
and one marked malicious. The test policy brings the follow-up seconds after the resolution."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Any

from tests.api.conftest import Api, assert_problem, token_of

COMPLAINT = {"category": "product_quality", "channel": "chat", "severity": "high"}


async def _open(api: Api) -> dict[str, Any]:
    return await api.open(
        type="complaint",
        reason=None,
        description="The seam came apart after one wash.",
        complaint=COMPLAINT,
    )


async def _act(api: Api, case_id: str, **body: Any) -> dict[str, Any]:
    response = await api.request("POST", f"/v1/cases/{case_id}/actions", "agent", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _customer(api: Api, case: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = await api.request(
        "POST", f"/v1/cases/{case['id']}/customer-actions", token_of(case), json=body
    )
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _until(api: Api, case_id: str, check: Any, what: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    while True:
        case = await api.case(case_id)
        if check(case):
            return case
        assert loop.time() < end, f"{case_id} never {what}: {case}"
        await asyncio.sleep(0.05)


def _names(case: dict[str, Any]) -> set[str]:
    return {d["name"] for d in case["deadlines"]}


def _kinds(case: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in case["timeline"]]


async def test_complaint_resolved_by_a_child_return(api: Api) -> None:
    complaint = await _open(api)
    complaint_id = complaint["id"]
    assert complaint_id.startswith("C-") and complaint["type"] == "complaint"
    assert (complaint["queue"], complaint["priority"]) == ("quality", "high")
    await _until(api, complaint_id, lambda c: "first_response" in _names(c), "awaited a reply")
    await api.reach(complaint_id, "awaiting_review", recorded=True)

    await _act(api, complaint_id, action="respond", message="We're sorry; looking into it.")
    await _until(api, complaint_id, lambda c: _names(c) == {"review"}, "was answered")
    proposed = await _act(
        api, complaint_id, action="propose", resolution="return", message="We'll take it back."
    )
    assert proposed["status"] == "awaiting_customer"
    await _customer(api, complaint, action="accept")

    # The child return: its own ID and token, linked both ways.
    waiting = await _until(api, complaint_id, lambda c: c["child_case_ids"], "opened a child")
    [child_id] = waiting["child_case_ids"]
    assert child_id.startswith("R-")
    await api.reach(child_id, "awaiting_shipment", recorded=True)
    child = await api.case(child_id)
    assert child["parent_case_id"] == complaint_id and child["type"] == "return"
    assert child["status_url"] != complaint["status_url"]
    assert child["decision"]["shipping_payer"] == "seller"
    assert child["decision"]["review"] == "auto"
    child_token = token_of(child)
    assert (await api.case(child_id, child_token))["parent_case_id"] == complaint_id
    # Each token opens only its own case.
    wrong = await api.request("GET", f"/v1/cases/{child_id}", token_of(complaint))
    assert wrong.status_code in (403, 404), wrong.text

    # The shop booked the pickup, so the customer has no tracking number to report.
    tracking = await api.request(
        "POST",
        f"/v1/cases/{child_id}/customer-actions",
        child_token,
        json={"action": "provide_tracking", "carrier": "Black Cat", "tracking_number": "BC1"},
    )
    assert_problem(tracking, 409, type_suffix="action-not-allowed")
    await api.event(child_id, "carrier.picked_up")
    await api.reach(child_id, "in_transit")
    await _until(api, child_id, lambda c: "transit" in _names(c), "was in transit")
    await api.event(child_id, "warehouse.received")
    await _until(api, child_id, lambda c: "inspection" in _names(c), "was inspecting")
    await api.event(child_id, "inspection.completed", result="pass", grade="A")
    # The child closes once its outcome is delivered; the complaint follows up.
    closed_child = await api.reach(child_id, "closed")
    assert _kinds(closed_child)[-2:] == ["resolved", "closed"]

    # Exactly one refund at the payment provider: the child's.
    refunds = api.peers.refunds_for(child_id)
    assert len(refunds) == 1, refunds
    assert Decimal(str(refunds[0]["amount"])) == Decimal("990.00")
    assert api.peers.refunds_for(complaint_id) == []

    resolved = await api.reach(complaint_id, "resolved")
    assert resolved["child_case_ids"] == [child_id] and resolved["refund"] is None
    # Three seconds later (the test policy), the satisfaction check.
    checking = await _until(
        api, complaint_id, lambda c: "offer_response" in _names(c), "asked the customer"
    )
    timeline = {e["kind"]: e["at"] for e in checking["timeline"]}
    waited = datetime.fromisoformat(timeline["satisfaction_check"]) - datetime.fromisoformat(
        timeline["resolved"]
    )
    assert waited.total_seconds() >= 3
    await _customer(api, complaint, action="accept")
    await _until(api, complaint_id, lambda c: "survey" in _names(c), "sent the survey")
    rated = await _customer(api, complaint, action="rate", score=4, comment="Sorted, thanks")
    assert rated["status"] == "closed" and rated["rating"] == 4
    closed = await api.reach(complaint_id, "closed", recorded=True)
    assert closed["child_case_ids"] == [child_id]
    assert len(api.peers.refunds_for(child_id)) == 1
    assert api.peers.refunds_for(complaint_id) == []


async def test_malicious_complaint_never_pays(api: Api) -> None:
    complaint = await _open(api)
    complaint_id = complaint["id"]
    await api.reach(complaint_id, "awaiting_review", recorded=True)
    await _act(api, complaint_id, action="respond", message="Could you send the order photos?")
    await _until(api, complaint_id, lambda c: _names(c) == {"review"}, "was answered")
    await _act(api, complaint_id, action="propose", resolution="refund")

    marked = await _act(
        api, complaint_id, action="mark_malicious", notes="Photos match another account's claim."
    )
    assert marked["status"] == "closed" and marked["malicious"] is True
    assert marked["queue"] == "review_board"
    late = await api.request(
        "POST",
        f"/v1/cases/{complaint_id}/customer-actions",
        token_of(complaint),
        json={"action": "accept"},
    )
    assert_problem(late, 409)
    stored = await api.reach(complaint_id, "closed", recorded=True)
    assert stored["malicious"] is True and stored["queue"] == "review_board"
    listed = await api.request(
        "GET", "/v1/cases", "operator", params={"queue": "review_board", "type": "complaint"}
    )
    assert complaint_id in [c["id"] for c in listed.json()["items"]]
    # No payment call at all: not even a failed or refused one.
    assert api.peers.refunds_for(complaint_id) == []
    assert not [
        r
        for r in api.peers.requests
        if r.path == "/refunds"
        and isinstance(r.payload, dict)
        and r.payload.get("case_id") == complaint_id
    ]
