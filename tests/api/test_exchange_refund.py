"""Exchanges and refund-only cases through the API, with the money counted at the peers.

Storefront opens, integrations report events, the customer acts with the case's token, an agent
acts; every refund the case owes must reach the payment peer exactly once, for the right amount,
and a case that owes none must send none (DESIGN 3.3, 3.4, 6, 7).
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.api.conftest import Api, assert_problem, token_of
from tests.conftest import until
from tests.support.factory import request_body

LARGE = "TEE-L-BLK"
NOT_SHIPPED = {"shipped_at": None, "delivered_at": None}


def _exchange_for(price: str) -> list[dict[str, Any]]:
    return [{"sku": LARGE, "quantity": 1, "unit_price": price}]


async def _act(api: Api, case_id: str, body: dict[str, Any]) -> httpx.Response:
    return await api.request("POST", f"/v1/cases/{case_id}/actions", "agent", json=body)


async def _customer(api: Api, case: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
    return await api.request(
        "POST", f"/v1/cases/{case['id']}/customer-actions", token_of(case), json=body
    )


async def _evaluate(api: Api, **overrides: Any) -> dict[str, Any]:
    body = request_body(now=datetime.now(UTC), **overrides)
    response = await api.request("POST", "/v1/policy/evaluate", "storefront", json=body)
    assert response.status_code == 200, response.text
    decision: dict[str, Any] = response.json()
    return decision


def _rule_ids(decision: dict[str, Any]) -> list[str]:
    return [rule["id"] for rule in decision["rules"]]


def _one_refund(api: Api, case: dict[str, Any], amount: str, reason: str) -> dict[str, Any]:
    """The case's only refund at the payment peer: this amount, to the order's card."""
    refunds = api.peers.refunds_for(case["id"])
    assert len(refunds) == 1, refunds
    refund = refunds[0]
    assert refund["amount"] == amount, refund
    assert refund["currency"] == "TWD"
    assert refund["order_id"] == case["order"]["id"]
    assert refund["payment_method"] == "card"
    assert refund["reason"] == reason
    return refund


def _no_refund(api: Api, view: dict[str, Any]) -> None:
    assert api.peers.refunds_for(view["id"]) == []
    assert view["refund"] is None, view["refund"]
    assert "refund_requested" not in [e["kind"] for e in view["timeline"]]


async def _webhook_types(api: Api, case_id: str, until_type: str) -> list[str]:
    """The case's webhook event types, once `until_type` has arrived."""

    def types() -> list[str]:
        return [e["type"] for e in api.peers.webhook_events(case_id)]

    await until(lambda: until_type in types())
    return types()


async def _until_deadline(api: Api, case_id: str, name: str) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + 20
    while True:
        case = await api.case(case_id)
        if any(d["name"] == name for d in case["deadlines"]):
            return case
        assert loop.time() < end, f"{case_id} never showed a {name} deadline: {case}"
        await asyncio.sleep(0.05)


async def _ship_back(api: Api, case: dict[str, Any]) -> None:
    """The customer ships the original; it arrives and passes inspection."""
    case_id = case["id"]
    await api.reach(case_id, "awaiting_shipment")
    tracking = f"BC{secrets.token_hex(5).upper()}"
    shipped = await _customer(
        api,
        case,
        {"action": "provide_tracking", "carrier": "Black Cat", "tracking_number": tracking},
    )
    assert shipped.status_code == 200, shipped.text
    await api.event(case_id, "carrier.picked_up", tracking_number=tracking)
    await api.reach(case_id, "in_transit")
    await api.event(case_id, "warehouse.received")
    await api.reach(case_id, "inspecting")
    await api.event(case_id, "inspection.completed", result="pass", grade="A", notes="As new")


async def _replacement_requested(api: Api, case: dict[str, Any]) -> dict[str, Any]:
    """The one shipment of the replacement requested at the carrier peer, to the customer."""
    case_id = case["id"]
    await until(lambda: api.peers.shipments_for(case_id) != [])
    shipments = api.peers.shipments_for(case_id)
    assert len(shipments) == 1, shipments
    shipment = shipments[0]
    assert [(i["sku"], i["quantity"]) for i in shipment["items"]] == [(LARGE, 1)], shipment
    assert shipment["address"]["city"] == case["customer"]["address"]["city"]
    return shipment


