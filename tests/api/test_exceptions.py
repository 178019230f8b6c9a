"""Exceptions and changed terms on the API: supervisors only; a reopened case holds its items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.names import AgentRole
from tests.api.conftest import Api, assert_problem
from tests.api.test_actions import OPENED_MUG
from tests.api.test_agent_accounts import _agent
from tests.api.test_console import add_agent, form_token, sign_in
from tests.support.factory import request_body


def _late() -> dict[str, Any]:
    """A return for a change of mind, delivered 10 days ago: outside the 7-day window."""
    delivered = (datetime.now(UTC) - timedelta(days=10)).isoformat()
    return {"reason": "changed_mind", "order": {"delivered_at": delivered}}


async def _act(api: Api, case_id: str, who: str, body: dict[str, Any]) -> Any:
    return await api.request("POST", f"/v1/cases/{case_id}/actions", who, json=body)


async def test_only_a_supervisor_approves_an_exception_and_it_holds_the_items_again(
    api: Api,
) -> None:
    _, agent_token = _agent(api)
    supervisor, supervisor_token = _agent(api, AgentRole.SUPERVISOR)
    opened = await api.open(**_late())
    case = await api.reach(opened["id"], "rejected", recorded=True)
    assert case["agent_actions"] == ["approve_exception"]
    body = {"action": "approve_exception", "reason": "Delivery was late.", "actor": "eve"}
    for who in (agent_token, "agent"):  # an agent's account, and the shared agent key
        refused = await _act(api, case["id"], who, body)
        problem = assert_problem(refused, 403, type_suffix="supervisor-only")
        assert "approve an exception" in problem["title"]
    assert (await api.case(case["id"]))["status"] == "rejected"

    approved = await _act(api, case["id"], supervisor_token, body)
    assert approved.status_code == 200, approved.text
    answer = approved.json()
    assert answer["status"] == "awaiting_shipment"
    [rule, *_] = answer["decision"]["rules"]
    assert rule["id"] == "agent_exception"
    assert rule["message"] == f"Approved as an exception by {supervisor}: Delivery was late."
    [entry] = [e for e in answer["timeline"] if e["kind"] == "exception_approved"]
    assert entry["actor"] == supervisor  # the caller, never the body's "eve"

    # Reopened, the case holds its item again: a second return of it is a duplicate.
    await api.reach(case["id"], "awaiting_shipment", recorded=True)
    duplicate = request_body(now=datetime.now(UTC), order={"id": answer["order"]["id"]})
    refused = await api.request("POST", "/v1/cases", "storefront", json=duplicate)
    assert assert_problem(refused, 409, type_suffix="duplicate-case")["case_id"] == case["id"]


async def test_an_exception_is_refused_while_another_case_holds_the_item(api: Api) -> None:
    _, supervisor_token = _agent(api, AgentRole.SUPERVISOR)
    opened = await api.open(**_late())
    await api.reach(opened["id"], "rejected", recorded=True)
    # The item is free once the case is rejected: a new case (in the window this time) takes it.
    taken = await api.open(order={"id": opened["order"]["id"]})
    refused = await _act(
        api,
        opened["id"],
        supervisor_token,
        {"action": "approve_exception", "reason": "Delivery was late."},
    )
    problem = assert_problem(refused, 409, type_suffix="duplicate-case")
    assert problem["case_id"] == taken["id"]
    assert (await api.case(opened["id"]))["status"] == "rejected"


async def test_only_a_supervisor_changes_the_fee_at_approval(api: Api) -> None:
    _, agent_token = _agent(api)
    _, supervisor_token = _agent(api, AgentRole.SUPERVISOR)
    case = await api.open(items=OPENED_MUG)
    case = await api.reach(case["id"], "awaiting_review", recorded=True)
    assert Decimal(case["decision"]["restocking_fee"]["amount"]) == Decimal("45.00")
    waive = {"action": "approve", "restocking_fee": "0"}
    refused = await _act(api, case["id"], agent_token, waive)
    assert "restocking_fee" in assert_problem(refused, 403, type_suffix="supervisor-only")["title"]
    approved = await _act(api, case["id"], supervisor_token, waive)
    assert approved.status_code == 200, approved.text
    decision = approved.json()["decision"]
    assert Decimal(decision["restocking_fee"]["amount"]) == 0
    assert Decimal(decision["refund_estimate"]["amount"]) == Decimal("450.00")
    assert decision["rules"][-1]["id"] == "agent_adjustment"


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_the_console_offers_an_exception_to_supervisors_only(api: Api) -> None:
    opened = await api.open(**_late())
    await api.reach(opened["id"], "rejected", recorded=True)
    page_path = f"/console/cases/{opened['id']}"
    for role in (AgentRole.AGENT, AgentRole.SUPERVISOR):
        email = add_agent(api, role)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as browser:
            await sign_in(browser, email)
            page = await browser.get(page_path)
            assert page.status_code == 200
            offered = 'data-action="approve_exception"' in page.text
            assert offered == (role is AgentRole.SUPERVISOR)
            if role is AgentRole.AGENT:
                continue
            assert 'name="restocking_fee"' in page.text and 'name="shipping_payer"' in page.text
            posted = await browser.post(
                f"{page_path}/actions",
                data={
                    "csrf_token": form_token(page.text),
                    "action": "approve_exception",
                    "reason": "Delivery was late.",
                    "shipping_payer": "seller",
                },
            )
            assert posted.status_code == 303, posted.text
    case = await api.case(opened["id"])
    assert case["status"] != "rejected"
    assert case["decision"]["shipping_payer"] == "seller"
    assert [rule["id"] for rule in case["decision"]["rules"]] == [
        "agent_exception",
        "agent_adjustment",
    ]
    [entry] = [e for e in case["timeline"] if e["kind"] == "exception_approved"]
    assert entry["actor"] == email
