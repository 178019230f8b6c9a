"""A real SMTP server (aiosmtpd) that keeps every message it receives."""

from __future__ import annotations

import email
import threading
from email.message import Message
from email.policy import default
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.ports import free_port


class MailSink:
    """aiosmtpd handler and controller in one: start it, point SMTP at `url`, read `messages`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[Message] = []
        self.port = free_port()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the message."""
        parsed = email.message_from_bytes(envelope.content, policy=default)
        with self._lock:
            self._messages.append(parsed)
        return "250 OK"

    @property
    def url(self) -> str:
        """The `AFTERSALES_SMTP_URL` for this server."""
        return f"smtp://127.0.0.1:{self.port}"

    @property
    def messages(self) -> list[Message]:
        """Every message received so far."""
        with self._lock:
            return list(self._messages)

    def to(self, address: str) -> list[Message]:
        """Messages addressed to one recipient."""
        return [m for m in self.messages if address in str(m["To"])]

    def start(self) -> MailSink:
        """Start listening."""
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        self._controller.stop()