# ---- the policy dry run ---------------------------------------------------------------------


async def test_evaluate_exchange(api: Api) -> None:
    cheaper = await _evaluate(api, type="exchange", exchange_for=_exchange_for("690.00"))
    assert cheaper["eligible"] is True
    assert cheaper["refund_estimate"] == {"amount": "300.00", "currency": "TWD"}
    assert cheaper["advanced_exchange"] is False
    assert "advanced_exchange" not in _rule_ids(cheaper)
    assert cheaper["fast_refund"] is False
    assert cheaper["review"] == "auto"
    assert cheaper["shipping_payer"] == "customer"

    for price in ("990.00", "1290.00"):
        even_or_dearer = await _evaluate(api, type="exchange", exchange_for=_exchange_for(price))
        assert even_or_dearer["eligible"] is True
        assert even_or_dearer["refund_estimate"] == {"amount": "0.00", "currency": "TWD"}
        assert even_or_dearer["advanced_exchange"] is False


async def test_evaluate_refund_only(api: Api) -> None:
    unshipped = await _evaluate(api, type="refund", reason="changed_mind", order=NOT_SHIPPED)
    assert unshipped["eligible"] is True
    assert unshipped["review"] == "auto"
    assert unshipped["refund_estimate"] == {"amount": "990.00", "currency": "TWD"}
    assert {"not_delivered", "auto_approve"} <= set(_rule_ids(unshipped))

    delivered = await _evaluate(api, type="refund", reason="size_fit")
    assert delivered["eligible"] is False
    assert _rule_ids(delivered) == ["use_return"]
    assert delivered["alternatives"] == ["return"]
    assert delivered["refund_estimate"]["amount"] == "0.00"


# ---- refund only ----------------------------------------------------------------------------


async def test_refund_only_not_shipped_cancels_and_refunds_in_full(api: Api) -> None:
    case = await api.open(type="refund", reason="changed_mind", order=NOT_SHIPPED)
    case_id = case["id"]
    assert case["decision"]["eligible"] is True

    resolved = await api.reach(case_id, "resolved")
    refund = _one_refund(api, case, "990.00", "not_shipped")
    assert resolved["refund"] == {
        "amount": "990.00",
        "currency": "TWD",
        "status": "succeeded",
        "refund_id": refund["refund_id"],
    }

    # The storefront is told to cancel fulfilment (with the order) before the refund.
    types = await _webhook_types(api, case_id, "case.resolved")
    assert "case.cancel_fulfilment" in types, types
    assert types.index("case.cancel_fulfilment") < types.index("case.refund_pending")
    cancel = next(
        e for e in api.peers.webhook_events(case_id) if e["type"] == "case.cancel_fulfilment"
    )
    assert cancel["data"]["order_id"] == case["order"]["id"]
    assert api.peers.interceptions_for(case_id) == []
    await api.reach(case_id, "resolved", recorded=True)


async def test_refund_only_partial_offer_accepted(api: Api) -> None:
    case = await api.open(type="refund", reason="defective", evidence=["https://x.test/1.jpg"])
    case_id = case["id"]
    assert case["decision"]["returnless"] is False  # 990 is over the returnless limit
    assert case["decision"]["review"] == "manual"
    await api.reach(case_id, "awaiting_review")

    proposed = await _act(
        api,
        case_id,
        {"action": "propose", "resolution": "partial_refund", "amount": "297.00"},
    )
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["status"] == "awaiting_customer"
    assert "offer_response" in {d["name"] for d in proposed.json()["deadlines"]}
    assert api.peers.refunds_for(case_id) == []

    accepted = await _customer(api, case, {"action": "accept"})
    assert accepted.status_code == 200, accepted.text
    resolved = await api.reach(case_id, "resolved")
    refund = _one_refund(api, case, "297.00", "offer_accepted")
    assert resolved["refund"] == {
        "amount": "297.00",
        "currency": "TWD",
        "status": "succeeded",
        "refund_id": refund["refund_id"],
    }
    # Accepting again is refused: the offer was taken; still one refund.
    again = await _customer(api, case, {"action": "accept"})
    assert_problem(again, 409, type_suffix="action-not-allowed")
    assert len(api.peers.refunds_for(case_id)) == 1


