"""Connector calls as activities see them: each failure becomes a short, classified error.

A 4xx is final (ConnectorRejected), a URL that can't work is a ConfigurationError, and a 5xx,
timeout or refused connection is left to the retry policy (activities.policy.CONNECTOR_RETRY).
"""

from __future__ import annotations

from typing import Any

from activities import errors
from activities.connectors import (
    Connector,
    ConnectorError,
    ConnectorRejected,
    ConnectorRetryable,
)


async def call(
    connector: Connector, path: str, payload: dict[str, Any], *, key: str
) -> dict[str, Any]:
    """Post to a connector once; Temporal's retry policy retries what is worth retrying."""
    if not key:
        # A programming error: every retry would send the same keyless call.
        raise errors.misconfigured(f"{connector.name} {path or '/'} called without a key")
    try:
        return await connector.post(path, payload, idempotency_key=key)
    # `from None` everywhere: the httpx cause chain and its stack traces would only make the
    # failure too big for Temporal to show (see activities.errors).
    except ConnectorRejected as err:
        # Retrying a refused request can't help: an agent has to look at it.
        raise errors.rejected(f"{connector.name} answered {err.status}: {err.detail}") from None
    except ConnectorRetryable as err:
        raise errors.unavailable(str(err)) from None
    except ConnectorError as err:
        raise errors.misconfigured(str(err)) from None
