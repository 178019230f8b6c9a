"""Business metrics for `/metrics`: cases, the agents' queue, breaches and notifications.

A prometheus-client collector per app, read from the database (store.figures) at most once
per CACHE_SECONDS: Prometheus scrapes every replica, and each scrape must stay one cheap
round of GROUP BYs on indexed columns, whatever the number of cases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from sqlalchemy import Engine

from domain.models import TERMINAL_STATUSES
from store.figures import Figures, figures

CACHE_SECONDS = 10.0
ENDED = frozenset(s.value for s in TERMINAL_STATUSES)


class BusinessCollector(Collector):
    """Reads the figures from the database and labels them for Prometheus."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._read_at = 0.0
        self._figures: Figures | None = None

    def _current(self) -> Figures:
        with self._lock:
            if self._figures is None or time.monotonic() - self._read_at > CACHE_SECONDS:
                with self.engine.connect() as conn:
                    self._figures = figures(conn)
                self._read_at = time.monotonic()
            return self._figures

    def collect(self) -> Iterator[Metric]:
        """The metric families, from figures at most CACHE_SECONDS old."""
        found = self._current()
        cases = GaugeMetricFamily(
            "aftersales_cases", "Cases by type and status.", labels=["type", "status"]
        )
        opened = GaugeMetricFamily(
            "aftersales_cases_opened", "Cases ever opened, by type.", labels=["type"]
        )
        ended = GaugeMetricFamily(
            "aftersales_cases_ended",
            "Cases that ended, by type and how (closed, rejected, cancelled, expired).",
            labels=["type", "outcome"],
        )
        given = GaugeMetricFamily(
            "aftersales_cases_outcome",
            "Cases by what they gave the customer (refund, kept_item, exchange, repair).",
            labels=["type", "outcome"],
        )
        for (case_type, outcome), count in sorted(found.outcomes.items()):
            given.add_metric([case_type, outcome], count)
        by_type: dict[str, int] = {}
        for (case_type, status), count in sorted(found.cases.items()):
            cases.add_metric([case_type, status], count)
            by_type[case_type] = by_type.get(case_type, 0) + count
            if status in ENDED:
                ended.add_metric([case_type, status], count)
        for case_type, count in sorted(by_type.items()):
            opened.add_metric([case_type], count)
        yield from (cases, opened, ended, given)

        waiting = GaugeMetricFamily(
            "aftersales_cases_waiting_on_agent",
            "Open cases an agent must act on, by queue (the console's queue).",
            labels=["queue"],
        )
        for queue, count in sorted(found.waiting_on_agent.items()):
            waiting.add_metric([queue], count)
        breached = GaugeMetricFamily(
            "aftersales_cases_sla_breached_open",
            "Open cases escalated for a missed deadline, by type.",
            labels=["type"],
        )
        for case_type, count in sorted(found.breached_open.items()):
            breached.add_metric([case_type], count)
        notifications = GaugeMetricFamily(
            "aftersales_notifications",
            "Customer and operations messages by channel and delivery status.",
            labels=["channel", "status"],
        )
        for (channel, status), count in sorted(found.notifications.items()):
            notifications.add_metric([channel, status], count)
        breaches = GaugeMetricFamily(
            "aftersales_sla_breaches",
            "Deadlines that came due unmet, by timer (each escalated once).",
            labels=["timer"],
        )
        for timer, count in sorted(found.breaches.items()):
            breaches.add_metric([timer], count)
        refunds = GaugeMetricFamily(
            "aftersales_refunds",
            "Cases' refunds by status (requested, pending, succeeded, failed) and currency.",
            labels=["status", "currency"],
        )
        amounts = GaugeMetricFamily(
            "aftersales_refund_amount",
            "The amount of cases' refunds by status, in the currency's units.",
            labels=["status", "currency"],
        )
        for (status, currency), (count, cents) in sorted(found.refunds.items()):
            refunds.add_metric([status, currency], count)
            amounts.add_metric([status, currency], cents / 100)
        yield from (waiting, breached, notifications, breaches, refunds, amounts)


def business_registry(engine: Engine) -> CollectorRegistry:
    """A registry holding the app's business collector (one per app: tests run several)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BusinessCollector(engine))
    return registry
