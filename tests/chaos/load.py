"""Load for chaos: keyed opens, and a driver playing carrier and warehouse until every case ends.

Two kinds of case, so a run has refunds, pickups and mails in flight at once:
- `refund`: a low-value defective item refunded without a return (payment, then mails);
- `pickup`: a defective return; the shop books the carrier's pickup, the driver reports the
  parcel picked up, received and inspected, and the (fast) refund goes out.
Every case ends `closed` in seconds under the chaos policy (survey one second after).

Every request is safe to repeat: opens carry an Idempotency-Key, events a fixed event_id per
case and step. So the load retries through any fault (a refused connection, a 503) until its
deadline, as a storefront or an integration would.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from tests.chaos.stack import KEYS
from tests.support.factory import request_body

KINDS = ("refund", "pickup")
FINISHED = frozenset({"closed"})
# Any answer here ends a case for good; only `closed` counts as finishing as planned.
TERMINAL = frozenset({"closed", "rejected", "cancelled", "expired"})
RETRY_PAUSE = 0.25
EVIDENCE = ["https://img.example/chaos.jpg"]


def auth(role: str) -> dict[str, str]:
    """The Authorization header of a role."""
    return {"Authorization": f"Bearer {KEYS[role]}"}


def case_body(kind: str, *, now: datetime) -> dict[str, Any]:
    """An open's body: auto-approved (evidence attached), seller fault, so no agent is needed."""
    if kind == "refund":
        item = {
            "sku": "MUG-1",
            "name": "Mug",
            "category": "home",
            "quantity": 1,
            "unit_price": "120.00",
            "opened": True,
            "warranty_months": 0,
        }
        return request_body(
            now=now, type="refund", reason="defective", evidence=EVIDENCE, items=[item]
        )
    return request_body(now=now, type="return", reason="defective", evidence=EVIDENCE)


@dataclass
class Opening:
    """One open the load makes, with the key it replays it under."""

    kind: str
    key: str
    body: dict[str, Any]
    case_id: str | None = None
    answers: list[int] = field(default_factory=list)


def plan(count: int) -> list[Opening]:
    """`count` opens, the kinds alternating."""
    now = datetime.now(UTC)
    return [
        Opening(
            kind=KINDS[i % len(KINDS)],
            key=f"chaos-{secrets.token_hex(8)}",
            body=case_body(KINDS[i % len(KINDS)], now=now),
        )
        for i in range(count)
    ]


async def open_once(http: httpx.AsyncClient, opening: Opening) -> int | None:
    """Send the open once; answers the status, or None when no answer came."""
    try:
        response = await http.post(
            "/v1/cases",
            json=opening.body,
            headers={**auth("storefront"), "Idempotency-Key": opening.key},
        )
    except httpx.HTTPError:
        opening.answers.append(0)
        return None
    opening.answers.append(response.status_code)
    if response.status_code in (200, 201):
        case_id = response.json()["id"]
        if opening.case_id not in (None, case_id):
            raise AssertionError(f"key {opening.key} answered {case_id}, before {opening.case_id}")
        opening.case_id = case_id
    return response.status_code


async def open_until_done(http: httpx.AsyncClient, opening: Opening, *, deadline: float) -> None:
    """Open (and replay under the same key) until the API answers with the case."""
    while opening.case_id is None:
        status = await open_once(http, opening)
        if status is not None and status not in (200, 201, 502, 503, 504):
            raise AssertionError(f"open {opening.key} answered {status}")
        if opening.case_id is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"open {opening.key} never answered: {opening.answers}")
            await asyncio.sleep(RETRY_PAUSE)


async def open_all(
    http: httpx.AsyncClient, openings: list[Opening], *, within: float, concurrency: int = 16
) -> None:
    """Open every case, `concurrency` at a time, retrying each until it is opened."""
    deadline = time.monotonic() + within
    gate = asyncio.Semaphore(concurrency)

    async def one(opening: Opening) -> None:
        async with gate:
            await open_until_done(http, opening, deadline=deadline)

    await asyncio.gather(*(one(o) for o in openings))


