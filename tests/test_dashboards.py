"""The Grafana dashboards and the Prometheus alert rules: complete, readable, each rule with
its runbook. That every metric they name is really exported is tests/api/test_dashboard_metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.promql import parse

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "deploy/grafana/dashboards"
ALERTS = ROOT / "deploy/prometheus/alerts.yml"
OPERATIONS = ROOT / "docs/operations.md"
# The API's gauges counted from the database (api/metrics.py), alike on every replica.
API_FIGURES = {
    "aftersales_cases", "aftersales_cases_opened", "aftersales_cases_ended",
    "aftersales_cases_outcome", "aftersales_cases_waiting_on_agent",
    "aftersales_cases_sla_breached_open", "aftersales_notifications", "aftersales_sla_breaches",
    "aftersales_refunds", "aftersales_refund_amount",
}  # fmt: skip


def dashboards() -> dict[str, dict[str, Any]]:
    """Every provisioned dashboard by uid."""
    found = {}
    for file in sorted(DASHBOARDS.glob("*.json")):
        dashboard: dict[str, Any] = json.loads(file.read_text())
        assert dashboard["uid"] == file.stem, f"{file.name}: uid {dashboard['uid']}"
        found[dashboard["uid"]] = dashboard
    return found


def rules() -> list[dict[str, Any]]:
    """Every alert rule of every group."""
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every dashboard target and alert rule."""
    found = [
        (f"{uid}: {panel['title']}", target["expr"])
        for uid, dashboard in dashboards().items()
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]
    return found + [(rule["alert"], rule["expr"]) for rule in rules()]


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for a document's headings."""
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", markdown, re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
        found.add(slug)
    return found


def panel_metrics(uid: str) -> set[str]:
    """The metric names a dashboard's panels select."""
    return {
        selector.metric
        for panel in dashboards()[uid]["panels"]
        for target in panel["targets"]
        for selector in parse(target["expr"]).selectors
    }


def test_the_dashboards_cover_what_on_call_needs() -> None:
    # The five views: case flow, SLA breaches, refunds, partners, worker health.
    needed = {
        "aftersales-cases": {"aftersales_cases", "aftersales_cases_opened",
                             "aftersales_cases_ended"},
        "aftersales-sla": {"aftersales_sla_breaches"},
        "aftersales-refunds": {"aftersales_refunds", "aftersales_refund_amount"},
        "aftersales-partners": {"aftersales_connector_call_seconds_count",
                                "aftersales_connector_call_seconds_bucket"},
        "aftersales-worker": {"temporal_workflow_task_schedule_to_start_latency_bucket",
                              "temporal_worker_task_slots_available",
                              "temporal_worker_task_slots_used", "temporal_sticky_cache_hit",
                              "aftersales_projection_lag_seconds_bucket"},
    }  # fmt: skip
    assert set(dashboards()) == set(needed)
    for uid, metrics in needed.items():
        assert metrics <= panel_metrics(uid), (uid, sorted(metrics - panel_metrics(uid)))


def test_every_panel_is_placed_and_queries_something() -> None:
    for uid, dashboard in dashboards().items():
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), f"{uid}: panel ids repeat"
        for panel in dashboard["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, (uid, panel["title"])
            refs = [target["refId"] for target in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), (uid, panel["title"])


@pytest.mark.parametrize("where, expr", expressions())
def test_every_expression_selects_metrics(where: str, expr: str) -> None:
    parsed = parse(expr)
    assert parsed.selectors, f"{where}: selects no metric"
    # Business figures are the same on every API replica: summed, they'd count twice.
    figures = {s.metric for s in parsed.selectors if s.metric in API_FIGURES}
    assert not figures or re.search(r"\bmax\b", expr), f"{where}: take the max of {figures}"


def test_every_alert_rule_has_its_runbook() -> None:
    documented = anchors(OPERATIONS.read_text())
    for rule in rules():
        assert rule["alert"].startswith("Aftersales"), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}, rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        notes = rule["annotations"]
        assert notes["summary"] and notes["description"], rule["alert"]
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "docs/operations.md" and anchor in documented, (rule["alert"], anchor)


def test_the_alerts_cover_the_failures_on_call_must_hear_of() -> None:
    selected = {
        rule["alert"]: {selector.metric for selector in parse(rule["expr"]).selectors}
        for rule in rules()
    }
    needed = {
        "AftersalesSlaBreachesRising": "aftersales_sla_breaches",
        "AftersalesPartnerFailing": "aftersales_connector_call_seconds_count",
        "AftersalesWorkflowTaskFailing": "temporal_workflow_task_execution_failed",
        "AftersalesProjectionLagging": "aftersales_projection_lag_seconds_bucket",
        "AftersalesProjectionFailing": "aftersales_projection_failures_total",
        "AftersalesWorkflowQueueBackingUp":
            "temporal_workflow_task_schedule_to_start_latency_bucket",
        "AftersalesActivityQueueBackingUp": "temporal_activity_schedule_to_start_latency_bucket",
    }  # fmt: skip
    for alert, metric in needed.items():
        assert metric in selected.get(alert, set()), (alert, selected.get(alert))
    runbooks = {rule["annotations"]["runbook_url"].partition("#")[2] for rule in rules()}
    assert {"sla-breaches-rising", "a-partner-failing", "a-workflow-task-failing",
            "projection-lag", "a-queue-backing-up"} <= runbooks  # fmt: skip
