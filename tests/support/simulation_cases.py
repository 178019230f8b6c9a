"""A small history with known simulator answers, written through the production paths.

Each case is decided as the API decides an open (`api.cases.decide`: the default policy and
the customer's cases of the 90 days before, counted in the database), written as the API
writes it (`store.service.insert_opened_case`), then moved by the worker's projections
(`tests.support.report_cases.Story`). tests/api/test_policy_simulator.py works out by hand
what each candidate policy changes.

In the month from `start` (all TWD, the default policy: 7-day window, 15 for a defect, 10%
restocking fee, 3000 auto-approve limit, 200 returnless limit, high risk at 3 prior cases):

- A: return, changed mind, delivered 5 days before, a 1000 shirt (apparel), unopened: auto,
  fast refund; refunded 1000 (as decided).
- B: return, size, delivered 2 days before, an 800 bra (underwear), opened: manual, 80 fee,
  fast refund; refunded 720 (as decided).
- C: return, changed mind, delivered 1 day before, a 4000 TV (electronics): manual (above
  3000), fast refund; still awaiting review.
- D: exchange, size, delivered 6 days before, a 3500 jacket (apparel) for the same: manual;
  exchanged (as decided, nothing refunded).
- E: return, changed mind, delivered 20 days before, a 500 mug (kitchen): rejected at open.
- F: return, defective with a photo, delivered 10 days before, a 150 lamp (home): returnless,
  auto; refunded 150 (as decided, the item kept).
- G: complaint about a 1200 kettle (kitchen): manual, still investigating.
- P4 and I: returns of 100 socks (apparel) by one customer who opened P1, P2 and P3 before
  the month: P4 (day 5) counts P1, P2, P3; I (day 20) counts P2, P3, P4 (P1 is 100 days
  before it): both high risk, manual, no fast refund; both still awaiting review.
- K: a complaint's child return (a 300 vase, home): left out of the simulation.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from api.cases import decide
from domain.models import CASE_ID_PREFIX, CaseRequest, CaseType, Priority
from domain.opening import initial_view
from domain.policy import Policy
from store import service
from store.db import session_scope
from tests.support.factory import request_body
from tests.support.report_cases import Story

DAY = timedelta(days=1)


def write_case(
    engine: Engine,
    *,
    opened: datetime,
    delivered_days: int,
    sku: str,
    category: str,
    price: str,
    type: str = "return",
    reason: str | None = "changed_mind",
    opened_item: bool = False,
    customer_id: str | None = None,
    parent_case_id: str | None = None,
    policy: Policy | None = None,
    **overrides: Any,
) -> Story:
    """A case decided under `policy` (the default one unless given) and written as opened."""
    body = request_body(
        now=opened,
        type=type,
        reason=reason,
        customer_id=customer_id or f"C-{secrets.token_hex(4)}",
        order={"delivered_at": (opened - delivered_days * DAY).isoformat()},
        items=[
            {
                "sku": sku,
                "name": sku.title(),
                "category": category,
                "unit_price": price,
                "quantity": 1,
                "opened": opened_item,
                "warranty_months": 0,
            },
        ],
        **overrides,
    )
    request = CaseRequest.model_validate(body)
    case_id = f"{CASE_ID_PREFIX[CaseType(type)]}-{secrets.token_hex(4).upper()}"
    with session_scope(engine) as session:
        decision = decide(session, request=request, policy=policy or Policy(), now=opened)
        view = initial_view(
            case_id=case_id,
            request=request,
            decision=decision,
            queue="customer_service",
            priority=Priority.NORMAL,
            status_url=f"http://localhost/status/{case_id}",
            opened_at=opened,
            parent_case_id=parent_case_id,
        )
        service.insert_opened_case(session, view=view, token=secrets.token_urlsafe(16))
    return Story(engine, case_id, opened)


def _refunded(story: Story, amount: str) -> None:
    refund = {"amount": amount, "currency": "TWD", "status": "succeeded", "refund_id": "re_1"}
    story.step(DAY, status="resolved", refund=refund, resolved_at=(story.opened + DAY).isoformat())


def seed(engine: Engine, *, start: datetime) -> dict[str, str]:
    """The history above; answers the cases' IDs by letter."""
    ids: dict[str, str] = {}

    def at(days: int) -> datetime:
        return start + days * DAY + 10 * timedelta(hours=1)

    risky = f"C-RISK-{secrets.token_hex(3)}"
    for name, days in (("P1", -80), ("P2", -60), ("P3", -30)):
        story = write_case(
            engine,
            opened=at(days),
            delivered_days=2,
            sku="SOCKS",
            category="apparel",
            price="100.00",
            customer_id=risky,
        )
        ids[name] = story.case_id

    a = write_case(
        engine, opened=at(1), delivered_days=5, sku="SHIRT", category="apparel", price="1000.00"
    )
    _refunded(a, "1000.00")
    ids["A"] = a.case_id

    b = write_case(
        engine,
        opened=at(2),
        delivered_days=2,
        sku="BRA",
        category="underwear",
        price="800.00",
        reason="size_fit",
        opened_item=True,
    )
    b.step(timedelta(hours=1), status="awaiting_review")
    _refunded(b, "720.00")
    ids["B"] = b.case_id

    c = write_case(
        engine, opened=at(3), delivered_days=1, sku="TV", category="electronics", price="4000.00"
    )
    c.step(timedelta(minutes=1), status="awaiting_review")
    ids["C"] = c.case_id

    d = write_case(
        engine,
        opened=at(4),
        delivered_days=6,
        sku="JACKET",
        category="apparel",
        price="3500.00",
        type="exchange",
        reason="size_fit",
        exchange_for=[{"sku": "JACKET", "quantity": 1, "unit_price": "3500.00"}],
    )
    d.step(5 * DAY, status="resolved", resolved_at=(d.opened + 5 * DAY).isoformat())
    ids["D"] = d.case_id

    p4 = write_case(
        engine,
        opened=at(5),
        delivered_days=2,
        sku="SOCKS",
        category="apparel",
        price="100.00",
        customer_id=risky,
    )
    p4.step(timedelta(minutes=1), status="awaiting_review")
    ids["P4"] = p4.case_id

    e = write_case(
        engine, opened=at(6), delivered_days=20, sku="MUG", category="kitchen", price="500.00"
    )
    e.step(timedelta(minutes=1), status="rejected")
    ids["E"] = e.case_id

    photo = ["https://img.example/lamp.jpg"]
    f = write_case(
        engine,
        opened=at(7),
        delivered_days=10,
        sku="LAMP",
        category="home",
        price="150.00",
        reason="defective",
        evidence=photo,
    )
    _refunded(f, "150.00")
    ids["F"] = f.case_id

    g = write_case(
        engine,
        opened=at(8),
        delivered_days=3,
        sku="KETTLE",
        category="kitchen",
        price="1200.00",
        type="complaint",
        reason=None,
        complaint={"category": "product_quality"},
    )
    ids["G"] = g.case_id

    k = write_case(
        engine,
        opened=at(9),
        delivered_days=3,
        sku="VASE",
        category="home",
        price="300.00",
        parent_case_id=g.case_id,
    )
    ids["K"] = k.case_id

    i = write_case(
        engine,
        opened=at(20),
        delivered_days=2,
        sku="SOCKS",
        category="apparel",
        price="100.00",
        customer_id=risky,
    )
    i.step(timedelta(minutes=1), status="awaiting_review")
    ids["I"] = i.case_id
    return ids
