"""Opening a case: the answer, idempotency, and refusing an open duplicate (DESIGN 6)."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from typing import Any

from tests.api.conftest import Api, assert_problem, token_of
from tests.support.factory import request_body

CASE_ID = re.compile(r"^R-[0-9ABCDEFGHJKMNPQRSTVWXYZ]{8}$")


def _body(**overrides: Any) -> dict[str, Any]:
    return request_body(now=datetime.now(UTC), **overrides)


async def test_open_a_return(api: Api) -> None:
    body = _body()
    response = await api.request("POST", "/v1/cases", "storefront", json=body)
    assert response.status_code == 201, response.text
    case = response.json()

    assert CASE_ID.match(case["id"]), case["id"]
    assert case["type"] == "return"
    assert case["status_url"].startswith(f"{api.url}/status/")
    assert len(token_of(case)) >= 24
    assert case["order"]["id"] == body["order"]["id"]
    assert case["customer"]["id"] == body["customer"]["id"]
    assert [i["sku"] for i in case["items"]] == ["TEE-M-BLK"]

    decision = case["decision"]
    assert decision["eligible"] is True
    assert decision["review"] == "auto"
    assert decision["shipping_payer"] == "customer"
    assert decision["refund_estimate"] == {"amount": "990.00", "currency": "TWD"}
    rules = {rule["id"]: rule["message"] for rule in decision["rules"]}
    assert {"in_window", "customer_pays_shipping", "auto_approve"} <= set(rules)
    assert "3 days ago" in rules["in_window"]
    # The answer is the case as the API wrote it: open, before the workflow's first step.
    assert case["status"] == "open"
    assert case["timeline"] == []

    # The same case, read back right away from its record.
    again = await api.case(case["id"])
    assert again["id"] == case["id"] and again["decision"] == decision
    # The worker's first write records the opening on the same row.
    moved = await api.reach(case["id"], "awaiting_shipment")
    assert [e["kind"] for e in moved["timeline"]][:1] == ["opened"]


async def test_policy_dry_run_matches_the_decision_at_open(api: Api) -> None:
    body = _body(
        items=[{"sku": "MUG", "category": "kitchen", "unit_price": "450.00", "opened": True}]
    )
    dry = await api.request("POST", "/v1/policy/evaluate", "storefront", json=body)
    assert dry.status_code == 200, dry.text
    decision = dry.json()
    assert decision["review"] == "manual"
    assert decision["restocking_fee"] == {"amount": "45.00", "currency": "TWD"}
    assert {r["id"] for r in decision["rules"]} >= {"restocking_fee", "manual_review"}
    # A dry run opens nothing.
    listed = await api.request(
        "GET", "/v1/cases", "agent", params={"order_id": body["order"]["id"]}
    )
    assert listed.json()["items"] == []

    opened = await api.request("POST", "/v1/cases", "agent", json=body)
    assert opened.status_code == 201, opened.text
    assert opened.json()["decision"] == decision


async def test_ineligible_return_is_rejected_with_the_rule_and_alternative(api: Api) -> None:
    now = datetime.now(UTC)
    body = _body(
        reason="defective",
        evidence=["https://shop.example/photo.jpg"],
        order={"delivered_at": now.replace(year=now.year - 1).isoformat()},
        items=[{"sku": "KETTLE", "unit_price": "1200.00", "warranty_months": 24}],
    )
    response = await api.request("POST", "/v1/cases", "storefront", json=body)
    assert response.status_code == 201, response.text
    case = response.json()
    assert case["decision"]["eligible"] is False
    assert case["decision"]["alternatives"] == ["repair"]
    assert {"outside_return_window", "warranty_repair_suggested"} <= {
        r["id"] for r in case["decision"]["rules"]
    }
    rejected = await api.reach(case["id"], "rejected")
    assert rejected["deadlines"] == []


async def test_idempotency_key_replays_the_same_case(api: Api) -> None:
    key = f"idem-{secrets.token_hex(8)}"
    body = _body()
    first = await api.request(
        "POST", "/v1/cases", "storefront", json=body, headers={"Idempotency-Key": key}
    )
    assert first.status_code == 201, first.text
    case_id = first.json()["id"]

    for _ in range(2):
        again = await api.request(
            "POST", "/v1/cases", "storefront", json=body, headers={"Idempotency-Key": key}
        )
        assert again.status_code == 200, again.text
        assert again.json()["id"] == case_id
        assert again.json()["status_url"] == first.json()["status_url"]

    other = {**body, "description": "Actually it is too big"}
    reused = await api.request(
        "POST", "/v1/cases", "storefront", json=other, headers={"Idempotency-Key": key}
    )
    problem = assert_problem(reused, 422, type_suffix="idempotency-key-reused")
    assert case_id in problem["detail"]

    await api.reach(case_id, "awaiting_shipment", recorded=True)
    listed = await api.request(
        "GET", "/v1/cases", "agent", params={"order_id": body["order"]["id"]}
    )
    assert [c["id"] for c in listed.json()["items"]] == [case_id]


async def test_open_duplicate_is_409_naming_the_case(api: Api) -> None:
    body = _body()
    first = await api.request("POST", "/v1/cases", "storefront", json=body)
    assert first.status_code == 201, first.text
    case = first.json()

    # Sent straight after the first answer: the storefront's double-click.
    again = {**body, "description": "Sent twice"}
    duplicate = await api.request("POST", "/v1/cases", "storefront", json=again)
    problem = assert_problem(duplicate, 409, type_suffix="duplicate-case")
    assert problem["case_id"] == case["id"]
    assert case["id"] in problem["detail"]

    # Another item of the same order is a case of its own.
    other_item = {**body, "items": [{**body["items"][0], "sku": "TEE-L-BLK"}]}
    separate = await api.request("POST", "/v1/cases", "storefront", json=other_item)
    assert separate.status_code == 201, separate.text
    assert separate.json()["id"] != case["id"]

    # Once the first case has ended, the item can be returned again.
    await api.reach(case["id"], "awaiting_shipment", recorded=True)
    cancelled = await api.request(
        "POST",
        f"/v1/cases/{case['id']}/customer-actions",
        token_of(case),
        json={"action": "cancel"},
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    await api.reach(case["id"], "cancelled", recorded=True)
    reopened = await api.request("POST", "/v1/cases", "storefront", json=again)
    assert reopened.status_code == 201, reopened.text
    assert reopened.json()["id"] not in (case["id"], separate.json()["id"])
