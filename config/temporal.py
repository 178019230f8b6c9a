"""Connecting to Temporal: the client every process uses, with the service's data converter."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, PydanticUserError, TypeAdapter
from pydantic_core import to_json
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, Interceptor, TLSConfig
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from config.settings import Settings


@functools.lru_cache(maxsize=1024)
def _adapter(type_hint: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_hint)


def _structured(value: Any) -> bool:
    return isinstance(value, BaseModel) or (
        dataclasses.is_dataclass(value) and not isinstance(value, type)
    )


class SharedAdapterJSONConverter(PydanticJSONPlainPayloadConverter):
    """pydantic's JSON payload converter, with one TypeAdapter cache for the whole process.

    The SDK's converter caches its TypeAdapters per converter instance, and the workflow
    sandbox gives every workflow run a copy of the converter with an empty cache: each run
    built a TypeAdapter for its `CaseInput` (and each activity result type) again, which cost
    more worker CPU than decoding the payloads.
    """

    def to_payload(self, value: Any) -> Payload | None:
        """JSON without the fields that hold their default: decoding restores them."""
        # A case's history holds every activity input, and most of their fields sit at the
        # default (no data, no deadline, no webhook yet): leaving them out made histories
        # about a quarter smaller (docs/benchmarks.md). Plain values go through unchanged.
        kind: Any = type(value)
        try:
            data = (
                _adapter(kind).dump_json(value, exclude_defaults=True)
                if _structured(value)
                else to_json(value)
            )
        except PydanticUserError:
            # A type whose string annotations pydantic can't resolve from inside the workflow
            # sandbox goes out whole, as the SDK's converter sends it.
            data = to_json(value)
        return Payload(metadata={"encoding": self.encoding.encode()}, data=data)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        """Validate the JSON payload as `type_hint` with the process's cached TypeAdapter."""
        try:
            adapter = _adapter(Any if type_hint is None else type_hint)
        except TypeError:  # an unhashable hint: the SDK's own path handles it
            return super().from_payload(payload, type_hint)
        return adapter.validate_json(payload.data)


class CasePayloadConverter(CompositePayloadConverter):
    """The SDK's default converters, with pydantic JSON in place of plain JSON (as
    `temporalio.contrib.pydantic.pydantic_data_converter`, with the shared cache)."""

    def __init__(self) -> None:
        json = SharedAdapterJSONConverter()
        super().__init__(
            *(
                json if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


# What every client and worker of the service converts payloads with.
data_converter = DataConverter(payload_converter_class=CasePayloadConverter)


def runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting the SDK's metrics to Prometheus at the configured
    address; None (the SDK's default runtime) when none is configured."""
    if not settings.temporal_metrics_address:
        return None
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(bind_address=settings.temporal_metrics_address)
        )
    )


async def connect(
    settings: Settings,
    *,
    with_runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """A client for the configured cluster, with TLS or an API key when set; `interceptors`
    apply to its calls and to the workers built on it (tracing, config.tracing)."""
    tls: TLSConfig | bool = False
    ca = settings.temporal_tls_ca.read_bytes() if settings.temporal_tls_ca else None
    if settings.temporal_tls_cert and settings.temporal_tls_key:
        tls = TLSConfig(
            client_cert=settings.temporal_tls_cert.read_bytes(),
            client_private_key=settings.temporal_tls_key.read_bytes(),
            server_root_ca_cert=ca,
        )
    elif ca:
        tls = TLSConfig(server_root_ca_cert=ca)
    elif settings.temporal_api_key:
        tls = True
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        tls=tls,
        data_converter=data_converter,
        runtime=with_runtime,
        interceptors=interceptors,
    )


async def connect_patiently(
    settings: Settings,
    *,
    seconds: float = 15.0,
    with_runtime: Runtime | None = None,
    interceptors: Sequence[Interceptor] = (),
) -> Client:
    """`connect`, retried while the server is still coming up (its port open, not yet serving)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            return await connect(settings, with_runtime=with_runtime, interceptors=interceptors)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
