"""Connector against the real local Peers server, and the network-free sandbox."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import httpx
import pytest

from activities.connectors import (
    Connector,
    ConnectorError,
    ConnectorRejected,
    ConnectorRetryable,
    connectors_from_settings,
    encode_payload,
)
from activities.signing import HEADER, verify
from config.settings import Settings
from tests.support.http_peers import Peers

from .conftest import SECRET

REFUND = {
    "case_id": "R-1",
    "order_id": "SO-1001",
    "amount": Decimal("990.00"),
    "currency": "TWD",
    "payment_method": "card",
    "reason": "size_fit",
}


def connector(
    peers: Peers,
    *,
    name: str = "payment",
    secret: str = SECRET,
    base_url: str | None = None,
    timeout: float = 5.0,
) -> Connector:
    return Connector(name=name, base_url=base_url or peers.url, secret=secret, timeout=timeout)


async def test_signed_refund_is_accepted(peers: Peers) -> None:
    payment = connector(peers)
    try:
        answer = await payment.post("/refunds", REFUND, idempotency_key="R-1:refund")
    finally:
        await payment.aclose()
    assert answer["status"] == "succeeded"
    assert answer["refund_id"].startswith("re_")
    assert peers.rejections == []
    [request] = peers.requests
    assert request.idempotency_key == "R-1:refund"
    assert request.status == 200


async def test_same_idempotency_key_yields_one_refund(peers: Peers) -> None:
    payment = connector(peers)
    try:
        first = await payment.post("/refunds", REFUND, idempotency_key="R-1:refund")
        second = await payment.post("/refunds", REFUND, idempotency_key="R-1:refund")
    finally:
        await payment.aclose()
    assert first == second
    assert peers.refund_calls == 2
    assert list(peers.refunds) == ["R-1:refund"]
    [refund] = peers.refunds_for("R-1")
    assert refund["refund_id"] == first["refund_id"]


async def test_other_keys_are_other_refunds(peers: Peers) -> None:
    payment = connector(peers)
    try:
        a = await payment.post("/refunds", REFUND, idempotency_key="R-1:refund")
        b = await payment.post("/refunds", REFUND, idempotency_key="R-1:refund-2")
    finally:
        await payment.aclose()
    assert a["refund_id"] != b["refund_id"]
    assert len(peers.refunds_for("R-1")) == 2


async def test_pending_refund_status_is_passed_through(peers: Peers) -> None:
    peers.refund_status = "pending"
    payment = connector(peers)
    try:
        answer = await payment.post("/refunds", REFUND, idempotency_key="k")
    finally:
        await payment.aclose()
    assert answer["status"] == "pending"


async def test_decimal_amounts_go_out_as_strings(peers: Peers) -> None:
    payment = connector(peers)
    try:
        await payment.post("/refunds", REFUND, idempotency_key="k")
    finally:
        await payment.aclose()
    assert peers.refunds["k"]["amount"] == "990.00"


def test_payload_encoding_is_compact_sorted_and_iso() -> None:
    at = dt.datetime(2026, 11, 12, 15, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    body = encode_payload({"b": Decimal("1.50"), "a": at, "c": "台北"})
    assert body == '{"a":"2026-11-12T15:00:00+08:00","b":"1.50","c":"台北"}'.encode()


async def test_5xx_is_retryable_then_the_retry_succeeds(peers: Peers) -> None:
    peers.fail_next("/refunds", 503)
    payment = connector(peers)
    try:
        with pytest.raises(ConnectorRetryable):
            await payment.post("/refunds", REFUND, idempotency_key="k")
        assert peers.refunds == {}
        answer = await payment.post("/refunds", REFUND, idempotency_key="k")
    finally:
        await payment.aclose()
    assert answer["status"] == "succeeded"
    assert len(peers.refunds) == 1
    assert [r.status for r in peers.requests] == [503, 200]


async def test_4xx_is_rejected_with_status_and_detail(peers: Peers) -> None:
    peers.fail_next("/refunds", 422, detail="card expired")
    payment = connector(peers)
    try:
        with pytest.raises(ConnectorRejected) as caught:
            await payment.post("/refunds", REFUND, idempotency_key="k")
    finally:
        await payment.aclose()
    assert caught.value.status == 422
    assert caught.value.detail == "card expired"
    assert not isinstance(caught.value, ConnectorRetryable)


async def test_wrong_secret_gets_401_rejected(peers: Peers) -> None:
    payment = connector(peers, secret="not-the-shared-secret")
    try:
        with pytest.raises(ConnectorRejected) as caught:
            await payment.post("/refunds", REFUND, idempotency_key="k")
    finally:
        await payment.aclose()
    assert caught.value.status == 401
    assert len(peers.rejections) == 1
    assert peers.refunds == {}


async def test_reusing_a_key_with_another_body_is_rejected(peers: Peers) -> None:
    payment = connector(peers)
    try:
        await payment.post("/refunds", REFUND, idempotency_key="k")
        with pytest.raises(ConnectorRejected) as caught:
            await payment.post("/refunds", {**REFUND, "amount": "1.00"}, idempotency_key="k")
    finally:
        await payment.aclose()
    assert caught.value.status == 422


async def test_timeout_is_retryable_and_the_retry_finds_the_same_refund(peers: Peers) -> None:
    # The provider did the work but answered too late: the retry must not refund twice.
    peers.stall_next("/refunds", 1.0)
    payment = connector(peers, timeout=0.2)
    try:
        with pytest.raises(ConnectorRetryable):
            await payment.post("/refunds", REFUND, idempotency_key="k")
        peers.wait_for(lambda p: len(p.refunds) == 1, timeout=5)
        answer = await payment.post("/refunds", REFUND, idempotency_key="k")
    finally:
        await payment.aclose()
    assert answer["refund_id"] == peers.refunds_for("R-1")[0]["refund_id"]
    assert len(peers.refunds) == 1


async def test_unreachable_peer_is_retryable(peers: Peers) -> None:
    url = peers.url
    peers.stop()
    payment = connector(peers, base_url=url)
    try:
        with pytest.raises(ConnectorRetryable):
            await payment.post("/refunds", REFUND, idempotency_key="k")
    finally:
        await payment.aclose()


async def test_signature_header_covers_the_exact_body() -> None:
    # Checked independently of Peers, by capturing the request on a mock transport.
    seen: list[httpx.Request] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"refund_id": "x", "status": "succeeded"})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        payment = Connector(
            name="payment", base_url="http://provider.test", secret=SECRET, timeout=5, client=client
        )
        await payment.post("/refunds", REFUND, idempotency_key="k")
    [request] = seen
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Idempotency-Key"] == "k"
    assert json.loads(request.content)["amount"] == "990.00"
    now = int(request.headers[HEADER].split(",")[0].removeprefix("t="))
    assert verify(SECRET, request.content, request.headers[HEADER], now=now)


async def test_carrier_calls(peers: Peers) -> None:
    carrier = connector(peers, name="carrier")
    try:
        pickup = await carrier.post(
            "/pickups",
            {"case_id": "R-1", "address": {"city": "Taipei"}, "parcels": 1},
            idempotency_key="R-1:pickup",
        )
        again = await carrier.post(
            "/pickups",
            {"case_id": "R-1", "address": {"city": "Taipei"}, "parcels": 1},
            idempotency_key="R-1:pickup",
        )
        interception = await carrier.post(
            "/interceptions",
            {"case_id": "R-1", "tracking_number": pickup["tracking_number"]},
            idempotency_key="R-1:intercept",
        )
    finally:
        await carrier.aclose()
    assert pickup == again
    assert pickup["tracking_number"].startswith("TRK")
    assert pickup["label_url"].startswith(peers.url)
    assert interception["tracking_number"] == pickup["tracking_number"]
    assert len(peers.pickups_for("R-1")) == 1
    assert len(peers.interceptions_for("R-1")) == 1


async def test_webhook_and_sms_through_settings(peers: Peers) -> None:
    settings = Settings(
        payment_url=peers.url,
        carrier_url=peers.url,
        webhook_url=peers.webhook_url,
        sms_url=peers.sms_url,
        webhook_secret=SECRET,
    )
    event = {
        "id": "ev_1",
        "type": "case.approved",
        "case_id": "R-1",
        "status": "approved",
        "occurred_at": dt.datetime(2026, 11, 12, tzinfo=dt.UTC),
        "data": {},
    }
    async with connectors_from_settings(settings) as connectors:
        assert connectors.webhook.url_for("") == peers.webhook_url
        # One shared client across all four connectors.
        assert connectors.payment._http is connectors.sms._http is connectors._http
        assert await connectors.webhook.post("", event, idempotency_key="ev_1") == {}
        await connectors.webhook.post("", event, idempotency_key="ev_1")
        await connectors.sms.post(
            "", {"case_id": "R-1", "to": "+886912345678", "body": "Hi"}, idempotency_key="R-1:sms:1"
        )
        await connectors.payment.post("/refunds", REFUND, idempotency_key="k")
    [delivered] = peers.webhook_events("R-1")
    assert delivered["occurred_at"] == "2026-11-12T00:00:00+00:00"
    assert len(peers.webhooks) == 2  # a redelivery arrives, but is the same event
    assert peers.sms_for("R-1")[0]["body"] == "Hi"
    assert len(peers.refunds_for("R-1")) == 1


async def test_missing_idempotency_key_is_a_programming_error(peers: Peers) -> None:
    with pytest.raises(ValueError):
        await connector(peers).post("/refunds", REFUND, idempotency_key="")


async def test_bad_url_is_a_non_retryable_error() -> None:
    broken = Connector(name="payment", base_url="ftp://nowhere", secret=SECRET, timeout=1)
    try:
        with pytest.raises(ConnectorError) as caught:
            await broken.post("/refunds", REFUND, idempotency_key="k")
    finally:
        await broken.aclose()
    assert not isinstance(caught.value, ConnectorRetryable | ConnectorRejected)


class TestSandbox:
    @staticmethod
    def sandbox(name: str = "payment") -> Connector:
        # No client at all would be needed; pass one that fails loudly if it is touched.
        def no_network(request: httpx.Request) -> httpx.Response:
            raise AssertionError(f"sandbox touched the network: {request.url}")

        client = httpx.AsyncClient(transport=httpx.MockTransport(no_network))
        return Connector(name=name, base_url=None, secret=SECRET, timeout=1, client=client)

    async def test_refunds_are_deterministic_per_key(self) -> None:
        payment = self.sandbox()
        assert payment.sandbox
        a = await payment.post("/refunds", REFUND, idempotency_key="R-1:refund")
        b = await payment.post("/refunds", REFUND, idempotency_key="R-1:refund")
        c = await payment.post("/refunds", REFUND, idempotency_key="R-2:refund")
        assert a == b == {"refund_id": a["refund_id"], "status": "succeeded"}
        assert a["refund_id"].startswith("sandbox_re_")
        assert c["refund_id"] != a["refund_id"]

    async def test_carrier_answers(self) -> None:
        carrier = self.sandbox("carrier")
        pickup = await carrier.post("/pickups", {"case_id": "R-1"}, idempotency_key="k")
        shipment = await carrier.post("/shipments", {"case_id": "R-1"}, idempotency_key="k")
        again = await carrier.post("/pickups", {"case_id": "R-1"}, idempotency_key="k")
        interception = await carrier.post(
            "/interceptions", {"case_id": "R-1", "tracking_number": "T1"}, idempotency_key="k"
        )
        assert pickup == again
        assert pickup["id"] != shipment["id"]
        for answer in (pickup, shipment):
            number = answer["tracking_number"]
            assert number.startswith("SBX") and len(number) == 13
            assert number[3:].isalnum() and number[3:] == number[3:].upper()
            assert answer["label_url"] is None
        assert interception["status"] == "requested"
        assert interception["id"].startswith("sandbox_ic_")

    async def test_webhook_and_sms_answer_empty(self) -> None:
        assert await self.sandbox("webhook").post("", {"case_id": "R-1"}, idempotency_key="k") == {}
        assert await self.sandbox("sms").post("", {"case_id": "R-1"}, idempotency_key="k") == {}

    async def test_settings_without_urls_are_all_sandbox(self) -> None:
        connectors = connectors_from_settings(
            Settings(payment_url=None, carrier_url=None, webhook_url=None, sms_url=None)
        )
        assert all(
            c.sandbox
            for c in (connectors.payment, connectors.carrier, connectors.webhook, connectors.sms)
        )
        answer = await connectors.payment.post("/refunds", REFUND, idempotency_key="k")
        assert answer["status"] == "succeeded"
        assert connectors._http._client is None  # never created: no network at all
        await connectors.aclose()
