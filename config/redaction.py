"""What may never reach a log line or a span: status tokens, keys, secrets and passwords."""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "<redacted>"
# A customer's status token is a bearer credential that sits in the URL path
# (/status/<token> and /status/<token>/actions); anyone reading the log could act as the customer.
_STATUS_TOKEN = re.compile(r"(/status/)[^/?#\s\"']+")
# Credentials by their shape, whatever their value: bearer and basic credentials (an
# Authorization header printed in an error), token/secret/key/password parameters (a query
# string, a form), and the password in a URL's user info (a database or SMTP URL).
_SHAPES = (
    re.compile(r"(\b(?:Bearer|Basic)\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE),
    re.compile(
        r"(\bauthorization[\"']?\s*[:=]\s*[\"']?)(?!(?:Bearer|Basic)\s)[^\s\"',}]+",
        re.IGNORECASE,
    ),
    re.compile(
        r"(\b[\w-]*(?:token|secret|password|passwd|api[_-]?key)[\"']?\s*[=:]\s*[\"']?)"
        r"(?!<redacted>)[^\s&\"',;}]+",
        re.IGNORECASE,
    ),
    re.compile(r"(://[^:/?#\s@]+:)[^@/?#\s]+(?=@)"),
)
# Shorter configured values are left alone: redacting "dev" or "1" would mangle every line.
MIN_SECRET_LENGTH = 6

_secrets: re.Pattern[str] | None = None
_values: tuple[str, ...] = ()


def set_secrets(values: Iterable[str | None]) -> None:
    """Redact these exact values (the process's API keys and secrets) from now on."""
    global _secrets, _values
    kept = sorted({v for v in values if v and len(v) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
    _values = tuple(kept)
    _secrets = re.compile("|".join(re.escape(v) for v in kept)) if kept else None


def secret_values() -> tuple[str, ...]:
    """The exact values redacted now (`set_secrets`)."""
    return _values


def redact(text: str) -> str:
    """`text` with every status token, configured secret and credential replaced by <redacted>."""
    text = _STATUS_TOKEN.sub(rf"\g<1>{REDACTED}", text)
    if _secrets is not None:
        text = _secrets.sub(REDACTED, text)
    for shape in _SHAPES:
        text = shape.sub(rf"\g<1>{REDACTED}", text)
    return text
