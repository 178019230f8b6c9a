"""The case search attributes: the dev server's command line and their registration on a
cluster."""

from __future__ import annotations

from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.service import RPCError, RPCStatusCode

from aftersales.binaries import find
from workflows import search


def search_attribute_flags() -> list[str]:
    """The dev server's `--search-attribute` flags for every case search attribute."""
    return [f"--search-attribute={key.name}={_type_name(key)}" for key in search.ALL]


def dev_server_argv(
    *, db: Path, port: int, ui_port: int | None = None, log_level: str = "warn"
) -> list[str]:
    """The Temporal dev server on a SQLite file (a restart keeps every workflow), listening on
    loopback, with the case search attributes (registered by the server itself at start);
    `ui_port` None runs it headless."""
    ui = ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
    return [
        find("temporal"),
        "server",
        "start-dev",
        "--db-filename",
        str(db),
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        *ui,
        "--log-level",
        log_level,
        *search_attribute_flags(),
    ]


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
