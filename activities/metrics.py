"""The worker's own metrics (prometheus-client): every call to a partner, by result and time,
and how far the case records trail their workflows (the projection's lag and failures).

Served by the worker at `AFTERSALES_WORKER_METRICS_ADDRESS` (`serve_metrics`). The Temporal
SDK's metrics (task latencies, slots, polls) come from the runtime's own Prometheus endpoint
at `AFTERSALES_TEMPORAL_METRICS_ADDRESS` (config.temporal.runtime).
"""

from __future__ import annotations

from enum import StrEnum

from prometheus_client import Counter, Histogram, start_http_server


class CallResult(StrEnum):
    """How a connector call ended, as the metric labels it."""

    OK = "ok"  # a 2xx answer
    SANDBOX = "sandbox"  # no URL configured: the built-in sandbox answered
    REJECTED = "rejected"  # a 4xx (or a redirect): final, the case escalates
    RETRYABLE = "retryable"  # a 5xx, 429/408, a timeout or a dropped connection
    MISCONFIGURED = "misconfigured"  # a URL that can never work
    ERROR = "error"  # anything else: a bug, or the call cancelled (the activity timed out)


CONNECTOR_CALLS = Histogram(
    "aftersales_connector_call_seconds",
    "Calls to partners (payment, carrier, webhook, sms): how long each took, by result.",
    ["partner", "result"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

# From the moment a workflow scheduled a projection (its first attempt) to the moment it
# committed: queueing, retries while the database is away, and the write itself. The lists,
# the console and the status page show a case this far behind its workflow.
PROJECTION_LAG = Histogram(
    "aftersales_projection_lag_seconds",
    "How long after its workflow scheduled it a case's projection was committed.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
# A projection stuck retrying commits nothing, so the lag can't show it until it lands:
# each failed attempt counts here at once.
PROJECTION_FAILURES = Counter(
    "aftersales_projection_failures",
    "Projection attempts that failed (the activity retries them).",
)


def serve_metrics(address: str) -> None:
    """Serve this process's prometheus-client metrics over HTTP at `host:port`."""
    host, _, port = address.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0")
