"""OpenTelemetry tracing, off unless the standard `OTEL_*` variables switch it on.

Off (the default) nothing is installed: no tracer provider, no Temporal interceptor, no
instrumented HTTP client, so the hot open path pays nothing. On, one process's spans go to
the exporters `OTEL_TRACES_EXPORTER` names, each configured by its own `OTEL_EXPORTER_*`
variables (the SDK's conventions; docs/operations.md, "Logs and traces").
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.contrib.opentelemetry import TracingInterceptor

# What the SDK reads: tracing stays off unless one of these asks for it.
_ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_EXPORTER_GROUP = "opentelemetry_traces_exporter"
# `otlp` by protocol, as the SDK's own names for the two OTLP exporter packages.
_OTLP_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}


def exporter_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """The trace exporters the environment asks for; empty means tracing is off.

    OTEL_SDK_DISABLED=true turns it off whatever else is set. OTEL_TRACES_EXPORTER names the
    exporters (comma-separated, `none` for none); without it, an OTLP endpoint alone
    (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT) means `otlp`. Unlike the SDK's own default
    (`otlp` always), nothing set means off: a shop that never asked for traces must not have a
    process trying to reach a collector on localhost.
    """
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = env.get("OTEL_TRACES_EXPORTER", "").strip()
    if not named:
        return ["otlp"] if any(env.get(name, "").strip() for name in _ENDPOINTS) else []
    names = [n.strip().lower() for n in named.split(",") if n.strip()]
    return [] if names == ["none"] else [n for n in names if n != "none"]


def _exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    """The exporter registered under `name` (`otlp` by OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL)."""
    entry = name
    if name == "otlp":
        protocol = (
            env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
            or "http/protobuf"
        ).strip()
        if protocol not in _OTLP_BY_PROTOCOL:
            raise ValueError(
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: use one of "
                f"{', '.join(_OTLP_BY_PROTOCOL)}"
            )
        entry = _OTLP_BY_PROTOCOL[protocol]
    found = entry_points(group=_EXPORTER_GROUP, name=entry)
    if not found:
        known = sorted({"otlp", *(e.name for e in entry_points(group=_EXPORTER_GROUP))})
        raise ValueError(
            f"OTEL_TRACES_EXPORTER names {name!r}, but no such exporter is installed "
            f"(installed: {', '.join(known)}; otlp over grpc needs its own package)"
        )
    exporter: SpanExporter = next(iter(found)).load()()
    return exporter


def tracer_provider(
    service: str,
    exporters: list[SpanExporter] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> TracerProvider | None:
    """A tracer provider exporting to the configured exporters, or None when tracing is off.

    `service` is the default `service.name` (OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES
    win). `exporters` replaces what the environment names (a test's in-memory exporter); they
    get a simple processor, so a test sees each span as it ends.
    """
    env = os.environ if environ is None else environ
    names = exporter_names(env) if exporters is None else []
    if exporters is None and not names:
        return None
    # Imported only when tracing is on: off, the SDK never loads.
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    named_elsewhere = "OTEL_SERVICE_NAME" in env or "service.name=" in env.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, but attributes
    # passed to it win: pass the default name only when neither sets one.
    resource = Resource.create({} if named_elsewhere else {SERVICE_NAME: service})
    # The provider reads OTEL_TRACES_SAMPLER(_ARG) itself.
    provider = TracerProvider(resource=resource)
    if exporters is not None:
        for exporter in exporters:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        for name in names:
            # Batched (OTEL_BSP_* tune it): a request never waits on the collector.
            provider.add_span_processor(BatchSpanProcessor(_exporter(name, env)))
    return provider


def configure_tracing(service: str) -> TracerProvider | None:
    """The process's tracer provider from the environment, installed as the global one; None
    (and nothing installed) when tracing is off."""
    provider = tracer_provider(service)
    if provider is not None:
        from opentelemetry import trace

        trace.set_tracer_provider(provider)
    return provider


def temporal_interceptors(provider: TracerProvider | None) -> list[TracingInterceptor]:
    """The Temporal client's (and so its workers') tracing interceptor; none when off."""
    if provider is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor(provider.get_tracer("aftersales.temporal"))]


def instrument_http(client: httpx.AsyncClient, provider: TracerProvider | None) -> None:
    """Give an outbound client a span per request (and the traceparent header); no-op off."""
    if provider is None:
        return
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    HTTPXClientInstrumentor.instrument_client(client, tracer_provider=provider)


def shutdown(provider: Any) -> None:
    """Flush and stop a provider from `configure_tracing` (None: nothing to do)."""
    if provider is not None:
        provider.shutdown()
