"""Drop-off codes as QR images, made here: no image service sees a customer's code.

A PNG for mail (what mail clients show inline: Gmail and Outlook show neither SVG nor data
URIs), an SVG for the status page (sharp at any zoom). Always a full QR code, never a Micro
QR, which many phone and counter scanners don't read.
"""

from __future__ import annotations

import functools
import hashlib
import io
from dataclasses import dataclass

import segno

# Modules per side of the quiet zone the QR standard asks for, and pixels per module: a
# 12-digit code (version 1, 21 modules) makes a 174 px PNG, easy for a counter scanner.
BORDER = 4
PNG_SCALE = 6
SVG_SCALE = 8
MAX_TEXT = 200


@dataclass(frozen=True)
class InlineImage:
    """An image a mail's HTML shows through `cid:`, attached to the mail."""

    cid: str
    data: bytes
    filename: str
    subtype: str = "png"


def _qr(text: str) -> segno.QRCode:
    if not text or len(text) > MAX_TEXT:
        raise ValueError(f"a drop-off code is 1 to {MAX_TEXT} characters, not {len(text)}")
    return segno.make_qr(text, error="m")


@functools.lru_cache(maxsize=512)
def qr_png(text: str) -> bytes:
    """The QR code of `text` as a PNG."""
    out = io.BytesIO()
    _qr(text).save(out, kind="png", scale=PNG_SCALE, border=BORDER)
    return out.getvalue()


@functools.lru_cache(maxsize=512)
def qr_svg(text: str) -> bytes:
    """The QR code of `text` as a standalone SVG document."""
    out = io.BytesIO()
    _qr(text).save(out, kind="svg", scale=SVG_SCALE, border=BORDER, title=text, xmldecl=False)
    return out.getvalue()


def inline_qr(text: str) -> InlineImage:
    """The QR code of `text` for a mail: the same Content-ID on every attempt of a message."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return InlineImage(
        cid=f"qr-{digest}@aftersales", data=qr_png(text), filename="dropoff-code.png"
    )


class InlineImages:
    """The images one message's HTML asks for (templates call `qr_image(code)`)."""

    def __init__(self) -> None:
        self.images: list[InlineImage] = []

    def qr(self, text: str) -> str:
        """Attach the QR code of `text` (once) and answer the `cid:` URL that shows it."""
        image = inline_qr(str(text))
        if all(seen.cid != image.cid for seen in self.images):
            self.images.append(image)
        return f"cid:{image.cid}"
