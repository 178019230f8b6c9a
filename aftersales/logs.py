"""Logging set-up shared by every process: what may never reach a log line."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import uvicorn.config

REDACTED = "<redacted>"
# A customer's status token is a bearer credential that sits in the URL path
# (/status/<token> and /status/<token>/actions); anyone reading the log could act as the customer.
_STATUS_TOKEN = re.compile(r"(/status/)[^/?#\s\"]+")


def redact(text: str) -> str:
    """`text` with every status token replaced by <redacted>."""
    return _STATUS_TOKEN.sub(rf"\g<1>{REDACTED}", text)


class RedactStatusTokens(logging.Filter):
    """Rewrite /status/<token> to /status/<redacted> in a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging config, with status tokens redacted from the access log."""
    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_status_tokens"] = {"()": RedactStatusTokens}
    # On the logger (not a handler) so no handler added later can see the raw path.
    config["loggers"]["uvicorn.access"]["filters"] = ["redact_status_tokens"]
    return config
