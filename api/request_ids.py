"""A request ID for every API request, and the fields its log lines carry (request_id, case_id).

The ID is the caller's X-Request-ID when it sent a sane one (so a storefront can follow its
own request through our logs), else a new one; either way the answer echoes it.
"""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode()
# What we take from a caller: short, and nothing that could forge a log field or line.
_SANE = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
# /v1/cases/<id>[/...] (not the list, nor /v1/cases/<id> of another resource family).
_CASE_PATH = re.compile(r"^/v1/cases/([A-Za-z0-9_-]+)(?:/|$)")

# One dict per request, shared (not copied) by the threads the request's work runs in, so
# a route that learns the case ID (an open) binds it for every later line of the request.
_FIELDS: ContextVar[dict[str, str] | None] = ContextVar("aftersales_request_fields", default=None)


def fields() -> dict[str, str]:
    """The log fields of the request being served here (empty outside a request)."""
    return _FIELDS.get() or {}


def bind(**values: str) -> None:
    """Add fields (e.g. case_id) to the current request's log lines; no-op outside one."""
    current = _FIELDS.get()
    if current is not None:
        current.update(values)


def request_id_of(headers: list[tuple[bytes, bytes]]) -> str:
    """The caller's X-Request-ID if sane, else a new random one."""
    for key, value in headers:
        if key == _HEADER_KEY:
            text = value.decode("latin-1").strip()
            if _SANE.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class RequestIds:
    """ASGI middleware: sets the request's log fields and echoes X-Request-ID on the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope["headers"])
        values = {"request_id": request_id}
        if match := _CASE_PATH.match(scope["path"]):
            values["case_id"] = match.group(1)
        token = _FIELDS.set(values)
        header = (_HEADER_KEY, request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _FIELDS.reset(token)
