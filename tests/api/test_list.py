"""Listing cases: every filter, and walking pages by cursor (DESIGN 6)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.api.conftest import Api
from tests.conftest import OPS_EMAIL, until


@dataclass(frozen=True)
class Customer:
    """One customer's three cases, each in a different state."""

    customer_id: str
    waiting: dict[str, Any]  # awaiting the customer's shipment
    review: dict[str, Any]  # awaiting an agent (opened item)
    breached: dict[str, Any]  # seller-booked pickup never collected: SLA breached


async def _listed(api: Api, **params: Any) -> list[dict[str, Any]]:
    response = await api.request("GET", "/v1/cases", "operator", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _overdue(case: dict[str, Any] | None) -> bool:
    """Breached, and still waiting on the deadline it missed (as its record shows it)."""
    if not case or not case["sla_breached"]:
        return False
    now = datetime.now(UTC)
    return any(datetime.fromisoformat(d["due_at"]) < now for d in case["deadlines"])


@pytest.fixture(scope="session")
async def customer(api: Api) -> Customer:
    customer_id = f"C-list-{secrets.token_hex(4)}"
    waiting = await api.open(customer_id=customer_id)
    review = await api.open(
        customer_id=customer_id,
        items=[{"sku": "MUG", "category": "kitchen", "unit_price": "450.00", "opened": True}],
    )
    # Seller's fault with a photo, above the returnless limit: the shop books a pickup,
    # and under the test policy (carrier_pickup 1s) nobody collecting it breaches the SLA.
    breached = await api.open(
        customer_id=customer_id,
        reason="defective",
        evidence=["https://shop.example/crack.jpg"],
        items=[{"sku": "LAMP", "category": "home", "unit_price": "1500.00"}],
    )
    await api.reach(waiting["id"], "awaiting_shipment", recorded=True)
    await api.reach(review["id"], "awaiting_review", recorded=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        rows = {c["id"]: c for c in await _listed(api, customer_id=customer_id)}
        if _overdue(rows.get(breached["id"])):
            break
        assert loop.time() < deadline, (
            f"{breached['id']} never breached: {rows.get(breached['id'])}"
        )
        await asyncio.sleep(0.1)
    return Customer(customer_id, waiting, review, breached)


def _ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


async def test_filters(api: Api, customer: Customer) -> None:
    mine = {"customer_id": customer.customer_id}
    everyone = {customer.waiting["id"], customer.review["id"], customer.breached["id"]}

    assert _ids(await _listed(api, **mine)) == everyone
    assert _ids(await _listed(api, type="return", **mine)) == everyone
    assert await _listed(api, type="exchange", **mine) == []

    assert _ids(await _listed(api, status="awaiting_review", **mine)) == {customer.review["id"]}
    assert _ids(await _listed(api, status="awaiting_shipment", **mine)) == {
        customer.waiting["id"],
        customer.breached["id"],
    }
    assert await _listed(api, status="closed", **mine) == []

    by_order = await _listed(api, order_id=customer.review["order"]["id"])
    assert _ids(by_order) == {customer.review["id"]}
    assert by_order[0]["customer"]["id"] == customer.customer_id

    assert _ids(await _listed(api, queue="customer_service", **mine)) == everyone
    assert await _listed(api, queue="logistics", **mine) == []

    # Overdue: the case whose deadline passed and escalated; the others are on time.
    assert _ids(await _listed(api, overdue="true", **mine)) == {customer.breached["id"]}
    assert _ids(await _listed(api, overdue="false", **mine)) == {
        customer.waiting["id"],
        customer.review["id"],
    }
    overdue = await _listed(api, overdue="true")
    assert customer.breached["id"] in _ids(overdue)
    now = datetime.now(UTC)
    assert all(
        any(datetime.fromisoformat(d["due_at"]) < now for d in c["deadlines"]) for c in overdue
    )

    # Filters combine.
    assert _ids(
        await _listed(
            api, status="awaiting_shipment", overdue="true", queue="customer_service", **mine
        )
    ) == {customer.breached["id"]}


async def test_breach_is_real(api: Api, customer: Customer) -> None:
    case = await api.case(customer.breached["id"])
    assert case["sla_breached"] is True
    assert case["priority"] == "high"
    assert any(e["kind"] == "escalated" for e in case["timeline"])
    # The pickup was booked, then rebooked once, before escalating.
    assert len(api.peers.pickups_for(case["id"])) == 2
    await until(lambda: any(case["id"] in str(m["Subject"]) for m in api.mail.to(OPS_EMAIL)))
    # The outbox posts webhooks after the projection commits: wait for it, don't race it.
    await until(
        lambda: "case.escalated" in [e["type"] for e in api.peers.webhook_events(case["id"])]
    )


async def test_cursor_pagination_walks_every_case_once(api: Api, customer: Customer) -> None:
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"customer_id": customer.customer_id, "limit": 1}
        if cursor:
            params["cursor"] = cursor
        response = await api.request("GET", "/v1/cases", "agent", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["items"]) <= 1
        seen += [c["id"] for c in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "pagination does not end"
    assert len(seen) == len(set(seen)) == 3
    assert set(seen) == {customer.waiting["id"], customer.review["id"], customer.breached["id"]}
    # Newest first: the breached case was opened last.
    assert seen[0] == customer.breached["id"]
    assert seen[-1] == customer.waiting["id"]


async def test_pages_of_two_over_every_case(api: Api, customer: Customer) -> None:
    everything = _ids(await _listed(api, limit=200))
    walked: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.request("GET", "/v1/cases", "operator", params=params)).json()
        walked += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(walked) == len(set(walked))
    # Cases opened meanwhile by other tests can only add to what a walk sees.
    assert everything <= set(walked)


async def test_filter_by_assignee(api: Api) -> None:
    agent = f"agent-{secrets.token_hex(4)}"
    mine = await api.open()
    other = await api.open()
    await api.reach(mine["id"], "awaiting_shipment", recorded=True)
    assigned = await api.request(
        "POST",
        f"/v1/cases/{mine['id']}/actions",
        "agent",
        json={"action": "assign", "agent": agent},
    )
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee"] == agent
    # The update answers once the worker has recorded it: the list shows it at once.
    assert [c["id"] for c in await _listed(api, assignee=agent)] == [mine["id"]]
    assert other["id"] not in {c["id"] for c in await _listed(api, assignee=agent)}
