"""Send through a real SMTP server (aiosmtpd) and classify what it refuses."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from notifications.email import (
    SmtpTarget,
    is_permanent,
    message_id_header,
    parse_smtp_url,
    send_email,
)
from notifications.render import RenderedMessage, render_message
from notifications.samples import STATUS_URL, context, sample_case
from tests.support.ports import free_port

MAIL_FROM = "Shop Returns <returns@shop.example>"
TO = "amy@example.com"


class Collector:
    """Keeps every envelope the server accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


class Refuser(Collector):
    """Answers every RCPT TO with a fixed reply."""

    def __init__(self, reply: str) -> None:
        super().__init__()
        self.reply = reply

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        return self.reply


def smtp_server(handler: Any) -> Iterator[str]:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield f"smtp://127.0.0.1:{controller.port}"
    finally:
        controller.stop()


def lines(body: str) -> list[str]:
    return body.strip().splitlines()


@pytest.fixture
def collector() -> Collector:
    return Collector()


@pytest.fixture
def smtp_url(collector: Collector) -> Iterator[str]:
    yield from smtp_server(collector)


def received(collector: Collector) -> EmailMessage:
    assert len(collector.envelopes) == 1
    raw = collector.envelopes[0].original_content or collector.envelopes[0].content
    assert isinstance(raw, bytes)
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


@pytest.mark.parametrize("locale", ["en", "zh-TW"])
async def test_send_email_delivers_both_parts_with_the_message_id(
    collector: Collector, smtp_url: str, locale: str
) -> None:
    rendered = render_message("case_received", locale, context(sample_case(), "case_received"))
    await send_email(
        smtp_url=smtp_url,
        mail_from=MAIL_FROM,
        to=TO,
        message=rendered,
        message_id="R-7Q2K9MXA.case_received.email",
    )

    envelope = collector.envelopes[0]
    mail = received(collector)
    assert envelope.mail_from == "returns@shop.example"
    assert envelope.rcpt_tos == [TO]
    assert mail["Message-ID"] == "<R-7Q2K9MXA.case_received.email@aftersales>"
    assert mail["From"] == MAIL_FROM
    assert mail["To"] == TO
    assert mail["Subject"] == rendered.subject
    assert mail["Date"]
    assert mail.get_content_type() == "multipart/alternative"

    text = mail.get_body(preferencelist=("plain",))
    html = mail.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    # Transfer encodings may turn line ends into CRLF; the words must survive untouched.
    assert lines(text.get_content()) == lines(rendered.text)
    assert lines(html.get_content()) == lines(rendered.html)
    assert STATUS_URL in text.get_content()
    if locale == "zh-TW":
        assert mail["Subject"] == "我們已收到您的退貨申請（R-7Q2K9MXA）"


async def test_recipient_refused_with_5xx_is_permanent() -> None:
    refuser = Refuser("550 5.1.1 <amy@example.com>: mailbox unavailable")
    for url in smtp_server(refuser):
        with pytest.raises(aiosmtplib.SMTPException) as caught:
            await send_email(
                smtp_url=url, mail_from=MAIL_FROM, to=TO, message=SIMPLE, message_id="m1"
            )
        assert is_permanent(caught.value)
    assert refuser.envelopes == []


async def test_recipient_deferred_with_4xx_is_transient() -> None:
    refuser = Refuser("451 4.3.0 Try again later")
    for url in smtp_server(refuser):
        with pytest.raises(aiosmtplib.SMTPException) as caught:
            await send_email(
                smtp_url=url, mail_from=MAIL_FROM, to=TO, message=SIMPLE, message_id="m1"
            )
        assert not is_permanent(caught.value)


async def test_no_server_listening_is_transient() -> None:
    url = f"smtp://127.0.0.1:{free_port()}"
    with pytest.raises(aiosmtplib.SMTPException) as caught:
        await send_email(smtp_url=url, mail_from=MAIL_FROM, to=TO, message=SIMPLE, message_id="m1")
    assert isinstance(caught.value, aiosmtplib.SMTPConnectError)
    assert not is_permanent(caught.value)


SIMPLE = RenderedMessage(subject="Hi", text="Hello\n", html="<p>Hello</p>\n")


@pytest.mark.parametrize(
    ("err", "permanent"),
    [
        (aiosmtplib.SMTPResponseException(550, "no"), True),
        (aiosmtplib.SMTPSenderRefused(553, "bad sender", "a@b"), True),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), True),
        (aiosmtplib.SMTPDataError(554, "spam"), True),
        (aiosmtplib.SMTPResponseException(421, "busy"), False),
        (aiosmtplib.SMTPDataError(452, "full"), False),
        (
            aiosmtplib.SMTPRecipientsRefused(
                [
                    aiosmtplib.SMTPRecipientRefused(550, "no", "a@b"),
                    aiosmtplib.SMTPRecipientRefused(450, "later", "c@d"),
                ]
            ),
            False,
        ),
        (aiosmtplib.SMTPRecipientsRefused([]), False),
        (aiosmtplib.SMTPNotSupported("no AUTH"), True),
        (aiosmtplib.SMTPServerDisconnected("gone"), False),
        (aiosmtplib.SMTPConnectError("refused"), False),
        (aiosmtplib.SMTPReadTimeoutError("slow"), False),
        (ConnectionResetError(), False),
    ],
)
def test_is_permanent(err: Exception, permanent: bool) -> None:
    assert is_permanent(err) is permanent


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("smtp://localhost", SmtpTarget("localhost", 25, None, None, False)),
        ("smtps://mail.example.com", SmtpTarget("mail.example.com", 465, None, None, True)),
        (
            "smtp://user:p%40ss%3Aw@mail.example.com:2525",
            SmtpTarget("mail.example.com", 2525, "user", "p@ss:w", False),
        ),
        ("SMTPS://u:pw@10.0.0.5:587", SmtpTarget("10.0.0.5", 587, "u", "pw", True)),
    ],
)
def test_parse_smtp_url(url: str, target: SmtpTarget) -> None:
    assert parse_smtp_url(url) == target


@pytest.mark.parametrize(
    "url", ["http://mail.example.com", "smtp://", "smtp://host:notaport", "mail.example.com"]
)
def test_parse_smtp_url_refuses_what_is_not_smtp(url: str) -> None:
    with pytest.raises(ValueError):
        parse_smtp_url(url)


def test_message_id_header_is_deterministic_and_valid() -> None:
    assert message_id_header("R-7Q2K9MXA.case_approved.email") == (
        "<R-7Q2K9MXA.case_approved.email@aftersales>"
    )
    # Characters a Message-ID can't hold become dots, the same way every time.
    assert message_id_header("R-7Q2K9MXA:case approved:email") == (
        "<R-7Q2K9MXA.case.approved.email@aftersales>"
    )
    with pytest.raises(ValueError):
        message_id_header("::")
