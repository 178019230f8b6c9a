"""A tracking number belongs to one open case; a scan that matches several moves none (issue 9).

One carrier scan once paid a fast refund on every open case that carried its number: the
customer picks the number freely, and the webhook signalled every match.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from tests.api.conftest import Api, assert_problem, token_of
from tests.api.test_carrier_webhook import _body as scan_body
from tests.api.test_carrier_webhook import _post as post_scan
from tests.conftest import OPS_EMAIL, until
from tests.support.factory import request_body


def _number() -> str:
    return f"BC{secrets.token_hex(5).upper()}"


async def _awaiting_shipment(api: Api, **overrides: Any) -> dict[str, Any]:
    case = await api.open(**overrides)
    await api.reach(case["id"], "awaiting_shipment", recorded=True)
    return case


async def _provide(api: Api, case: dict[str, Any], number: str, **extra: Any) -> Any:
    return await api.request(
        "POST",
        f"/v1/cases/{case['id']}/customer-actions",
        token_of(case),
        json={
            "action": "provide_tracking",
            "carrier": "Black Cat",
            "tracking_number": number,
            **extra,
        },
    )


def _entries(case: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [entry for entry in case["timeline"] if entry["kind"] == kind]


async def test_a_number_another_open_case_holds_is_409_and_a_scan_pays_one_refund(
    api: Api,
) -> None:
    first = await _awaiting_shipment(api)
    second = await _awaiting_shipment(api)
    assert first["decision"]["fast_refund"] is True
    number = _number()

    taken = await _provide(api, first, number)
    assert taken.status_code == 200, taken.text
    refused = await _provide(api, second, number)
    problem = assert_problem(refused, 409, field="tracking_number")
    assert problem["type"].endswith("tracking-number-taken")
    # Refused before the case heard of it.
    assert not _entries(await api.case(second["id"]), "tracking_provided")

    scan = await post_scan(api, scan_body(number))
    assert scan.status_code == 202, scan.text
    await api.reach(first["id"], "in_transit")
    await until(lambda: bool(api.peers.refunds_for(first["id"])), timeout=20)
    assert api.peers.refunds_for(second["id"]) == []
    assert (await api.case(second["id"]))["status"] == "awaiting_shipment"


async def test_a_scan_matching_two_open_cases_escalates_both_and_refunds_none(api: Api) -> None:
    # Two refund-only cases on one order in transit: both carry the order's parcel number.
    number = f"OUT{secrets.token_hex(5).upper()}"
    body = request_body(now=datetime.now(UTC))
    order = {**body["order"], "delivered_at": None, "tracking_number": number}
    item = body["items"][0]
    cases = [
        await api.open(
            type="refund", reason="changed_mind", order=order, items=[{**item, "sku": sku}]
        )
        for sku in ("TEE-M-BLK", "TEE-L-BLK")
    ]
    for case in cases:
        await api.reach(case["id"], "in_transit", recorded=True)

    scan = scan_body(number, "carrier.intercepted")
    response = await post_scan(api, scan)
    assert_problem(response, 409, type_suffix="tracking-number-ambiguous")
    # The carrier got no 2xx, so it sends the same scan again: same answer, no second
    # escalation (nor a second ops mail).
    again = await post_scan(api, scan)
    assert_problem(again, 409, type_suffix="tracking-number-ambiguous")

    for case in cases:
        after = await api.case(case["id"])
        escalated = _entries(after, "escalated")
        assert [e["actor"] for e in escalated] == ["carrier-webhook"], after["timeline"]
        assert number in escalated[0]["message"]
        assert after["status"] == "in_transit"
        assert not _entries(after, "carrier.intercepted")
    for case in cases:
        await until(lambda case=case: _ops_mails(api, case["id"]) >= 1)
    await asyncio.sleep(0.5)  # a refund or a second mail, were one under way, would be here
    for case in cases:
        assert api.peers.refunds_for(case["id"]) == []
        assert _ops_mails(api, case["id"]) == 1


def _ops_mails(api: Api, case_id: str) -> int:
    return sum(1 for m in api.mail.to(OPS_EMAIL) if case_id in str(m["Subject"]))


async def test_a_refused_report_gives_the_number_back(api: Api) -> None:
    # An opened kitchen item goes to manual review: no tracking number is taken there.
    reviewing = await api.open(
        items=[{"sku": "MUG", "category": "kitchen", "unit_price": "450.00", "opened": True}]
    )
    await api.reach(reviewing["id"], "awaiting_review", recorded=True)
    number = _number()
    refused = await _provide(api, reviewing, number)
    assert_problem(refused, 409, type_suffix="action-not-allowed")

    other = await _awaiting_shipment(api)
    taken = await _provide(api, other, number)
    assert taken.status_code == 200, taken.text


async def test_a_case_that_ends_gives_its_number_back(api: Api) -> None:
    first = await _awaiting_shipment(api)
    number = _number()
    assert (await _provide(api, first, number)).status_code == 200
    cancelled = await api.request(
        "POST",
        f"/v1/cases/{first['id']}/customer-actions",
        token_of(first),
        json={"action": "cancel"},
    )
    assert cancelled.status_code == 200, cancelled.text
    await api.reach(first["id"], "cancelled", recorded=True)

    second = await _awaiting_shipment(api)
    taken = await _provide(api, second, number)
    assert taken.status_code == 200, taken.text


async def test_a_customer_action_is_recorded_as_the_customer(api: Api) -> None:
    case = await _awaiting_shipment(api)
    # The body names someone else; the token says who is acting.
    number = _number()
    shipped = await _provide(api, case, number, actor="agent-mallory")
    assert shipped.status_code == 200, shipped.text
    cancelled = await api.request(
        "POST",
        f"/v1/cases/{case['id']}/customer-actions",
        token_of(case),
        json={"action": "cancel", "actor": "agent-mallory"},
    )
    assert cancelled.status_code == 200, cancelled.text
    [entry] = _entries(cancelled.json(), "cancelled")
    assert entry["actor"] == "customer"
    recorded = await api.reach(case["id"], "cancelled", recorded=True)
    assert all(e["actor"] != "agent-mallory" for e in recorded["timeline"])
