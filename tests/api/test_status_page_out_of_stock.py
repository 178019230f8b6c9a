"""The status page offers an out-of-stock replacement's three choices (issue 11), in each
locale; rendered from a sample case, as the page renders the stored view."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from api.status_page import FORM_FIELDS, page
from domain.actions import CustomerAction, SwitchVariant
from domain.models import CaseStatus, Locale
from domain.policy import Policy
from notifications.samples import sample_for

WORDS = {
    Locale.EN: ("Switch to this variant", "Take a refund instead", "Wait until it&#39;s back"),
    Locale.ZH_TW: ("改換此款式", "改為退款", "等待補貨"),
    Locale.ZH_CN: ("改换此款式", "改为退款", "等待补货"),
}


@pytest.mark.parametrize("locale", list(WORDS))
def test_the_page_offers_wait_switch_and_refund(locale: Locale) -> None:
    case = sample_for("exchange", "out_of_stock_offer", locale)
    case.status = CaseStatus.AWAITING_CUSTOMER
    # As the case lists them: no cancel while the shop holds the original.
    case.customer_actions = ["accept", "decline", "switch_variant"]
    body = page(case, Policy(), "tok").body.decode()
    assert 'id="form-switch_variant"' in body and 'name="sku"' in body
    assert '<option value="TEE-L-NVY">' in body and '<option value="TEE-XL-BLK">' in body
    assert 'id="restock"' in body and "2026-12-05" in body
    for words in WORDS[locale]:
        assert words in body
    # Without alternatives: only the refund and the wait.
    assert case.out_of_stock is not None
    case.out_of_stock.alternatives = []
    case.customer_actions = ["accept", "decline"]
    body = page(case, Policy(), "tok").body.decode()
    assert 'id="form-switch_variant"' not in body and WORDS[locale][1] in body


def test_any_other_offer_keeps_accept_and_decline() -> None:
    case = sample_for("refund", "refund_offer")
    case.status = CaseStatus.AWAITING_CUSTOMER
    case.customer_actions = ["accept", "decline"]
    body = page(case, Policy(), "tok").body.decode()
    assert ">Accept<" in body and ">Decline<" in body and "refund instead" not in body


def test_the_form_posts_a_switch() -> None:
    assert FORM_FIELDS["switch_variant"] == ("sku",)
    action: Any = TypeAdapter(CustomerAction).validate_python(
        {"action": "switch_variant", "sku": "TEE-L-NVY"}
    )
    assert action == SwitchVariant(action="switch_variant", sku="TEE-L-NVY")
