"""How the item comes back is the policy's and the customer's choice (issue 11): a way the
shop's policy doesn't offer, or that doesn't fit who pays, is a 422 naming the field."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.api.conftest import Api, assert_problem
from tests.support.factory import request_body


async def test_a_way_back_the_policy_does_not_offer_is_a_422_naming_the_field(api: Api) -> None:
    now = datetime.now(UTC)
    # The API's policy offers the default ways only: pickup and ship, no drop-off.
    for path in ("/v1/cases", "/v1/policy/evaluate"):
        body = request_body(now=now, return_method="dropoff", dropoff_chain="7-ELEVEN")
        response = await api.request("POST", path, "storefront", json=body)
        problem = assert_problem(response, 422, field="return_method")
        [error] = [e for e in problem["errors"] if e["field"] == "return_method"]
        assert error["message"] == "dropoff is not offered; choose pickup, ship"

    # Offered, but the customer pays for a size that doesn't fit: no pickup at the shop's cost.
    body = request_body(now=now, return_method="pickup", dropoff_chain="7-ELEVEN")
    response = await api.request("POST", "/v1/cases", "storefront", json=body)
    problem = assert_problem(response, 422, field="return_method")
    assert {e["field"]: e["message"] for e in problem["errors"]} == {
        "return_method": "pickup doesn't fit this reason (you pay return shipping); choose ship",
        "dropoff_chain": "only a dropoff return_method names a chain",
    }

    # A way no policy knows is the schema's own 422; other case types choose nothing.
    body = request_body(now=now, return_method="drone")
    assert_problem(
        await api.request("POST", "/v1/cases", "storefront", json=body), 422, field="return_method"
    )
    body = request_body(now=now, type="repair", reason="defective", return_method="ship")
    assert_problem(
        await api.request("POST", "/v1/cases", "storefront", json=body), 422, field="return_method"
    )

    # The default way needs no field: the dry run names it in the decision.
    response = await api.request(
        "POST",
        "/v1/policy/evaluate",
        "storefront",
        json=request_body(now=now, return_method="ship"),
    )
    assert response.status_code == 200, response.text
    decision = response.json()
    assert (decision["shipping_payer"], decision["return_method"]) == ("customer", "ship")
    assert decision["dropoff_chain"] is None
