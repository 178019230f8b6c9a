"""Choosing store credit at open (issue 11): the decision says so, and a case type that can't
take it is refused naming the field."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from tests.api.conftest import Api, assert_problem, token_of
from tests.support.factory import request_body


async def test_a_return_opened_with_store_credit_and_a_refused_choice(api: Api) -> None:
    body = request_body(now=datetime.now(UTC), resolution="store_credit")
    response = await api.request("POST", "/v1/cases", "storefront", json=body)
    assert response.status_code == 201, response.text
    decision = response.json()["decision"]
    # The default policy: no bonus, issued at the first carrier scan, and no fast refund.
    assert decision["store_credit"] == {
        "amount": {"amount": "990.00", "currency": "TWD"},
        "bonus_percent": "0",
        "bonus": {"amount": "0.00", "currency": "TWD"},
        "issue_at": "first_scan",
    }
    assert "store_credit" in {r["id"] for r in decision["rules"]}
    assert decision["fast_refund"] is False

    for bad in (
        request_body(now=datetime.now(UTC), type="repair", resolution="store_credit"),
        request_body(now=datetime.now(UTC), resolution="voucher"),
    ):
        refused = await api.request("POST", "/v1/cases", "storefront", json=bad)
        assert_problem(refused, 422, field="resolution")
        dry = await api.request("POST", "/v1/policy/evaluate", "storefront", json=bad)
        assert_problem(dry, 422, field="resolution")


async def test_a_refund_offer_taken_as_store_credit_from_the_status_page(api: Api) -> None:
    case = await api.open(
        type="refund", reason="defective", evidence=["https://img.example/scratch.jpg"]
    )
    case_id, token = case["id"], token_of(case)
    await api.reach(case_id, "awaiting_review", recorded=True)
    offered = await api.request(
        "POST",
        f"/v1/cases/{case_id}/actions",
        "agent",
        json={"action": "propose", "resolution": "partial_refund", "amount": "297"},
    )
    assert offered.status_code == 200, offered.text
    await api.reach(case_id, "awaiting_customer", recorded=True)
    page = await api.request("GET", f"/status/{token}", None)
    assert 'id="form-accept-credit"' in page.text and "Take it as store credit" in page.text

    taken = await api.request(
        "POST",
        f"/status/{token}/actions",
        None,
        data={"action": "accept", "resolution": "store_credit"},
        follow_redirects=False,
    )
    assert taken.status_code == 303, taken.text
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while (credit := (await api.case(case_id))["store_credit"]) is None or credit[
        "status"
    ] != "issued":
        assert loop.time() < deadline, credit
        await asyncio.sleep(0.1)
    assert (credit["amount"], credit["bonus"], credit["kind"]) == ("297.00", "0.00", "store_credit")
    assert (await api.case(case_id))["refund"] is None
    page = await api.request("GET", f"/status/{token}", None)
    assert 'id="store-credit"' in page.text and credit["code"] in page.text
