"""HMAC signatures for connector traffic: `X-Aftersales-Signature: t=<ts>,v1=<hex>` (DESIGN 7)."""

from __future__ import annotations

import hashlib
import hmac
import re

HEADER = "X-Aftersales-Signature"
DEFAULT_TOLERANCE = 300

_TIMESTAMP = re.compile(r"\d{1,12}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
# A real header has two parts; anything far longer is garbage not worth parsing.
_MAX_HEADER = 1024


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """Build the signature header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    *,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE,
) -> bool:
    """True only if `header` is a well-formed, fresh signature of `body` under `secret`."""
    if not header or len(header) > _MAX_HEADER:
        return False
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                return False
            timestamp = int(value)
        elif key == "v1":
            # Several v1 entries are allowed so a sender can sign with old and new secret
            # while a secret is being rotated.
            candidates.append(value.lower())
        # Unknown schemes (v0, v2, ...) are ignored rather than refused, for forward compatibility.
    if timestamp is None or not candidates:
        return False
    # Replay protection cuts both ways: a far-future timestamp would stay "fresh" for too long.
    if abs(now - timestamp) > tolerance:
        return False
    expected = _digest(secret, body, timestamp)
    matched = False
    for candidate in candidates:
        # Regex first: compare_digest refuses non-ASCII str, and a short value is simply wrong.
        if _DIGEST.fullmatch(candidate) and hmac.compare_digest(expected, candidate):
            matched = True
    return matched
