"""A complaint's messages say what was offered, what was done and what happens next."""

from __future__ import annotations

from typing import Any

import pytest

from domain.models import ComplaintCategory, Priority
from notifications.render import RenderedMessage, render_message
from notifications.samples import context, sample_complaint_case, sample_for
from tests.notifications.test_render import (
    LEFTOVERS,
    LOCALES,
    TAIPEI_DUE,
    shows_no_twd,
    twd,
    untranslated_words,
)

RESOLUTIONS = ("apology", "coupon", "partial_refund", "refund", "return", "exchange", "repair")
WITH_AMOUNT = {"coupon": "150.00", "partial_refund": "300.00", "refund": "990.00"}


def render(message: str, locale: str, **extra: Any) -> RenderedMessage:
    case = sample_for("complaint", message)
    values = context(case, message)
    values["extra"] = {**values["extra"], **extra}
    rendered = render_message(message, locale, values)
    for part in (rendered.subject, rendered.text, rendered.html):
        for leftover in LEFTOVERS:
            assert leftover not in part
    if locale != "en":
        assert untranslated_words(rendered, case, values["extra"]) == set()
    return rendered


def _amount(resolution: str) -> dict[str, str] | None:
    value = WITH_AMOUNT.get(resolution)
    return {"amount": value, "currency": "TWD"} if value else None


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_a_proposal_says_what_is_offered_by_when_and_how_to_answer(
    resolution: str, locale: str
) -> None:
    rendered = render(
        "resolution_proposed", locale, resolution=resolution, amount=_amount(resolution)
    )
    for part in (rendered.text, rendered.html):
        assert TAIPEI_DUE in part
        if resolution in WITH_AMOUNT:
            assert twd(WITH_AMOUNT[resolution], locale) in part
        else:
            assert shows_no_twd(part)
    accept, decline = ("Accept", "Decline") if locale == "en" else ("接受", "不接受")
    assert accept in rendered.text and decline in rendered.text
    if resolution in ("return", "exchange", "repair"):
        assert ("separate" if locale == "en" else "另外為您建立") in rendered.text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_resolution_done_says_what_was_done(resolution: str, locale: str) -> None:
    child = "R-8K2W4NZA" if resolution in ("return", "exchange", "repair") else None
    rendered = render(
        "resolution_done",
        locale,
        resolution=resolution,
        amount=_amount(resolution),
        child_case_id=child,
    )
    if child:
        assert child in rendered.text and child in rendered.html
    if resolution in WITH_AMOUNT:
        assert twd(WITH_AMOUNT[resolution], locale) in rendered.text


@pytest.mark.parametrize("locale", LOCALES)
def test_resolution_done_names_a_combined_resolutions_coupon(locale: str) -> None:
    coupon = {"amount": "100.00", "currency": "TWD"}
    rendered = render(
        "resolution_done",
        locale,
        resolution="partial_refund",
        amount=_amount("partial_refund"),
        child_case_id=None,
        coupon=coupon,
    )
    for part in (rendered.text, rendered.html):
        assert twd("300.00", locale) in part and twd("100.00", locale) in part
    word = {"en": "coupon", "zh-TW": "折價券", "zh-CN": "优惠券"}[locale]
    assert rendered.text.count(word) == 1
    # Without a coupon the message names none.
    alone = render("resolution_done", locale, resolution="partial_refund",
                   amount=_amount("partial_refund"), child_case_id=None)  # fmt: skip
    assert word not in alone.text


@pytest.mark.parametrize("locale", LOCALES)
def test_acknowledgement_names_the_topic_and_the_priority(locale: str) -> None:
    rendered = render("complaint_acknowledged", locale)
    assert ("the quality of a product" if locale == "en" else "商品品質") in rendered.text
    assert ("priority" if locale == "en" else "優先處理") in rendered.text
    case = sample_complaint_case(category=ComplaintCategory.LOGISTICS, priority=Priority.NORMAL)
    plain = render_message(
        "complaint_acknowledged", locale, context(case, "complaint_acknowledged", deadline=None)
    )
    assert ("delivery" if locale == "en" else "物流配送") in plain.text
    assert ("priority" if locale == "en" else "優先處理") not in plain.text
    assert ("one business hour" if locale == "en" else "一個工作小時") in plain.text


@pytest.mark.parametrize("locale", LOCALES)
def test_the_agents_answer_is_shown_and_escaped(locale: str) -> None:
    rendered = render("complaint_response", locale, response="Sorry <b>really</b> & truly")
    assert "Sorry <b>really</b> & truly" in rendered.text
    assert "Sorry &lt;b&gt;really&lt;/b&gt; &amp; truly" in rendered.html


@pytest.mark.parametrize("locale", LOCALES)
def test_satisfaction_check_says_silence_counts_as_satisfied(locale: str) -> None:
    rendered = render("satisfaction_check", locale)
    assert TAIPEI_DUE in rendered.text
    assert ("take it that you're satisfied" if locale == "en" else "視為您滿意") in rendered.text


@pytest.mark.parametrize("locale", LOCALES)
def test_shared_messages_read_right_for_a_complaint(locale: str) -> None:
    received = render("case_received", locale)
    assert ("complaint" if locale == "en" else "客訴") in received.subject
    assert ("sending the item back" if locale == "en" else "寄回方式") not in received.text
    cancelled = render("case_cancelled", locale)
    assert ("collected or refunded" if locale == "en" else "取件或退款") not in cancelled.text
    survey = render("survey", locale)
    assert ("complaint" if locale == "en" else "客訴") in survey.text
    refund = render("refund_sent", locale)
    assert twd("300.00", locale) in refund.text
