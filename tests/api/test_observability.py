"""Logs and traces on a real stack: JSON lines with their case and never a secret; one trace
from the API request through the workflow and its activity to the partner's HTTP call.

The stack is the API suite's (the session's Temporal dev server, the real HTTP and SMTP
peers), with tracing on as `OTEL_*` switches it on in production: the API instrumented, the
Temporal client (and so its worker) carrying the SDK's tracing interceptor, the partner
client instrumented; spans go to an in-memory exporter instead of a collector.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.connectors import connectors_from_settings
from aftersales.logs import log_handler
from aftersales.worker import build_worker
from api.app import create_app
from api.request_ids import HEADER as REQUEST_ID
from config.tracing import temporal_interceptors, tracer_provider
from store.db import make_engine, migrate
from tests.api.conftest import KEYS, POLICY, Api, token_of
from tests.conftest import stack_settings
from tests.support.http_peers import Peers
from tests.support.mail import MailSink
from tests.support.ports import free_port
from tests.support.serving import serving

NOT_SHIPPED = {"shipped_at": None, "delivered_at": None}


@dataclass
class Observed:
    """The traced stack, the spans it has ended so far, and every log line it wrote."""

    api: Api
    spans: InMemorySpanExporter
    logs: io.StringIO

    def lines(self) -> list[dict[str, Any]]:
        """Every JSON log line written so far (each must parse)."""
        return [json.loads(line) for line in self.logs.getvalue().splitlines() if line]


@pytest.fixture(scope="module")
async def observed(
    dev_server: WorkflowEnvironment,
    http_peers: Peers,
    mail: MailSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Observed]:
    """API, worker and partner calls traced into memory; this process's log lines (the access
    log's too) written as `aftersales api`/`worker` write them with AFTERSALES_LOG_FORMAT=json."""
    tmp = tmp_path_factory.mktemp("observed")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = stack_settings(
        tmp,
        http_peers,
        mail,
        task_queue="aftersales-observed",
        api_keys=",".join(f"{role}:{key}" for role, key in KEYS.items()),
        public_url=url,
        log_format="json",
        # No SMTP: the notify activity logs each message it would have sent (an activity's
        # own log line, with its workflow and activity fields).
        smtp_url=None,
    )
    logs = io.StringIO()
    handler = log_handler(settings, "test", stream=logs)
    spans = InMemorySpanExporter()
    provider = tracer_provider("aftersales-test", [spans])
    assert provider is not None
    # A client of the session's dev server with the tracing interceptor, as `connect` makes
    # one when tracing is on; the worker built on it takes the interceptor from it.
    config = dev_server.client.config()
    config["interceptors"] = temporal_interceptors(provider)
    client = Client(**config)
    engine = make_engine(settings.database_url)
    migrate(engine)
    connectors = connectors_from_settings(settings, tracer_provider=provider)
    app = create_app(
        settings, client=client, engine=engine, policy_=POLICY, tracer_provider=provider
    )
    with ThreadPoolExecutor(max_workers=8) as executor:
        worker = build_worker(
            client, settings=settings, engine=engine, connectors=connectors, executor=executor
        )
        async with (
            worker,
            serving(app, port=port, access_log=True),
            httpx.AsyncClient(base_url=url, timeout=30) as http,
        ):
            # Attached once uvicorn has configured its loggers (which resets their handlers).
            with _logging_to(handler):
                api = Api("sqlite", http, url, settings, engine, dev_server, http_peers, mail)
                yield Observed(api, spans, logs)
    await connectors.aclose()
    engine.dispose()
    provider.shutdown()


@contextlib.contextmanager
def _logging_to(handler: logging.Handler) -> Iterator[None]:
    """Every INFO line of this process to `handler`: the root logger's, and uvicorn's access
    log (which doesn't propagate)."""
    saved = [(logger, logger.level) for logger in map(logging.getLogger, ("", "uvicorn.access"))]
    for logger, _ in saved:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)


def _tree(spans: list[ReadableSpan]) -> str:
    by_parent: dict[int | None, list[ReadableSpan]] = {}
    for s in spans:
        by_parent.setdefault(s.parent.span_id if s.parent else None, []).append(s)
    out: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        out.append("  " * depth + f"{span.name} {span.context.trace_id:x}"[:90])
        for child in by_parent.get(span.context.span_id, []):
            walk(child, depth + 1)

    known = {s.context.span_id for s in spans}
    for s in spans:
        if s.parent is None or s.parent.span_id not in known:
            walk(s, 0)
    return "\n".join(out)


def _span(spans: list[ReadableSpan], name: str, *, trace_id: int) -> ReadableSpan:
    """The one span of this name in the trace."""
    found = [s for s in spans if s.name == name and s.context.trace_id == trace_id]
    assert len(found) == 1, f"{len(found)} spans {name!r} in the trace:\n{_tree(spans)}"
    return found[0]