async def test_refund_only_offer_declined_closes_without_refund(api: Api) -> None:
    case = await api.open(type="refund", reason="defective", evidence=["https://x.test/1.jpg"])
    case_id = case["id"]
    await api.reach(case_id, "awaiting_review")

    # A refund-only case offers money, nothing else: a coupon is refused and it keeps waiting.
    coupon = await _act(api, case_id, {"action": "propose", "resolution": "coupon"})
    assert_problem(coupon, 409, type_suffix="action-not-allowed")
    assert (await api.case(case_id))["status"] == "awaiting_review"

    proposed = await _act(
        api,
        case_id,
        {"action": "propose", "resolution": "partial_refund", "amount": "297.00"},
    )
    assert proposed.status_code == 200, proposed.text
    assert proposed.json()["status"] == "awaiting_customer"

    declined = await _customer(api, case, {"action": "decline"})
    assert declined.status_code == 200, declined.text
    assert declined.json()["status"] == "closed"
    closed = await api.reach(case_id, "closed", recorded=True)
    _no_refund(api, closed)
    types = await _webhook_types(api, case_id, "case.closed")
    assert "case.refund_pending" not in types


async def test_refund_only_delivered_for_a_customer_reason_is_rejected(api: Api) -> None:
    case = await api.open(type="refund", reason="size_fit")
    case_id = case["id"]
    assert case["decision"]["eligible"] is False
    assert _rule_ids(case["decision"]) == ["use_return"]
    rejected = await api.reach(case_id, "rejected", recorded=True)
    _no_refund(api, rejected)
    await _webhook_types(api, case_id, "case.rejected")


async def test_refund_only_shipped_is_intercepted_then_refunded(api: Api) -> None:
    tracking = f"OUT{secrets.token_hex(5).upper()}"
    case = await api.open(
        type="refund",
        reason="changed_mind",
        order={"delivered_at": None, "tracking_number": tracking},
    )
    case_id = case["id"]
    assert case["decision"]["eligible"] is True

    await api.reach(case_id, "in_transit")
    await until(lambda: api.peers.interceptions_for(case_id) != [])
    assert api.peers.interceptions_for(case_id) == [
        {"case_id": case_id, "tracking_number": tracking}
    ]
    assert api.peers.refunds_for(case_id) == []

    await api.event(case_id, "carrier.intercepted", tracking_number=tracking)
    resolved = await api.reach(case_id, "resolved")
    refund = _one_refund(api, case, "990.00", "intercepted")
    assert resolved["refund"]["refund_id"] == refund["refund_id"]
    assert resolved["refund"]["status"] == "succeeded"
    assert api.peers.pickups_for(case_id) == []


# ---- exchanges ------------------------------------------------------------------------------


async def test_exchange_same_price_ships_the_replacement_and_refunds_nothing(api: Api) -> None:
    case = await api.open(type="exchange", exchange_for=_exchange_for("990.00"))
    case_id = case["id"]
    assert case["decision"]["refund_estimate"]["amount"] == "0.00"
    assert case["decision"]["advanced_exchange"] is False

    await _ship_back(api, case)
    await _replacement_requested(api, case)
    # The warehouse's dispatch deadline runs from the request; the case keeps its status.
    waiting = await _until_deadline(api, case_id, "dispatch")
    assert waiting["status"] == "inspecting"
    assert "inspection_passed" in [e["kind"] for e in waiting["timeline"]]

    await api.event(case_id, "replacement.shipped", tracking_number="RP0000001")
    shipped = await api.reach(case_id, "replacement_shipped")
    outbound = [s for s in shipped["shipments"] if s["direction"] == "outbound"]
    assert [s["tracking_number"] for s in outbound] == ["RP0000001"]

    await api.event(case_id, "carrier.delivered", tracking_number="RP0000001")
    resolved = await api.reach(case_id, "resolved", recorded=True)
    _no_refund(api, resolved)
    assert "delivered" in [e["kind"] for e in resolved["timeline"]]
    types = await _webhook_types(api, case_id, "case.resolved")
    assert types.index("case.replacement_shipped") < types.index("case.resolved")
    assert len(api.peers.shipments_for(case_id)) == 1


