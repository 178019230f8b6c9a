"""How an activity fails: the error types workflows tell apart, with short readable messages.

Temporal keeps an activity's last failure on the pending activity and in the history. A long
message with a chain of httpx causes and their stack traces outgrows the server's failure size
limit and is shown as "Failure exceeds size limit", so every failure raised here is one short
message, without a cause chain.
"""

from __future__ import annotations

from temporalio.exceptions import ApplicationError

# A partner answered 4xx: the same request will be refused again; an agent must act.
CONNECTOR_REJECTED = "ConnectorRejected"
# A setting, template or piece of code is wrong: retrying can't fix it; someone must.
CONFIGURATION_ERROR = "ConfigurationError"
# 5xx, timeouts, refused connections: worth retrying with backoff, up to the retry cap.
CONNECTOR_UNAVAILABLE = "ConnectorUnavailable"

# Long enough for a status, a partner's one-line reason and a setting's name; short enough to
# read on a timeline and to stay far below Temporal's failure size limit.
MESSAGE_LIMIT = 300


def short(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """`text` on one line, cut to `limit` characters with an ellipsis when longer."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def rejected(message: str) -> ApplicationError:
    """A partner's final refusal (4xx): non-retryable, for the workflow to escalate."""
    return ApplicationError(short(message), type=CONNECTOR_REJECTED, non_retryable=True)


def misconfigured(message: str) -> ApplicationError:
    """A configuration or programming error: non-retryable, naming what to fix."""
    return ApplicationError(short(message), type=CONFIGURATION_ERROR, non_retryable=True)


def unavailable(message: str) -> ApplicationError:
    """A transient failure: retried by the activity's retry policy."""
    return ApplicationError(short(message), type=CONNECTOR_UNAVAILABLE)
