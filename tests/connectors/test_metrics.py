"""The worker's metrics: each partner call counted by result and timed, served over HTTP; and
the Temporal SDK's own metrics from the runtime's Prometheus endpoint."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from activities.connectors import Connector, ConnectorRejected, ConnectorRetryable
from activities.metrics import serve_metrics
from config.settings import Settings
from config.temporal import connect, runtime
from tests.connectors.test_connector import REFUND, connector
from tests.support.http_peers import Peers
from tests.support.ports import free_port

from .conftest import SECRET


def _count(partner: str, result: str) -> float:
    value = REGISTRY.get_sample_value(
        "aftersales_connector_call_seconds_count", {"partner": partner, "result": result}
    )
    return value or 0.0


async def test_every_call_is_counted_by_partner_and_result(peers: Peers) -> None:
    before = {r: _count("payment", r) for r in ("ok", "rejected", "retryable", "sandbox")}
    payment = connector(peers)
    # No URL configured: the sandbox answers.
    sandbox = Connector(name="payment", base_url=None, secret=SECRET, timeout=5.0)
    try:
        await payment.post("/refunds", REFUND, idempotency_key="M-1:refund")
        peers.fail_next("/refunds", 422)
        with pytest.raises(ConnectorRejected):
            await payment.post("/refunds", REFUND, idempotency_key="M-2:refund")
        peers.fail_next("/refunds", 503)
        with pytest.raises(ConnectorRetryable):
            await payment.post("/refunds", REFUND, idempotency_key="M-3:refund")
        await sandbox.post("/refunds", REFUND, idempotency_key="M-4:refund")
    finally:
        await payment.aclose()
        await sandbox.aclose()
    after = {r: _count("payment", r) for r in before}
    assert {r: after[r] - before[r] for r in before} == {
        "ok": 1, "rejected": 1, "retryable": 1, "sandbox": 1
    }  # fmt: skip
    seconds = REGISTRY.get_sample_value(
        "aftersales_connector_call_seconds_sum", {"partner": "payment", "result": "ok"}
    )
    assert seconds is not None and seconds > 0


async def test_the_worker_serves_its_metrics_over_http(peers: Peers) -> None:
    import httpx

    address = f"127.0.0.1:{free_port()}"
    serve_metrics(address)
    payment = connector(peers)
    try:
        await payment.post("/refunds", REFUND, idempotency_key="M-5:refund")
    finally:
        await payment.aclose()
    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"http://{address}/metrics")).text
    assert 'aftersales_connector_call_seconds_count{partner="payment",result="ok"}' in scraped


async def test_the_sdk_metrics_come_from_the_runtimes_endpoint() -> None:
    import httpx
    from temporalio.testing import WorkflowEnvironment

    from aftersales.binaries import find

    address = f"127.0.0.1:{free_port()}"
    settings = Settings(temporal_metrics_address=address)
    async with await WorkflowEnvironment.start_local(
        dev_server_existing_path=find("temporal"), port=free_port()
    ) as env:
        target = env.client.service_client.config.target_host
        client = await connect(
            settings.model_copy(update={"temporal_address": target}),
            with_runtime=runtime(settings),
        )
        await client.count_workflows()
        async with httpx.AsyncClient() as http:
            scraped = (await http.get(f"http://{address}/metrics")).text
    assert "temporal_request" in scraped, scraped[:500]
    assert runtime(Settings()) is None  # no address: the SDK's default runtime
