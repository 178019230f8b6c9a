"""Tracing follows the OpenTelemetry SDK's environment variables, and is off when none asks."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.resources import SERVICE_NAME

from config.redaction import redact, secret_values, set_secrets
from config.tracing import exporter_names, temporal_interceptors, tracer_provider


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "x"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp,console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_SDK_DISABLED": "TRUE"}, []),
    ],
)
def test_exporters_named_by_the_environment(environ: dict[str, str], names: list[str]) -> None:
    assert exporter_names(environ) == names


def test_off_installs_nothing() -> None:
    assert tracer_provider("aftersales-api", environ={}) is None
    assert temporal_interceptors(None) == []


def test_on_exports_to_the_named_exporter_under_the_service_name() -> None:
    provider = tracer_provider(
        "aftersales-worker",
        environ={"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"},
    )
    assert provider is not None
    try:
        assert provider.resource.attributes[SERVICE_NAME] == "aftersales-worker"
        assert len(temporal_interceptors(provider)) == 1
    finally:
        provider.shutdown()


def test_an_unknown_exporter_is_named_in_the_error() -> None:
    with pytest.raises(ValueError, match=r"'zipkin'.*installed: .*console"):
        tracer_provider("aftersales-api", environ={"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(ValueError, match=r"grpc|http/protobuf"):
        tracer_provider(
            "aftersales-api",
            environ={"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "thrift"},
        )


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("GET /status/AbC-12_x/actions HTTP/1.1", "GET /status/<redacted>/actions HTTP/1.1"),
        ("Authorization: Bearer sk_live_123", "Authorization: Bearer <redacted>"),
        ("GET /x?token=abc&page=2", "GET /x?token=<redacted>&page=2"),
        ("{'api_key': 'k-1234567'}", "{'api_key': '<redacted>'}"),
        ("postgresql://app:hunter2@db/aftersales", "postgresql://app:<redacted>@db/aftersales"),
        ("signed with the-configured-secret", "signed with <redacted>"),
        ("case R-1 approved", "case R-1 approved"),
    ],
)
def test_what_redaction_hides(text: str, shown: str) -> None:
    # Added to (then restored) what this process redacts: another test's stack may be logging.
    before = secret_values()
    set_secrets([*before, "the-configured-secret", "dev"])
    try:
        assert redact(text) == shown
    finally:
        set_secrets(before)
