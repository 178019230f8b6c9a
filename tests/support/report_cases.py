"""A small set of cases with known report figures, written through the production paths.

Each case opens as the API writes it (`store.service.insert_opened_case`) and then moves by
the worker's projections (`store.projection.apply_projection`): the changed view fields and
the timeline entries a workflow would send, at chosen times. The figures they must give are
worked out by hand in tests/api/test_reports.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from domain.models import CASE_ID_PREFIX, CaseRequest, CaseType, NumberedEntry, Priority
from domain.names import Kind
from domain.opening import initial_view
from domain.policy import Policy
from domain.rules import evaluate
from store import projection, service
from store.db import session_scope
from tests.support.factory import request_body

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass
class Story:
    """One case, moved projection by projection."""

    engine: Engine
    case_id: str
    opened: datetime
    revision: int = 0
    log: list[str] = field(default_factory=list)

    def step(
        self,
        after: timedelta,
        *,
        entries: tuple[tuple[str, str, dict[str, Any]], ...] = (),
        deadlines: dict[str, timedelta] | None = None,
        **changes: Any,
    ) -> Story:
        """Project what changed `after` the open: fields, entries (kind, actor, data) and the
        listed deadlines (name → due, from the open)."""
        at = self.opened + after
        self.revision += 1
        fields: dict[str, Any] = {"updated_at": at.isoformat(), **changes}
        if deadlines is not None:
            fields["deadlines"] = [
                {"name": name, "due_at": (self.opened + due).isoformat()}
                for name, due in deadlines.items()
            ]
        with self.engine.begin() as conn:
            seq = 1000 + self.revision * 10
            projection.apply_projection(
                conn,
                case_id=self.case_id,
                revision=self.revision,
                token=None,
                changes=fields,
                entries=[
                    NumberedEntry(seq=seq + n, at=at, kind=kind, actor=actor, message="", data=data)
                    for n, (kind, actor, data) in enumerate(entries)
                ],
            )
        return self


def open_case(
    engine: Engine,
    *,
    opened: datetime,
    type: str,
    reason: str | None,
    queue: str,
    items: list[tuple[str, str, int]],
    currency: str = "TWD",
    payment_method: str = "card",
    returnless: bool = False,
) -> Story:
    """Write a case's opening row as the API does; items are (sku, unit price, quantity)."""
    body = request_body(
        now=opened,
        type=type,
        reason=reason,
        order={"currency": currency, "payment_method": payment_method},
        items=[
            {"sku": sku, "name": sku, "unit_price": price, "quantity": quantity}
            for sku, price, quantity in items
        ],
    )
    request = CaseRequest.model_validate(body)
    decision = evaluate(request, policy=Policy(), now=opened, prior_cases=0)
    decision = decision.model_copy(update={"returnless": returnless})
    case_id = f"{CASE_ID_PREFIX[CaseType(type)]}-{secrets.token_hex(4).upper()}"
    view = initial_view(
        case_id=case_id,
        request=request,
        decision=decision,
        queue=queue,
        priority=Priority.NORMAL,
        status_url=f"http://localhost/status/{case_id}",
        opened_at=opened,
    )
    with session_scope(engine) as session:
        service.insert_opened_case(session, view=view, token=secrets.token_urlsafe(16))
    return Story(engine, case_id, opened)


def _refund(amount: str, currency: str = "TWD") -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "status": "succeeded", "refund_id": "re_1"}


