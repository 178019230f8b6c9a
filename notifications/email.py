"""Send a rendered message by SMTP, and tell a failure worth retrying from one that isn't."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

import aiosmtplib
from aiosmtplib.email import flatten_message

from notifications.render import RenderedMessage

DEFAULT_PORTS = {"smtp": 25, "smtps": 465}
SEND_TIMEOUT_SECONDS = 30.0
MESSAGE_ID_DOMAIN = "aftersales"

# RFC 5322 dot-atom-text characters minus ".": anything else would make the header invalid.
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_LEADING_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool


def parse_smtp_url(url: str) -> SmtpTarget:
    """Read `smtp://user:pass@host:port` or `smtps://...` (implicit TLS) into its parts."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError(f"SMTP URL must start with smtp:// or smtps://, not {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("SMTP URL has no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as err:  # urlsplit raises on a non-numeric or out-of-range port
        raise ValueError(f"SMTP URL has a bad port: {err}") from None
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        # Credentials may be percent-encoded so that "@" or ":" can appear in a password.
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        use_tls=scheme == "smtps",
    )


def message_id_header(message_id: str) -> str:
    """The Message-ID for a notification ID: `<{id}@aftersales>`, bad characters made dots."""
    local = ".".join(filter(None, _NOT_ATEXT.sub(".", message_id).split(".")))
    if not local:
        raise ValueError(f"message id {message_id!r} has nothing usable in a Message-ID")
    return f"<{local}@{MESSAGE_ID_DOMAIN}>"


def build_email(
    *, mail_from: str, to: str, message: RenderedMessage, message_id: str
) -> EmailMessage:
    """A multipart/alternative email (text, then HTML) carrying the notification's Message-ID;
    the HTML's inline images (`cid:`) go with it in a multipart/related part."""
    mail = EmailMessage()
    mail["From"] = mail_from
    mail["To"] = to
    mail["Subject"] = message.subject
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = message_id_header(message_id)
    mail.set_content(message.text)
    mail.add_alternative(message.html, subtype="html")
    html = mail.get_body(("html",)) if message.images else None
    if html is not None:
        # The HTML part becomes multipart/related: the HTML, then the images it shows.
        for image in message.images:
            html.add_related(
                image.data,
                maintype="image",
                subtype=image.subtype,
                cid=f"<{image.cid}>",
                filename=image.filename,
                disposition="inline",
            )
    return mail


class DeliveryInDoubt(Exception):
    """The message was handed to the server but no answer came: it may or may not be delivered.

    Raised only after `before_data` ran and the end mark went out; sending again could give the
    customer a second copy.
    """


async def send_email(
    *,
    smtp_url: str,
    mail_from: str,
    to: str,
    message: RenderedMessage,
    message_id: str,
    before_data: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Send one rendered message; aiosmtplib errors propagate (see `is_permanent`).

    The exchange is split at the point of no return: connect, EHLO, MAIL FROM, RCPT TO, DATA
    and the message's content first, then `before_data` (the caller records that the outcome
    is about to become uncertain), then the content's end mark. A server keeps a message only
    once its end mark came, so a failure (or a crash) before it means nothing was handed over.
    A refusal the server answers to the end mark propagates as usual (nothing delivered); a
    lost connection or timeout waiting for that answer raises `DeliveryInDoubt`.
    """
    target = parse_smtp_url(smtp_url)
    mail = build_email(mail_from=mail_from, to=to, message=message, message_id=message_id)
    smtp = aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        username=target.username,
        password=target.password,
        use_tls=target.use_tls,
        timeout=SEND_TIMEOUT_SECONDS,
    )
    await smtp.connect()  # EHLO, STARTTLS when offered, AUTH when configured
    content_open = False
    try:
        mail_options: list[str] = []
        if smtp.is_ehlo_or_helo_needed:
            await smtp.ehlo()
        utf8 = not (mail_from + to).isascii()
        if utf8:
            if not smtp.supports_extension("smtputf8"):
                raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not supported by this server")
            mail_options.append("SMTPUTF8")
        cte_type = "7bit"
        if smtp.supports_extension("8BITMIME"):
            mail_options.append("BODY=8BITMIME")
            cte_type = "8bit"
        data = flatten_message(mail, utf8=utf8, cte_type=cte_type)
        await smtp.mail(mail_from, options=mail_options, encoding="utf-8" if utf8 else "ascii")
        await smtp.rcpt(to, encoding="utf-8" if utf8 else "ascii")
        protocol = await _open_content(smtp)
        content_open = True
        protocol.write(_dot_stuffed(data))
        if before_data is not None:
            await before_data()
        # From the end mark on, the server may have the message: nothing may come between the
        # caller's record and this write (a crash there is the only way to lose a message).
        protocol.write(b".\r\n")
        content_open = False
        try:
            answer = await protocol.read_response(timeout=SEND_TIMEOUT_SECONDS)
        except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as err:
            raise DeliveryInDoubt(f"no answer to the end of DATA: {err}") from err
        if answer.code != aiosmtplib.SMTPStatus.completed:
            raise aiosmtplib.SMTPDataError(answer.code, answer.message)
    finally:
        if content_open:
            # Hanging up before the end mark makes the server drop the half-sent message; a
            # QUIT now would only be read as more of its content.
            smtp.close()
        else:
            try:
                await smtp.quit()
            except Exception:  # the message's fate is settled; a failed QUIT changes nothing
                smtp.close()


async def _open_content(smtp: aiosmtplib.SMTP) -> aiosmtplib.protocol.SMTPProtocol:
    # DATA through the public command call; the content then goes through the connection's
    # protocol, because aiosmtplib's `data()` sends content and end mark in one write.
    start = await smtp.execute_command(b"DATA")
    if start.code != aiosmtplib.SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    if smtp.protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("the connection closed after DATA")
    return smtp.protocol


def _dot_stuffed(data: bytes) -> bytes:
    """The content as DATA carries it: CRLF line ends, a leading "." doubled (RFC 5321
    4.5.2), ending in CRLF so that the end mark stands on its own line."""
    lines = _LINE_END.sub(b"\r\n", data)
    if not lines.endswith(b"\r\n"):
        lines += b"\r\n"
    return _LEADING_DOT.sub(b"..", lines)


def is_permanent(err: Exception) -> bool:
    """Whether retrying the send can't help: a 5xx answer, not a 4xx or a network failure."""
    if isinstance(err, aiosmtplib.SMTPRecipientsRefused):
        # Retry if any recipient was only deferred; the rest would be refused again anyway.
        return bool(err.recipients) and all(_is_5xx(r.code) for r in err.recipients)
    if isinstance(err, aiosmtplib.SMTPResponseException):
        return _is_5xx(err.code)
    # The server lacks something we need (AUTH, STARTTLS): configuration, not a hiccup.
    return isinstance(err, aiosmtplib.SMTPNotSupported)


def _is_5xx(code: int) -> bool:
    return 500 <= code < 600
