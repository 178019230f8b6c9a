"""POST /v1/webhooks/carrier: signed tracking events, matched to cases by tracking number."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from activities.signing import HEADER, sign
from store import service
from store.db import session_scope
from tests.api.conftest import Api, assert_problem, token_of
from tests.conftest import until

PATH = "/v1/webhooks/carrier"


def _body(tracking_number: str, type: str = "carrier.picked_up", **overrides: Any) -> bytes:
    event: dict[str, Any] = {
        "event_id": f"cw-{secrets.token_hex(6)}",
        "type": type,
        "occurred_at": datetime.now(UTC).isoformat(),
        "tracking_number": tracking_number,
        "data": {},
        **overrides,
    }
    return json.dumps(event).encode()


async def _post(
    api: Api,
    body: bytes,
    *,
    secret: str | None = None,
    at: int | None = None,
    signature: str | None = None,
) -> httpx.Response:
    """Post a carrier webhook signed as the carrier would (or with the given header)."""
    if signature is None:
        signature = sign(
            secret or api.settings.carrier_webhook_secret,
            body,
            timestamp=at if at is not None else int(time.time()),
        )
    headers = {"Content-Type": "application/json"}
    if signature:  # "" sends no signature at all
        headers[HEADER] = signature
    return await api.http.post(PATH, content=body, headers=headers)


async def _recorded(api: Api, tracking_number: str) -> None:
    """Wait until the worker's record of the case knows the tracking number."""

    def known() -> bool:
        with session_scope(api.engine) as session:
            return bool(service.cases_for_tracking(session, tracking_number=tracking_number))

    await until(known, timeout=20)


async def _shipped(api: Api) -> tuple[str, str]:
    """A return whose customer reported a tracking number: (case ID, tracking number)."""
    case = await api.open()
    case_id = case["id"]
    await api.reach(case_id, "awaiting_shipment", recorded=True)
    tracking = f"BC{secrets.token_hex(5).upper()}"
    shipped = await api.request(
        "POST",
        f"/v1/cases/{case_id}/customer-actions",
        token_of(case),
        json={"action": "provide_tracking", "carrier": "Black Cat", "tracking_number": tracking},
    )
    assert shipped.status_code == 200, shipped.text
    await _recorded(api, tracking)
    return case_id, tracking


def _kinds(case: dict[str, Any], kind: str) -> int:
    return sum(1 for entry in case["timeline"] if entry["kind"] == kind)


async def test_signed_pickup_moves_the_case_and_a_repeat_is_ignored(api: Api) -> None:
    case_id, tracking = await _shipped(api)
    body = _body(tracking)
    response = await _post(api, body)
    assert response.status_code == 202, response.text
    event_id = json.loads(body)["event_id"]
    assert response.json() == {"accepted": True, "event_id": event_id}
    moved = await api.reach(case_id, "in_transit")
    assert _kinds(moved, "carrier.picked_up") == 1

    # The same event again (a carrier retry, freshly signed): accepted, and changes nothing.
    again = await _post(api, body)
    assert again.status_code == 202, again.text
    assert again.json() == {"accepted": True, "event_id": event_id}
    await asyncio.sleep(0.5)
    after = await api.reach(case_id, "in_transit")
    assert _kinds(after, "carrier.picked_up") == 1
    assert _kinds(after, "in_transit") == _kinds(moved, "in_transit") == 1


async def test_order_tracking_number_reaches_a_refund_only_interception(api: Api) -> None:
    tracking = f"OUT{secrets.token_hex(5).upper()}"
    case = await api.open(
        type="refund",
        reason="changed_mind",
        order={"delivered_at": None, "tracking_number": tracking},
    )
    case_id = case["id"]
    await api.reach(case_id, "in_transit")
    await _recorded(api, tracking)
    response = await _post(api, _body(tracking, "carrier.intercepted"))
    assert response.status_code == 202, response.text
    await api.reach(case_id, "resolved")


async def test_bad_missing_and_stale_signatures_are_401(api: Api) -> None:
    case_id, tracking = await _shipped(api)
    body = _body(tracking)
    now = int(time.time())
    tampered = body.replace(b"carrier.picked_up", b"carrier.delivered")
    answers = [
        await _post(api, body, signature=""),
        await _post(api, body, secret="not-the-secret"),
        await _post(api, body, signature="t=garbage,v1=zz"),
        # Signed for the original body, sent with another.
        await api.http.post(
            PATH,
            content=tampered,
            headers={HEADER: sign(api.settings.carrier_webhook_secret, body, timestamp=now)},
        ),
        await _post(api, body, at=now - 301),
    ]
    for answer in answers:
        assert_problem(answer, 401, type_suffix="bad-signature")
    # None of them reached the case.
    await asyncio.sleep(0.3)
    assert (await api.case(case_id))["status"] == "awaiting_shipment"
    # Within the tolerance is fine.
    fresh = await _post(api, body, at=now - 200)
    assert fresh.status_code == 202, fresh.text
    await api.reach(case_id, "in_transit")


async def test_unknown_tracking_number_is_404(api: Api) -> None:
    response = await _post(api, _body(f"NOSUCH{secrets.token_hex(5)}"))
    assert_problem(response, 404, type_suffix="tracking-number-not-found")
    assert_problem(await _post(api, _body("X" * 300)), 422, field="tracking_number")


async def test_malformed_bodies_are_422_naming_the_field(api: Api) -> None:
    tracking = "BC000000000"
    cases: list[tuple[bytes, str]] = [
        (_body(tracking, type="warehouse.received"), "type"),
        (_body(tracking, type="carrier.teleported"), "type"),
        (_body(tracking, occurred_at="yesterday"), "occurred_at"),
        (_body(tracking, event_id=""), "event_id"),
        (_body(tracking, data=[1, 2]), "data"),
        (_body(tracking, surprise=True), "surprise"),
        (json.dumps({"type": "carrier.picked_up"}).encode(), "tracking_number"),
        (_body(tracking, type="carrier.exception", data={"kind": "stolen"}), "data.kind"),
        (b"{not json", "body"),
        (b"[1, 2]", "body"),
    ]
    for body, field in cases:
        assert_problem(await _post(api, body), 422, field=field)
