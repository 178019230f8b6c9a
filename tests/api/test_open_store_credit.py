"""Choosing store credit at open (issue 11): the decision says so, and a case type that can't
take it is refused naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.api.conftest import Api, assert_problem
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
