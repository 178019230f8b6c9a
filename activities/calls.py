"""Connector calls as activities see them: a 4xx becomes a final, non-retryable error."""

from __future__ import annotations

from typing import Any

from temporalio.exceptions import ApplicationError

from activities.connectors import Connector, ConnectorRejected


async def call(
    connector: Connector, path: str, payload: dict[str, Any], *, key: str
) -> dict[str, Any]:
    """Post to a connector once; Temporal's retry policy retries what is worth retrying."""
    try:
        return await connector.post(path, payload, idempotency_key=key)
    except ConnectorRejected as err:
        # Retrying a refused request can't help: an agent has to look at it.
        raise ApplicationError(
            f"{connector.name} answered {err.status}: {err.detail}",
            type="ConnectorRejected",
            non_retryable=True,
        ) from err
