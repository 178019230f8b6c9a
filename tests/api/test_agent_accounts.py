"""Agent accounts on the API: personal tokens, the actor they record, and who may reassign."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from sqlmodel import Session

from domain.names import AgentRole
from store import accounts
from tests.api.conftest import Api, assert_problem
from tests.api.test_actions import OPENED_MUG

PASSWORD = "a long enough password"


def _agent(api: Api, role: AgentRole = AgentRole.AGENT) -> tuple[str, str]:
    """A new agent of this role and a personal token of theirs: (email, token)."""
    email = f"agent-{secrets.token_hex(4)}@shop.example"
    with Session(api.engine) as session:
        accounts.add_agent(
            session,
            email=email,
            name="Test Agent",
            role=role,
            password=PASSWORD,
            queues=["customer_service"],
            locale="en",
        )
        token = accounts.add_token(session, email=email, name="tests")
        session.commit()
    return email, token


async def _in_review(api: Api) -> dict[str, Any]:
    # An opened item is never auto-approved: the case waits on an agent.
    case = await api.open(items=OPENED_MUG)
    return await api.reach(case["id"], "awaiting_review", recorded=True)


async def _act(api: Api, case_id: str, who: str, body: dict[str, Any]) -> Any:
    return await api.request("POST", f"/v1/cases/{case_id}/actions", who, json=body)


async def test_an_agents_token_acts_as_that_agent_whatever_the_body_says(api: Api) -> None:
    email, token = _agent(api)
    case = await _in_review(api)
    # The case says which agent actions it takes now, as the validator will judge them.
    assert {"approve", "reject", "request_info", "note", "assign"} <= set(case["agent_actions"])
    assert "record_inspection" not in case["agent_actions"]
    noted = await _act(
        api, case["id"], token, {"action": "note", "message": "Called the customer", "actor": "eve"}
    )
    assert noted.status_code == 200, noted.text
    [entry] = [e for e in noted.json()["timeline"] if e["kind"] == "note"]
    assert entry["actor"] == email
    approved = await _act(api, case["id"], token, {"action": "approve", "actor": "eve"})
    assert approved.status_code == 200, approved.text
    assert "approve" not in approved.json()["agent_actions"]
    assert [e["actor"] for e in approved.json()["timeline"] if e["kind"] == "approved"] == [email]


async def test_a_named_role_key_acts_under_its_name(api: Api) -> None:
    case = await _in_review(api)
    key = f"helpdesk-{secrets.token_hex(4)}"
    original = api.settings.api_keys
    # The running app holds these settings: a named key added now is honoured at once.
    api.settings.api_keys = f"{original},agent@helpdesk:{key}"
    try:
        noted = await _act(api, case["id"], key, {"action": "note", "message": "From the desk"})
    finally:
        api.settings.api_keys = original
    assert noted.status_code == 200, noted.text
    assert [e["actor"] for e in noted.json()["timeline"] if e["kind"] == "note"] == ["helpdesk"]


async def test_a_disabled_agent_or_a_revoked_token_gets_401(api: Api) -> None:
    email, token = _agent(api)
    other_email, other_token = _agent(api)
    case = await _in_review(api)
    assert (await api.request("GET", f"/v1/cases/{case['id']}", token)).status_code == 200
    with Session(api.engine) as session:
        accounts.disable_agent(session, email=email)
        assert accounts.revoke_tokens(session, email=other_email) == 1
        session.commit()
    for gone in (token, other_token, "ast_" + secrets.token_urlsafe(32)):
        answer = await api.request("GET", f"/v1/cases/{case['id']}", gone)
        assert_problem(answer, 401, type_suffix="unauthorized")


@pytest.mark.parametrize("role", [AgentRole.AGENT, AgentRole.SUPERVISOR])
async def test_only_a_supervisor_reassigns_a_case_another_agent_holds(
    api: Api, role: AgentRole
) -> None:
    holder, holder_token = _agent(api)
    _, token = _agent(api, role)
    case = await _in_review(api)
    taken = await _act(api, case["id"], holder_token, {"action": "assign", "agent": holder})
    assert taken.status_code == 200, taken.text
    assert taken.json()["assignee"] == holder
    await api.reach(case["id"], "awaiting_review", recorded=True)

    moved = await _act(api, case["id"], token, {"action": "assign", "agent": "me@shop.example"})
    if role is AgentRole.SUPERVISOR:
        assert moved.status_code == 200, moved.text
        assert moved.json()["assignee"] == "me@shop.example"
    else:
        body = assert_problem(moved, 403, type_suffix="supervisor-only")
        assert holder in body["detail"]
        assert (await api.case(case["id"]))["assignee"] == holder