async def test_exchange_cheaper_refunds_the_difference_once_shipped(api: Api) -> None:
    case = await api.open(type="exchange", exchange_for=_exchange_for("690.00"))
    case_id = case["id"]
    assert case["decision"]["refund_estimate"] == {"amount": "300.00", "currency": "TWD"}

    await _ship_back(api, case)
    await _replacement_requested(api, case)
    # Nothing comes back before the replacement is on its way.
    assert api.peers.refunds_for(case_id) == []
    assert (await api.case(case_id))["refund"] is None

    await api.event(case_id, "replacement.shipped", tracking_number="RP0000002")
    await api.reach(case_id, "replacement_shipped")
    await until(lambda: api.peers.refunds_for(case_id) != [])
    refund = _one_refund(api, case, "300.00", "exchange_difference")

    await api.event(case_id, "carrier.delivered", tracking_number="RP0000002")
    resolved = await api.reach(case_id, "resolved", recorded=True)
    assert resolved["refund"] == {
        "amount": "300.00",
        "currency": "TWD",
        "status": "succeeded",
        "refund_id": refund["refund_id"],
    }
    _one_refund(api, case, "300.00", "exchange_difference")


async def test_exchange_dearer_waits_for_the_difference_and_refunds_nothing(api: Api) -> None:
    case = await api.open(type="exchange", exchange_for=_exchange_for("1290.00"))
    case_id = case["id"]
    assert case["decision"]["refund_estimate"]["amount"] == "0.00"

    await api.reach(case_id, "awaiting_customer")
    # The offer's deadline is listed once the case waits on it, a moment after the status.
    await _until_deadline(api, case_id, "offer_response")
    # The customer can't talk the difference away: only the storefront's payment event moves it.
    refused = await _customer(api, case, {"action": "accept"})
    assert_problem(refused, 409, type_suffix="action-not-allowed")

    await api.event(case_id, "customer.paid_difference", amount="300.00")
    paid = await api.reach(case_id, "awaiting_shipment")
    assert "difference_paid" in [e["kind"] for e in paid["timeline"]]

    await _ship_back(api, case)
    await _replacement_requested(api, case)
    await api.event(case_id, "replacement.shipped", tracking_number="RP0000003")
    await api.reach(case_id, "replacement_shipped")
    await api.event(case_id, "carrier.delivered", tracking_number="RP0000003")
    resolved = await api.reach(case_id, "resolved", recorded=True)
    _no_refund(api, resolved)


async def test_duplicate_replacement_shipped_changes_the_status_once(api: Api) -> None:
    case = await api.open(type="exchange", exchange_for=_exchange_for("990.00"))
    case_id = case["id"]
    await _ship_back(api, case)
    await _replacement_requested(api, case)

    event_id = f"ev-{secrets.token_hex(6)}"
    for _ in range(2):  # the same event twice: both accepted, one taken
        await api.event(case_id, "replacement.shipped", event_id, tracking_number="RP0000004")
    await api.reach(case_id, "replacement_shipped")
    # A second report of the shipment under a new event_id moves nothing either.
    await api.event(case_id, "replacement.shipped", tracking_number="RP0000004")
    await api.event(case_id, "carrier.delivered", tracking_number="RP0000004")
    resolved = await api.reach(case_id, "resolved", recorded=True)

    types = await _webhook_types(api, case_id, "case.resolved")
    assert types.count("case.replacement_shipped") == 1, types
    kinds = [e["kind"] for e in resolved["timeline"]]
    assert kinds.count("replacement_shipped") == 1, kinds
    outbound = [s for s in resolved["shipments"] if s["direction"] == "outbound"]
    assert len(outbound) == 1, resolved["shipments"]
    assert len(api.peers.shipments_for(case_id)) == 1
    _no_refund(api, resolved)
