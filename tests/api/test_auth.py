"""Every route for every caller (DESIGN 6): who gets in, who gets 401, who gets 403."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlmodel import Session

from domain.names import AgentRole
from store import accounts
from tests.api.conftest import Api, assert_problem, token_of
from tests.support.factory import request_body

ROLES = ("storefront", "agent", "integration", "operator")
# `agent_account`: an agent's personal API token (`aftersales agents token`), let in wherever
# the agent role is.
CALLERS = (*ROLES, "agent_account", "customer", "other_customer", "no_key", "wrong_key")
EVERYONE = frozenset(CALLERS)


@dataclass(frozen=True)
class Targets:
    """The case the routes act on, with its customer's token, and another case's token."""

    case_id: str
    token: str
    other_token: str
    agent_token: str


@pytest.fixture(scope="session")
async def targets(api: Api) -> Targets:
    mine = await api.open()
    other = await api.open()
    # A token opens its case once the case's record exists; the wait settles that.
    await api.reach(mine["id"], "awaiting_shipment", recorded=True)
    await api.reach(other["id"], "awaiting_shipment", recorded=True)
    with Session(api.engine) as session:
        email = f"matrix-{secrets.token_hex(4)}@shop.example"
        accounts.add_agent(
            session, email=email, name="Matrix", role=AgentRole.AGENT,
            password="a long enough password", queues=[], locale="en",
        )  # fmt: skip
        agent_token = accounts.add_token(session, email=email, name="matrix")
        session.commit()
    return Targets(mine["id"], token_of(mine), token_of(other), agent_token)


def _case_body() -> dict[str, Any]:
    return request_body(now=datetime.now(UTC))


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    allowed: frozenset[str]
    success: int
    body: Callable[[], Any] | None = None
    check: Callable[[Any, Targets], None] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def _decision(answer: Any, _: Targets) -> None:
    assert answer["eligible"] is True and answer["rules"]


def _opened(answer: Any, _: Targets) -> None:
    assert answer["id"].startswith("R-") and answer["status_url"]


def _listed(answer: Any, _: Targets) -> None:
    assert isinstance(answer["items"], list) and "next_cursor" in answer


def _the_case(answer: Any, targets: Targets) -> None:
    assert answer["id"] == targets.case_id


def _noted(answer: Any, targets: Targets) -> None:
    assert answer["id"] == targets.case_id
    assert any(e["kind"] == "note" and e["message"] == "matrix" for e in answer["timeline"])


def _accepted(answer: Any, _: Targets) -> None:
    assert answer["accepted"] is True


def _tracked(answer: Any, targets: Targets) -> None:
    assert answer["id"] == targets.case_id
    assert any(s["tracking_number"] == "BC-MATRIX-1" for s in answer["shipments"])


def _health(answer: Any, _: Targets) -> None:
    assert answer["status"] in ("ok", "ready")


def _summary(answer: Any, _: Targets) -> None:
    assert isinstance(answer["cases"], int) and answer["period"]["from"]


def _simulated(answer: Any, _: Targets) -> None:
    assert isinstance(answer["cases"], int) and answer["overall"]["key"] == "all"


def _csv(answer: Any, _: Targets) -> None:
    assert answer.splitlines()[0] == "timer,met,breached,met_pct"


ROUTES = (
    Route(
        "POST",
        "/v1/policy/evaluate",
        frozenset({"storefront", "agent"}),
        200,
        _case_body,
        _decision,
    ),
    # The simulator reads the whole period's history: the last day's is enough here.
    Route(
        "POST",
        "/v1/policy/simulate",
        frozenset({"operator"}),
        200,
        lambda: {"policy": {"returns": {"window_days": 3}}, "since": "1d"},
        _simulated,
    ),
    Route("POST", "/v1/cases", frozenset({"storefront", "agent"}), 201, _case_body, _opened),
    Route("GET", "/v1/cases", frozenset({"agent", "operator"}), 200, None, _listed),
    # DESIGN 6: a customer token opens its own case.
    Route(
        "GET",
        "/v1/cases/{case_id}",
        frozenset({"storefront", "agent", "operator", "customer"}),
        200,
        None,
        _the_case,
    ),
    Route(
        "POST",
        "/v1/cases/{case_id}/actions",
        frozenset({"agent"}),
        200,
        lambda: {"action": "note", "message": "matrix"},
        _noted,
    ),
    Route(
        "POST",
        "/v1/cases/{case_id}/events",
        frozenset({"integration"}),
        202,
        # An event a return never waits for: accepted, recorded, and it changes nothing.
        lambda: {
            "event_id": f"ev-{secrets.token_hex(6)}",
            "type": "repair.completed",
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": {},
        },
        _accepted,
    ),
    Route(
        "POST",
        "/v1/cases/{case_id}/customer-actions",
        frozenset({"customer"}),
        200,
        lambda: {
            "action": "provide_tracking",
            "carrier": "Black Cat",
            "tracking_number": "BC-MATRIX-1",
        },
        _tracked,
    ),
    Route("GET", "/v1/reports/summary", frozenset({"operator", "agent"}), 200, None, _summary),
    Route(
        "GET",
        "/v1/reports/summary.csv?table=sla",
        frozenset({"operator", "agent"}),
        200,
        None,
        _csv,
    ),
    Route("GET", "/healthz", EVERYONE, 200, None, _health),
    Route("GET", "/readyz", EVERYONE, 200, None, _health),
    Route("GET", "/metrics", EVERYONE, 200),
)


def _credential(caller: str, targets: Targets) -> str | None:
    if caller == "customer":
        return targets.token
    if caller == "other_customer":
        return targets.other_token
    if caller == "agent_account":
        return targets.agent_token
    if caller == "no_key":
        return None
    if caller == "wrong_key":
        return "not-a-key-" + secrets.token_hex(8)
    return caller


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES, ids=str)
async def test_route_admits_only_its_roles(
    api: Api, targets: Targets, route: Route, caller: str
) -> None:
    path = route.path.format(case_id=targets.case_id)
    kwargs: dict[str, Any] = {}
    if route.body is not None:
        kwargs["json"] = route.body()
    response = await api.request(route.method, path, _credential(caller, targets), **kwargs)
    allowed = route.allowed | ({"agent_account"} if "agent" in route.allowed else set())

    if caller in allowed:
        assert response.status_code == route.success, response.text
        if route.check is not None:
            csv = response.headers["content-type"].startswith("text/csv")
            route.check(response.text if csv else response.json(), targets)
        else:
            assert "text/plain" in response.headers["content-type"]
            assert "python_info" in response.text or "# HELP" in response.text
    elif caller in ("no_key", "wrong_key"):
        assert_problem(response, 401, type_suffix="unauthorized")
        assert response.headers.get("www-authenticate") == "Bearer"
    else:
        assert_problem(response, 403, type_suffix="forbidden")


async def test_token_of_a_case_is_not_an_api_key(api: Api, targets: Targets) -> None:
    # The token is a bearer secret for its case, not a role: listing and opening stay shut.
    for method, path in (("GET", "/v1/cases"), ("POST", "/v1/policy/evaluate")):
        kwargs = {"json": _case_body()} if method == "POST" else {}
        response = await api.request(method, path, targets.token, **kwargs)
        assert_problem(response, 403)


async def test_malformed_authorization_header_is_401(api: Api) -> None:
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "agent-test-key", "Bearer " + "x" * 5000):
        response = await api.http.get("/v1/cases", headers={"Authorization": header})
        assert_problem(response, 401)