def seed(engine: Engine, *, start: datetime, queue: str, other_queue: str) -> dict[str, str]:
    """Eight cases opened in the month from `start` (one in `other_queue`), and one the month
    before; answers their IDs by letter (A-H, and I outside the period)."""
    review = "awaiting_review"
    agent, policy_actor, payment = "ann@example.com", "policy", "payment"
    ids: dict[str, str] = {}
    t0 = start + DAY

    def at(days: int) -> datetime:
        return t0 + days * DAY

    def resolved(story: Story, after: timedelta) -> str:
        return (story.opened + after).isoformat()

    # A: a return approved in 2 h, shipped in time, refunded in full on day 5, rated 5.
    a = open_case(
        engine,
        opened=at(0),
        type="return",
        reason="defective",
        queue=queue,
        items=[("SKU-A", "1000.00", 1)],
    )
    a.step(timedelta(0), status=review, deadlines={"review": DAY})
    a.step(
        2 * HOUR,
        status="awaiting_shipment",
        entries=((Kind.APPROVED, agent, {}),),
        deadlines={"customer_shipment": 8 * DAY},
    )
    a.step(3 * DAY, status="in_transit", deadlines={})
    a.step(
        5 * DAY,
        status="resolved",
        refund=_refund("1000.00"),
        resolved_at=resolved(a, 5 * DAY),
        entries=((Kind.REFUND_SUCCEEDED, payment, {}),),
    )
    a.step(6 * DAY, rating=5)
    ids["A"] = a.case_id

    # B: the review deadline passed (approved by the policy then), partly refunded, rated 2.
    b = open_case(
        engine,
        opened=at(1),
        type="return",
        reason="size_fit",
        queue=queue,
        items=[("SKU-B", "500.00", 2)],
        payment_method="line_pay",
    )
    b.step(timedelta(0), status=review, deadlines={"review": DAY})
    b.step(
        DAY, status="awaiting_shipment", entries=((Kind.APPROVED, policy_actor, {}),), deadlines={}
    )
    b.step(
        2 * DAY,
        status="resolved",
        refund=_refund("800.00"),
        rating=2,
        resolved_at=resolved(b, 2 * DAY),
        entries=((Kind.REFUND_SUCCEEDED, payment, {}),),
    )
    ids["B"] = b.case_id

    # C: returnless: approved and refunded in a minute, the item kept; rated 4.
    c = open_case(
        engine,
        opened=at(2),
        type="return",
        reason="changed_mind",
        queue=queue,
        items=[("SKU-A", "300.00", 1)],
        returnless=True,
    )
    c.step(
        60 * timedelta(seconds=1),
        status="resolved",
        refund=_refund("300.00"),
        rating=4,
        resolved_at=resolved(c, timedelta(seconds=60)),
        entries=((Kind.APPROVED, policy_actor, {}), (Kind.REFUND_SUCCEEDED, payment, {})),
    )
    ids["C"] = c.case_id

    # D: an exchange approved in 1 h; its transit deadline breached (escalated), then resolved.
    d = open_case(
        engine,
        opened=at(3),
        type="exchange",
        reason="wrong_item",
        queue=queue,
        items=[("SKU-C", "2000.00", 1)],
    )
    d.step(timedelta(0), status=review, deadlines={"review": DAY})
    d.step(
        HOUR,
        status="in_transit",
        entries=((Kind.APPROVED, agent, {}),),
        deadlines={"transit": 2 * DAY},
    )
    d.step(
        2 * DAY,
        sla_breached=True,
        priority="high",
        deadlines={"transit": 2 * DAY},
        entries=((Kind.ESCALATED, "timer", {"timer": "transit"}),),
    )
    d.step(4 * DAY, status="resolved", resolved_at=resolved(d, 4 * DAY), deadlines={})
    ids["D"] = d.case_id

    # E: a repair in the other queue, rejected by an agent in 30 minutes.
    e = open_case(
        engine,
        opened=at(4),
        type="repair",
        reason="defective",
        queue=other_queue,
        items=[("SKU-D", "5000.00", 1)],
    )
    e.step(timedelta(0), status=review, deadlines={"review": DAY})
    e.step(HOUR / 2, status="rejected", entries=((Kind.REJECTED, agent, {}),), deadlines={})
    ids["E"] = e.case_id

    # F: a refund-only case in USD by PayPal: approved and refunded within the hour; rated 5.
    f = open_case(
        engine,
        opened=at(5),
        type="refund",
        reason="missing_item",
        queue=queue,
        items=[("SKU-E", "100.00", 1)],
        currency="USD",
        payment_method="paypal",
    )
    f.step(timedelta(0), status=review, deadlines={"review": DAY})
    f.step(
        HOUR,
        status="resolved",
        refund=_refund("100.00", "USD"),
        rating=5,
        resolved_at=resolved(f, HOUR),
        deadlines={},
        entries=((Kind.APPROVED, agent, {}), (Kind.REFUND_SUCCEEDED, payment, {})),
    )
    ids["F"] = f.case_id

    # G: two items (1000 + 500), approved in 3 h, 1200 refunded: SKU-A 800, SKU-B 400; rated 3.
    g = open_case(
        engine,
        opened=at(6),
        type="return",
        reason="defective",
        queue=queue,
        items=[("SKU-A", "1000.00", 1), ("SKU-B", "500.00", 1)],
    )
    g.step(timedelta(0), status=review, deadlines={"review": DAY})
    g.step(
        3 * HOUR,
        status="awaiting_shipment",
        entries=((Kind.APPROVED, agent, {}),),
        deadlines={"customer_shipment": 7 * DAY},
    )
    g.step(2 * DAY, status="in_transit", deadlines={})
    g.step(
        4 * DAY,
        status="resolved",
        refund=_refund("1200.00"),
        rating=3,
        resolved_at=resolved(g, 4 * DAY),
        entries=((Kind.REFUND_SUCCEEDED, payment, {}),),
    )
    ids["G"] = g.case_id

    # H: cancelled by the customer during review: its review deadline counts neither way.
    h = open_case(
        engine,
        opened=at(7),
        type="return",
        reason="changed_mind",
        queue=queue,
        items=[("SKU-B", "500.00", 1)],
    )
    h.step(timedelta(0), status=review, deadlines={"review": DAY})
    h.step(2 * HOUR, status="cancelled", entries=((Kind.CANCELLED, "customer", {}),), deadlines={})
    ids["H"] = h.case_id

    # I: the month before: refunded, and counted in no figure of the month.
    i = open_case(
        engine,
        opened=start - 10 * DAY,
        type="return",
        reason="defective",
        queue=queue,
        items=[("SKU-A", "1000.00", 1)],
    )
    i.step(
        HOUR,
        status="resolved",
        refund=_refund("1000.00"),
        rating=1,
        resolved_at=resolved(i, HOUR),
        entries=((Kind.APPROVED, agent, {}),),
    )
    ids["I"] = i.case_id
    return ids


def amount(value: str) -> Decimal:
    """A decimal amount, as the figures carry it."""
    return Decimal(value)