def _child_of(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert child.parent is not None, f"{child.name} has no parent"
    assert (child.context.trace_id, child.parent.span_id) == (
        parent.context.trace_id,
        parent.context.span_id,
    ), f"{child.name} is not a child of {parent.name}"


async def test_one_trace_from_the_api_through_the_workflow_to_the_partner_call(
    observed: Observed,
) -> None:
    api = observed.api
    case = await api.open(type="refund", reason="changed_mind", order=NOT_SHIPPED)
    case_id = case["id"]
    await api.reach(case_id, "resolved")
    assert len(api.peers.refunds_for(case_id)) == 1
    spans = list(observed.spans.get_finished_spans())

    # The open request roots the trace; it starts the workflow, which the worker runs ...
    [run] = [
        s
        for s in spans
        if s.name == "RunWorkflow:RefundWorkflow"
        and s.attributes is not None
        and s.attributes["temporalWorkflowID"] == case_id
    ]
    trace = run.context.trace_id
    opened = _span(spans, "POST /v1/cases", trace_id=trace)
    assert opened.parent is None
    start = _span(spans, "StartWorkflow:RefundWorkflow", trace_id=trace)
    _child_of(start, opened)
    _child_of(run, start)
    # ... scheduling the refund under the workflow's start, run by the worker as an activity,
    refund = _span(spans, "RunActivity:request_refund", trace_id=trace)
    _child_of(refund, _span(spans, "StartActivity:request_refund", trace_id=trace))
    _child_of(_span(spans, "StartActivity:request_refund", trace_id=trace), start)
    # ... whose call to the payment partner is the activity's own child span.
    calls = [s for s in spans if s.parent and s.parent.span_id == refund.context.span_id]
    assert [s.name for s in calls] == ["POST"], _tree(spans)
    attributes = calls[0].attributes or {}
    url = str(attributes.get("url.full") or attributes.get("http.url"))
    assert url == f"{api.peers.url}/refunds", attributes
    assert calls[0].context.trace_id == trace

    # An update: the agent's request sends it, and the workflow's handler runs in the case's
    # trace, linked to the request that sent it.
    acted = await api.request(
        "POST", f"/v1/cases/{case_id}/actions", "agent", json={"action": "note", "message": "ok"}
    )
    assert acted.status_code == 200, acted.text
    spans = list(observed.spans.get_finished_spans())
    [request] = [
        s
        for s in spans
        if s.name == "POST /v1/cases/{case_id}/actions"
        and str((s.attributes or {}).get("url.path", (s.attributes or {}).get("http.target")))
        == f"/v1/cases/{case_id}/actions"
    ]
    update = _span(spans, "StartWorkflowUpdate:action", trace_id=request.context.trace_id)
    _child_of(update, request)
    handled = _span(spans, "HandleUpdate:action", trace_id=trace)
    assert [link.context.span_id for link in handled.links] == [update.context.span_id]


async def test_json_logs_carry_the_case_and_never_a_token_or_a_key(observed: Observed) -> None:
    api = observed.api
    case = await api.open(headers={REQUEST_ID: "shop-request-42"})
    case_id, token = case["id"], token_of(case)
    # The customer's status page: its path holds the token.
    page = await api.request("GET", f"/status/{token}", None)
    assert page.status_code == 200, page.text
    assert page.headers[REQUEST_ID] != "shop-request-42"
    noted = await api.request(
        "POST", f"/v1/cases/{case_id}/actions", "agent", json={"action": "note", "message": "x"}
    )
    assert noted.status_code == 200, noted.text
    # A caller's request ID that could forge a line is replaced by one of ours.
    forged = await api.request("GET", f"/v1/cases/{case_id}", headers={REQUEST_ID: 'a"\\n{'})
    assert forged.headers[REQUEST_ID] != 'a"\\n{' and len(forged.headers[REQUEST_ID]) == 32
    # A line quoting what a careless error could: a header with a key, a token, a secret.
    try:
        raise RuntimeError(f"peer refused /status/{token}?token={token}")
    except RuntimeError:
        logging.getLogger("aftersales.test").exception(
            "call failed with Authorization: Bearer %s (signed with %s)",
            KEYS["integration"],
            api.settings.webhook_secret,
        )
    await api.reach(case_id, "awaiting_shipment", recorded=True)

    lines = observed.lines()
    ours = [line for line in lines if line.get("case_id") == case_id]
    # The open request's line carries the storefront's request ID and the new case's ID.
    [opened] = [line for line in ours if line.get("request_id") == "shop-request-42"]
    assert '"POST /v1/cases HTTP/1.1" 201' in opened["message"], opened
    # The status page's line names the case, not the token.
    [status] = [line for line in ours if "/status/" in line["message"]]
    assert "/status/<redacted>" in status["message"], status
    assert status["request_id"] == page.headers[REQUEST_ID]
    assert any(line.get("request_id") == noted.headers[REQUEST_ID] for line in ours)
    # The activities' lines carry the workflow, its run and the activity.
    activity = [line for line in ours if line.get("activity") == "notify_customer"]
    assert activity, ours
    assert {line["workflow_id"] for line in activity} == {case_id}
    assert all(line["run_id"] for line in activity)
    [failed] = [line for line in lines if line["logger"] == "aftersales.test"]
    assert "Bearer <redacted>" in failed["message"] and "RuntimeError" in failed["error"]

    text = observed.logs.getvalue()
    for secret in (token, *KEYS.values(), api.settings.webhook_secret):
        assert secret not in text, f"{secret!r} reached the log"
    # Nor a span: the status page's request span has the route and a redacted URL.
    spans = list(observed.spans.get_finished_spans())
    assert any(s.name == "GET /status/{token}" for s in spans), _tree(spans)
    for span in spans:
        assert token not in f"{span.name} {dict(span.attributes or {})}", span.name
