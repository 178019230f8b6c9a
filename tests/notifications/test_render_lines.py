"""A return of several lines in every locale: the lines the policy left out, and an
inspection that passed one line and failed another, each with its amount (issue 11)."""

from __future__ import annotations

import html
from decimal import Decimal

import pytest

from domain.messages import InspectedLine, MessageArgs
from domain.models import Item, LineTerms, Locale, Money, Reason, RuleHit
from notifications.render import render_message
from notifications.samples import context, sample_case

# How each locale says a line stays out because of its category, that a line passed and
# failed, and the total paid back.
WORDS = {
    Locale.EN: (
        "can't be returned under our policy",
        "its category can't be returned for this reason",
        "T-shirt (TEE-M-BLK): passed, TWD 891.00 back",
        "Desk lamp (LAMP-1): didn't pass (Water inside.), TWD 500.00 back, sent back to you",
        "TWD 1,391.00 in all",
    ),
    Locale.ZH_TW: (
        "依本店規定無法退貨",
        "此類商品不適用這個原因",
        "T-shirt（TEE-M-BLK）：通過檢驗，退還 NT$891",
        "Desk lamp（LAMP-1）：未通過檢驗（Water inside.），退還 NT$500，將寄還給您",
        "共退還 NT$1,391",
    ),
    Locale.ZH_CN: (
        "按本店规定无法退货",
        "此类商品不支持以这个原因申请",
        "T-shirt（TEE-M-BLK）：通过检验，退还 NT$891",
        "Desk lamp（LAMP-1）：未通过检验（Water inside.），退还 NT$500.00，将寄还给您",
        "共退还 NT$1,391.00",
    ),
}


def _twd(amount: str) -> Money:
    return Money(amount=Decimal(amount), currency="TWD")


def _three_lines(locale: Locale) -> dict[str, object]:
    case = sample_case(locale=locale)
    case.items += [
        Item(sku="LAMP-1", name="Desk lamp", unit_price=Decimal("2000"), reason=Reason.DEFECTIVE),
        Item(
            sku="BRUSH-1", name="Toothbrush", category="personal_hygiene", unit_price=Decimal(300)
        ),
    ]
    case.decision.lines = [
        LineTerms(sku="TEE-M-BLK", refund=_twd("891"), restocking_fee=_twd("99")),
        LineTerms(sku="LAMP-1", refund=_twd("2000"), restocking_fee=_twd("0")),
        LineTerms(
            sku="BRUSH-1",
            eligible=False,
            refund=_twd("0"),
            restocking_fee=_twd("0"),
            rule=RuleHit(id="non_returnable_category", message="BRUSH-1 (personal_hygiene)"),
        ),
    ]
    return {"case": case}


@pytest.mark.parametrize("locale", list(Locale))
def test_the_received_mail_lists_the_lines_left_out(locale: Locale) -> None:
    case = _three_lines(locale)["case"]
    excluded, why, *_ = WORDS[locale]
    rendered = render_message("case_received", locale.value, context(case, "case_received"))  # type: ignore[arg-type]
    for body in (rendered.text, html.unescape(rendered.html)):
        assert excluded in body and why in body
        assert "BRUSH-1" in body
    # The line left out is the only one listed as left out.
    after = rendered.text.split(excluded, 1)[1]
    assert "BRUSH-1" in after and "LAMP-1" not in after
    # A case whose every line goes ahead says nothing of the kind.
    plain = render_message(
        "case_received", locale.value, context(sample_case(locale=locale), "case_received")
    )
    assert excluded not in plain.text


@pytest.mark.parametrize("locale", list(Locale))
def test_an_inspection_line_by_line_names_each_line_and_the_total(locale: Locale) -> None:
    case = _three_lines(locale)["case"]
    *_, passed, failed, total = WORDS[locale]
    extra = MessageArgs(
        notes="",
        refund_amount=_twd("1391"),
        keep_item=False,
        lines=[
            InspectedLine(sku="TEE-M-BLK", name="T-shirt", passed=True, refund=_twd("891")),
            InspectedLine(
                sku="LAMP-1",
                name="Desk lamp",
                passed=False,
                refund=_twd("500"),
                notes="Water inside.",
            ),
        ],
    ).context()
    values = context(case, "inspection_failed", extra=extra)  # type: ignore[arg-type]
    rendered = render_message("inspection_failed", locale.value, values)
    assert passed in rendered.text, rendered.text
    assert failed in rendered.text, rendered.text
    assert total in rendered.text, rendered.text
    assert "LAMP-1" in rendered.html and "TEE-M-BLK" in rendered.html
