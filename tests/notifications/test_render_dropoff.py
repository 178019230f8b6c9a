"""A drop-off's messages in every locale: the code as text, its QR image attached inline."""

from __future__ import annotations

from typing import Literal

import pytest

from domain.models import CaseView, Dropoff, Locale, ReturnMethod, Shipment
from notifications.codes import qr_png
from notifications.email import build_email
from notifications.render import render_message
from notifications.samples import DUE, context, sample_case

CODE = "482913057716"
LABEL = "https://carrier.example/labels/do_1.pdf"
# What each locale calls the code and the FamilyMart store it goes to.
WORDS = {
    Locale.EN: ("Drop-off code", "FamilyMart store"),
    Locale.ZH_TW: ("寄件代碼", "全家門市"),
    Locale.ZH_CN: ("寄件码", "全家便利店"),
}


def _case(locale: Locale, payer: Literal["seller", "customer"] = "customer") -> CaseView:
    case = sample_case(locale=locale, shipping_payer=payer)
    case.decision.return_method = ReturnMethod.DROPOFF
    case.decision.dropoff_chain = "FamilyMart"
    dropoff = Dropoff(code=CODE, chain="FamilyMart", expires_at=DUE)
    case.shipments = [
        Shipment(direction="inbound", booked_by="seller", label_url=LABEL, dropoff=dropoff)
    ]
    return case


@pytest.mark.parametrize("locale", list(Locale))
def test_the_approval_and_the_reminder_show_the_code_and_its_qr_image(locale: Locale) -> None:
    case = _case(locale)
    code_word, store = WORDS[locale]
    for message in ("case_approved", "shipment_reminder"):
        rendered = render_message(message, locale.value, context(case, message))
        assert f"{code_word}" in rendered.text and CODE in rendered.text, rendered.text
        assert store in rendered.text, rendered.text
        # The tracking-number instructions of a customer's own parcel are not there.
        assert "tracking number on your case page" not in rendered.text
        [image] = rendered.images
        assert f'src="cid:{image.cid}"' in rendered.html
        assert image.data == qr_png(CODE) and image.data.startswith(b"\x89PNG")
        mail = build_email(
            mail_from="shop@example.com", to="amy@example.com", message=rendered, message_id="X:1"
        )
        parts = {part.get_content_type(): part for part in mail.walk()}
        assert parts["image/png"]["Content-ID"] == f"<{image.cid}>"
        assert "multipart/related" in parts
    approved = render_message("case_approved", locale.value, context(case, "case_approved"))
    assert LABEL in approved.text


def test_the_postage_follows_the_payer_and_the_expiry_names_the_code() -> None:
    seller = _case(Locale.EN, "seller")
    text = render_message("case_approved", "en", context(seller, "case_approved")).text
    assert "The postage is on us." in text
    customer = _case(Locale.ZH_TW)
    text = render_message("case_approved", "zh-TW", context(customer, "case_approved")).text
    assert "運費請於門市櫃檯支付" in text
    expired = context(customer, "case_expired", extra={"timer": "customer_shipment"})
    text = render_message("case_expired", "zh-TW", expired).text
    assert "寄件代碼到期" in text
    # Without a drop-off, the message is the one it always was.
    plain = sample_case()
    text = render_message("case_approved", "en", context(plain, "case_approved")).text
    assert "Drop-off code" not in text and "tracking number on your case page" in text
    assert render_message("case_approved", "en", context(plain, "case_approved")).images == ()
