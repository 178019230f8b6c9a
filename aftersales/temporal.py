"""Connecting to Temporal: client, data converter and search attributes."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client, TLSConfig
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError, RPCStatusCode

from aftersales.settings import Settings
from workflows import search


async def connect(settings: Settings) -> Client:
    """A client for the configured cluster, with TLS or an API key when set."""
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
        data_converter=pydantic_data_converter,
    )


async def connect_patiently(settings: Settings, *, seconds: float = 15.0) -> Client:
    """`connect`, retried while the server is still coming up (its port open, not yet serving)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        try:
            return await connect(settings)
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


def search_attribute_flags() -> list[str]:
    """The dev server's `--search-attribute` flags for every case search attribute."""
    return [f"--search-attribute={key.name}={_type_name(key)}" for key in search.ALL]


def _type_name(key: SearchAttributeKey) -> str:  # type: ignore[type-arg]
    return {"KEYWORD": "Keyword", "BOOL": "Bool", "DATETIME": "Datetime"}[
        key.indexed_value_type.name
    ]


def search_attribute_keys() -> list[SearchAttributeKey]:  # type: ignore[type-arg]
    """The case search attributes, for `WorkflowEnvironment.start_local`."""
    return list(search.ALL)


async def register_search_attributes(client: Client) -> list[str]:
    """Add the case search attributes the namespace lacks; answers the names it added."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
        existing = set(listed.custom_attributes)
    except RPCError as err:
        # The time-skipping test server can add search attributes but not list them.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        existing = set()
    missing = {
        # The SDK's enum mirrors the API's indexed value type numbers.
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in search.ALL
        if key.name not in existing
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
