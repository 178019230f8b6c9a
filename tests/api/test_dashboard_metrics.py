"""Every metric the Grafana dashboards and the Prometheus alert rules use is exported, scraped
over HTTP from the real processes: the API's /metrics, the worker's own endpoint, and the
Temporal SDK's runtime endpoint of a worker running a real case (and a workflow task that
fails, the one SDK metric a healthy case never shows). And the projection's lag and failures,
the metrics the worker gained for the projection-lag alert."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import REGISTRY
from temporalio import workflow
from temporalio.exceptions import ApplicationError

from activities.connectors import connectors_from_settings
from activities.inputs import ProjectCase
from activities.metrics import serve_metrics
from activities.records import RecordActivities
from aftersales.worker import build_worker
from config.temporal import connect, runtime
from tests.api.conftest import POLICY, Api
from tests.api.test_actions import OPENED_MUG
from tests.support.factory import case_input, record_opening
from tests.support.ports import free_port
from tests.support.promql import TARGET_LABELS, Scrape, parse
from tests.test_dashboards import API_FIGURES, expressions
from workflows.registry import WORKFLOWS, workflow_for

# Series Prometheus makes itself for every target, with their labels: not exported by anyone.
PROMETHEUS_SERIES = {"up": {"job", "instance"}}


@workflow.defn(name="AlwaysFailingTask", sandboxed=False)
class AlwaysFailingTask:
    """Every task of it fails: the SDK counts workflow task failures only once one happens."""

    @workflow.run
    async def run(self) -> None:
        """Fail the workflow task (not the workflow): Temporal retries it until terminated."""
        raise RuntimeError("a workflow task failing on purpose")


async def scrape(http: httpx.AsyncClient, api: Api, *urls: str) -> Scrape:
    """The API's /metrics (over its real HTTP) and each metrics endpoint, read together."""
    found = Scrape()
    found.add((await api.request("GET", "/metrics", None)).text)
    for url in urls:
        found.add((await http.get(url)).text)
    return found


def used() -> dict[str, set[str]]:
    """Every metric the dashboards and alert rules select -> where."""
    found: dict[str, set[str]] = {}
    for where, expr in expressions():
        for selector in parse(expr).selectors:
            found.setdefault(selector.metric, set()).add(where)
    return found


def missing(scraped: Scrape) -> set[str]:
    """The metrics used but not exported; those not counted from the database must have a
    sample too (a labelled series shows none until it is first set), so their labels are
    checked. The database's figures may have nothing to count yet: exported is enough."""
    found = set()
    for name in used():
        if name in PROMETHEUS_SERIES:
            continue
        if name not in (scraped.names if name in API_FIGURES else scraped.labels):
            found.add(name)
    return found


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_every_metric_the_dashboards_and_alerts_use_is_exported(api: Api) -> None:
    sdk_address = f"127.0.0.1:{free_port()}"
    worker_address = f"127.0.0.1:{free_port()}"
    serve_metrics(worker_address)  # this process runs the workers: their metrics are here
    target = api.env.client.service_client.config.target_host
    settings = api.settings.model_copy(
        update={
            "task_queue": f"aftersales-metrics-{secrets.token_hex(4)}",
            "temporal_address": target,
            "temporal_metrics_address": sdk_address,
        }
    )
    # A worker as `aftersales worker` builds it, on a runtime exporting the SDK's metrics.
    client = await connect(settings, with_runtime=runtime(settings))
    connectors = connectors_from_settings(settings)
    case = case_input(now=datetime.now(UTC), policy=POLICY)
    await asyncio.to_thread(record_opening, api.engine, case)
    urls = (f"http://{sdk_address}/metrics", f"http://{worker_address}/metrics")
    with ThreadPoolExecutor(max_workers=4) as executor:
        worker = build_worker(
            client,
            settings=settings,
            engine=api.engine,
            connectors=connectors,
            executor=executor,
            workflows=[*WORKFLOWS.values(), AlwaysFailingTask],
        )
        async with worker, httpx.AsyncClient(timeout=10) as http:
            handle = await client.start_workflow(
                workflow_for(case.request.type).run,  # type: ignore[attr-defined]
                dataclasses.replace(case, recorded=True),
                id=case.case_id,
                task_queue=settings.task_queue,
            )
            failing = await client.start_workflow(
                AlwaysFailingTask.run,
                id=f"failing-{case.case_id}",
                task_queue=settings.task_queue,
            )
            try:
                deadline = asyncio.get_running_loop().time() + 15
                scraped = await scrape(http, api, *urls)
                while missing(scraped) and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.1)
                    scraped = await scrape(http, api, *urls)
            finally:
                await failing.terminate()
                await handle.terminate()
    await connectors.aclose()
    assert not missing(scraped), {name: used()[name] for name in missing(scraped)}
    # Each label a selector matches on, and each it groups by, is one the series carry.
    labels = {**scraped.labels, **PROMETHEUS_SERIES}
    for where, expr in expressions():
        parsed = parse(expr)
        for selector in parsed.selectors:
            if selector.metric in labels:
                assert selector.labels <= labels[selector.metric], (where, selector)
        seen = [labels.get(selector.metric) for selector in parsed.selectors]
        if all(found is not None for found in seen):
            carried = set().union(*(found for found in seen if found)) | TARGET_LABELS
            assert parsed.grouping <= carried, (where, sorted(parsed.grouping - carried))


def _sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_the_worker_measures_how_far_the_records_trail(api: Api) -> None:
    count, total = (_sample(f"aftersales_projection_lag_seconds_{s}") for s in ("count", "sum"))
    case = await api.open(items=OPENED_MUG)
    await api.reach(case["id"], "awaiting_review", recorded=True)
    projections = _sample("aftersales_projection_lag_seconds_count") - count
    lag = _sample("aftersales_projection_lag_seconds_sum") - total
    assert projections >= 1
    # Seconds, from the workflow scheduling each projection: a few ms here, never negative.
    assert 0 <= lag / projections < 5, lag / projections
    scraped = Scrape()
    address = f"127.0.0.1:{free_port()}"
    serve_metrics(address)
    async with httpx.AsyncClient() as http:
        scraped.add((await http.get(f"http://{address}/metrics")).text)
    assert "aftersales_projection_lag_seconds_bucket" in scraped.labels


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_a_projection_that_fails_is_counted(api: Api) -> None:
    failures = _sample("aftersales_projection_failures_total")
    records = RecordActivities(api.engine)
    # Changed fields for a case with no row: the gap the activity retries until restored.
    lost = ProjectCase(case_id=f"R-{secrets.token_hex(4).upper()}", revision=3,
                       changes={"status": "closed"})  # fmt: skip
    with pytest.raises(ApplicationError):
        await asyncio.to_thread(records.project_case, lost)
    assert _sample("aftersales_projection_failures_total") == failures + 1
