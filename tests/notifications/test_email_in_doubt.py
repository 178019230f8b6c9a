"""The SMTP exchange split at DATA: what happens before is safe to retry, after is in doubt."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from notifications.email import DeliveryInDoubt, is_permanent, send_email
from notifications.render import RenderedMessage
from tests.support.ports import free_port

MESSAGE = RenderedMessage(subject="Hello", text="Hi", html="<p>Hi</p>")


class Server:
    """Refuses RCPT, refuses DATA or hangs up during DATA, as told."""

    def __init__(
        self, *, rcpt: str | None = None, data: str | None = None, hang_up: bool = False
    ) -> None:
        self.rcpt, self.data, self.hang_up = rcpt, data, hang_up
        self.received: list[bytes] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.rcpt:
            return self.rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope.original_content or b"")
        if self.hang_up:
            assert server.transport is not None
            server.transport.close()
        return self.data or "250 OK"


@pytest.fixture
def serve() -> Iterator[Any]:
    controllers: list[Controller] = []

    def start(handler: Server) -> str:
        port = free_port()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()
        controllers.append(controller)
        return f"smtp://127.0.0.1:{port}"

    yield start
    for controller in controllers:
        controller.stop()


async def _send(
    url: str,
    marks: list[str],
    *,
    message: RenderedMessage = MESSAGE,
    record: Callable[[], Awaitable[None]] | None = None,
) -> None:
    async def before_data() -> None:
        marks.append("in_doubt")

    await send_email(
        smtp_url=url,
        mail_from="shop@shop.example",
        to="amy@example.com",
        message=message,
        message_id="R-1:case_received.1:email",
        before_data=record or before_data,
    )


async def test_accepted_message_marks_in_doubt_first(serve: Any) -> None:
    server = Server()
    marks: list[str] = []
    await _send(serve(server), marks)
    assert marks == ["in_doubt"] and len(server.received) == 1
    assert b"Message-ID: <R-1.case_received.1.email@aftersales>" in server.received[0]


async def test_refused_recipient_never_reaches_the_point_of_no_return(serve: Any) -> None:
    marks: list[str] = []
    with pytest.raises(aiosmtplib.SMTPResponseException) as err:
        await _send(serve(Server(rcpt="550 no such user")), marks)
    assert marks == [] and is_permanent(err.value)
    with pytest.raises(aiosmtplib.SMTPResponseException) as err:
        await _send(serve(Server(rcpt="450 try later")), marks)
    assert marks == [] and not is_permanent(err.value)


async def test_refused_data_is_a_known_failure(serve: Any) -> None:
    marks: list[str] = []
    with pytest.raises(aiosmtplib.SMTPResponseException) as err:
        await _send(serve(Server(data="451 try later")), marks)
    assert marks == ["in_doubt"] and not is_permanent(err.value)


async def test_hang_up_during_data_is_in_doubt(serve: Any) -> None:
    marks: list[str] = []
    server = Server(hang_up=True)
    with pytest.raises(DeliveryInDoubt):
        await _send(serve(server), marks)
    assert marks == ["in_doubt"] and len(server.received) == 1


async def test_a_failure_before_the_end_mark_hands_over_nothing(serve: Any) -> None:
    # The content is out, but the record of the point of no return fails (say the database
    # is full): the server never gets the end mark, keeps nothing, and a retry sends it once.
    server = Server()
    url = serve(server)

    async def record_fails() -> None:
        raise RuntimeError("database or disk is full")

    marks: list[str] = []
    with pytest.raises(RuntimeError):
        await _send(url, marks, record=record_fails)
    await _send(url, marks)
    assert marks == ["in_doubt"] and len(server.received) == 1


async def test_lines_starting_with_a_dot_arrive_as_written(serve: Any) -> None:
    server = Server()
    dots = RenderedMessage(subject="Dots", text=".\n.. twice\nend", html="<p>x</p>")
    await _send(serve(server), [], message=dots)
    assert b"\r\n.\r\n.. twice\r\nend" in server.received[0]
