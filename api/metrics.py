"""Business metrics for `/metrics`: cases, the agents' queue, breaches and notifications.

A prometheus-client collector per app, read from the database (store.figures) at most once
per CACHE_SECONDS: Prometheus scrapes every replica, and each scrape must stay one cheap
round of GROUP BYs on indexed columns, whatever the number of cases.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

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
        opened: dict[tuple[str], int] = {}
        for (case_type, _), count in found.cases.items():
            opened[(case_type,)] = opened.get((case_type,), 0) + count
        ended = {key: n for key, n in found.cases.items() if key[1] in ENDED}
        refunds = found.refunds.items()
        yield from (
            _gauge("aftersales_cases", "Cases by type and status.", ["type", "status"],
                   found.cases),
            _gauge("aftersales_cases_opened", "Cases ever opened, by type.", ["type"], opened),
            _gauge("aftersales_cases_ended",
                   "Cases that ended, by type and how (closed, rejected, cancelled, expired).",
                   ["type", "outcome"], ended),
            _gauge("aftersales_cases_outcome",
                   "Cases by what they gave the customer (refund, kept_item, exchange, repair).",
                   ["type", "outcome"], found.outcomes),
            _gauge("aftersales_cases_waiting_on_agent",
                   "Open cases an agent must act on, by queue (the console's queue).",
                   ["queue"], {(q,): n for q, n in found.waiting_on_agent.items()}),
            _gauge("aftersales_cases_sla_breached_open",
                   "Open cases escalated for a missed deadline, by type.",
                   ["type"], {(t,): n for t, n in found.breached_open.items()}),
            _gauge("aftersales_notifications",
                   "Customer and operations messages by channel and delivery status.",
                   ["channel", "status"], found.notifications),
            _gauge("aftersales_sla_breaches",
                   "Deadlines that came due unmet, by timer (each escalated once).",
                   ["timer"], {(t,): n for t, n in found.breaches.items()}),
            _gauge("aftersales_refunds",
                   "Cases' refunds by status (requested, pending, succeeded, failed) and "
                   "currency.", ["status", "currency"], {k: n for k, (n, _) in refunds}),
            _gauge("aftersales_refund_amount",
                   "The amount of cases' refunds by status, in the currency's units.",
                   ["status", "currency"], {k: cents / 100 for k, (_, cents) in refunds}),
        )  # fmt: skip


def _gauge(
    name: str, documentation: str, labels: list[str], values: Mapping[Any, float]
) -> GaugeMetricFamily:
    # `values` maps each label tuple (as long as `labels`) to its value.
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values.items()):
        family.add_metric(list(key), value)
    return family


def business_registry(engine: Engine) -> CollectorRegistry:
    """A registry holding the app's business collector (one per app: tests run several)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BusinessCollector(engine))
    return registry