# What the driver reports next, by status, for a pickup case.
_NEXT = {
    "awaiting_shipment": "carrier.picked_up",
    "in_transit": "warehouse.received",
    "inspecting": "inspection.completed",
}


@dataclass
class Driver:
    """Plays carrier and warehouse for every case until each has ended.

    It also plays the payment provider's settlement report: a refund the provider answered
    `pending` is reported settled. `carrier_up` or `payment_up` off stops that partner's
    reports (an outage): the cases wait, and their deadlines pass. `statuses` keeps each
    case's last known status.
    """

    http: httpx.AsyncClient
    case_ids: list[str]
    carrier_up: Callable[[], bool] = lambda: True
    payment_up: Callable[[], bool] = lambda: True
    statuses: dict[str, str] = field(default_factory=dict)
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def done(self) -> list[str]:
        """Cases that have ended."""
        return [c for c in self.case_ids if self.statuses.get(c) in TERMINAL]

    async def step(self, case_id: str) -> None:
        """Read the case once and report what it waits for."""
        try:
            response = await self.http.get(f"/v1/cases/{case_id}", headers=auth("agent"))
        except httpx.HTTPError as err:
            self.errors.append(f"GET {case_id}: {type(err).__name__}")
            return
        if response.status_code != 200:
            self.errors.append(f"GET {case_id}: {response.status_code}")
            return
        case = response.json()
        status = case["status"]
        self.statuses[case_id] = status
        self.cases[case_id] = case
        refund = case.get("refund") or {}
        if refund.get("status") == "pending" and refund.get("refund_id") and self.payment_up():
            await self.report(
                case_id, "refund.settled", {"refund_id": refund["refund_id"]}, suffix=""
            )
        event = _NEXT.get(status)
        if event is None or (event == "carrier.picked_up" and not self.carrier_up()):
            return
        data: dict[str, Any] = {}
        suffix = ""
        if event == "carrier.picked_up":
            booked = [s for s in case.get("shipments") or [] if s.get("booked_by") == "seller"]
            if not booked:
                return  # the pickup isn't booked yet
            # The parcel of the latest booking (a missed pickup is booked again).
            data["tracking_number"] = booked[-1]["tracking_number"]
            suffix = f":{len(booked)}"
        if event == "inspection.completed":
            data.update(result="pass", grade="A", notes="As new")
        await self.report(case_id, event, data, suffix=suffix)

    async def report(self, case_id: str, event: str, data: dict[str, Any], *, suffix: str) -> None:
        """Post one integration event under its fixed ID."""
        body = {
            # One ID per case and step: a repeat is the same event, never a second one.
            "event_id": f"{case_id}:{event}{suffix}",
            "type": event,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": data,
        }
        try:
            answer = await self.http.post(
                f"/v1/cases/{case_id}/events", json=body, headers=auth("integration")
            )
        except httpx.HTTPError as err:
            self.errors.append(f"event {case_id}: {type(err).__name__}")
            return
        if answer.status_code not in (202, 409, 503):
            self.errors.append(f"event {case_id} {event}: {answer.status_code} {answer.text}")

    async def run(self, *, within: float, concurrency: int = 16) -> float:
        """Drive until every case has ended; answers how long it took (raises past `within`)."""
        started = time.monotonic()
        gate = asyncio.Semaphore(concurrency)

        async def step(case_id: str) -> None:
            async with gate:
                await self.step(case_id)

        while True:
            left = [c for c in self.case_ids if self.statuses.get(c) not in TERMINAL]
            if not left:
                return time.monotonic() - started
            if time.monotonic() - started > within:
                counts: dict[str, int] = {}
                for c in left:
                    counts[self.statuses.get(c, "?")] = counts.get(self.statuses.get(c, "?"), 0) + 1
                raise AssertionError(
                    f"{len(left)} of {len(self.case_ids)} cases not ended in {within:.0f} s: "
                    f"{counts}; last errors {self.errors[-5:]}"
                )
            await asyncio.gather(*(step(c) for c in left))
            await asyncio.sleep(0.3)
