"""What a repair's messages say (DESIGN 3.5, 8): the quote, the report and the repair's own
warranty, what comes back, and the shared messages worded for a repair."""

from __future__ import annotations

import pytest

from domain.models import CaseView
from notifications.render import RenderedMessage, render_message
from notifications.samples import (
    EXTRA,
    RepairStage,
    context,
    sample_case,
    sample_repair_case,
)
from tests.notifications.test_render import (
    LEFTOVERS,
    TAIPEI_DUE,
    render_case,
    twd,
    untranslated_words,
)

LOCALES = ("en", "zh-TW")


def checked(case: CaseView, message: str, locale: str, **extra: object) -> RenderedMessage:
    """Render a repair message, with the checks every message passes."""
    values = context(case, message)
    values["extra"] = {**values["extra"], **extra}
    rendered = render_message(message, locale, values)
    for part in (rendered.subject, rendered.text, rendered.html):
        for leftover in LEFTOVERS:
            assert leftover not in part
    if locale != "en":
        assert untranslated_words(rendered, case, values["extra"]) == set()
    return rendered


def stage(name: RepairStage, *, in_warranty: bool = True) -> CaseView:
    return sample_repair_case(stage=name, in_warranty=in_warranty)


def prose(rendered: RenderedMessage) -> str:
    """The message's own words, lower-cased, without the shop's address (data, not wording)."""
    return rendered.text.replace("Returns Dept.", "").lower()


@pytest.mark.parametrize("locale", LOCALES)
def test_quote_gives_the_amount_the_parts_and_the_deadline(locale: str) -> None:
    case = stage("quoted", in_warranty=False)
    case.deadlines = [d.model_copy(update={"name": "quote_response"}) for d in case.deadlines]
    rendered = checked(case, "repair_quote", locale)
    for part in (rendered.text, rendered.html):
        assert twd("1,500.00", locale) in part
        assert TAIPEI_DUE in part
        assert "Left driver unit" in part and "Ear cushion" in part
        assert "The left driver is burnt out after a drop" in part
    assert ("no longer under warranty" if locale == "en" else "已超過保固期") in rendered.text
    # Under warranty, a quote is for what the warranty doesn't cover.
    covered = checked(stage("quoted"), "repair_quote", locale)
    assert ("isn't covered by your warranty" if locale == "en" else "不在保固範圍內") in (
        covered.text
    )
    # Without notes or parts the quote still reads.
    bare = checked(case, "repair_quote", locale, parts=[], notes="")
    assert twd("1,500.00", locale) in bare.text
    assert ("Parts to replace" if locale == "en" else "需要更換的零件") not in bare.text


@pytest.mark.parametrize("locale", LOCALES)
def test_repair_done_gives_the_report_and_the_repair_warranty(locale: str) -> None:
    rendered = checked(stage("done"), "repair_done", locale)
    for part in (rendered.text, rendered.html):
        assert "2027-02-28" in part
        assert "Replaced the left driver and resoldered its cable" in part
        assert "Left driver unit" in part
    passed = "Quality check: passed" if locale == "en" else "品質檢驗：通過"
    assert passed in rendered.text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    ("name", "en", "zh"),
    [
        ("repaired", "is repaired and on its way back", "已修復"),
        ("declined", "on its way back to you, unrepaired", "未經維修"),
        ("replaced", "sent you a new one in its place", "改寄一件新品"),
    ],
)
def test_what_goes_back_is_named(name: RepairStage, en: str, zh: str, locale: str) -> None:
    rendered = checked(stage(name), "replacement_shipped", locale)
    phrase = en if locale == "en" else zh
    assert phrase in rendered.text and phrase in rendered.html
    assert "TCAT-66600002" in rendered.text
    # A repair's shipment is no exchange.
    assert "exchange" not in rendered.subject.lower() and "換貨" not in rendered.subject


@pytest.mark.parametrize("locale", LOCALES)
def test_declined_and_unanswered_quotes_are_told_apart(locale: str) -> None:
    declined = checked(stage("declined", in_warranty=False), "repair_declined", locale)
    expired = checked(stage("expired", in_warranty=False), "repair_declined", locale)
    assert ("You've declined" if locale == "en" else "您已選擇不接受") in declined.text
    assert ("didn't hear from you" if locale == "en" else "未在期限內收到") in expired.text


@pytest.mark.parametrize("locale", LOCALES)
def test_unrepairable_says_what_happens_next_or_that_the_parcel_was_lost(locale: str) -> None:
    case = stage("unrepairable")
    found = checked(case, "unrepairable", locale)
    assert EXTRA["unrepairable"]["notes"] in found.text
    assert TAIPEI_DUE in found.text
    lost = checked(case, "unrepairable", locale, lost=True, notes="")
    assert ("lost the parcel" if locale == "en" else "遭物流遺失") in lost.text
    assert ("can't be repaired" if locale == "en" else "無法修復") not in lost.text


@pytest.mark.parametrize("locale", LOCALES)
def test_repair_started_says_what_it_costs(locale: str) -> None:
    free = checked(stage("repairing"), "repair_started", locale)
    assert ("free of charge under your warranty" if locale == "en" else "保固範圍內") in free.text
    paid = checked(stage("repairing", in_warranty=False), "repair_started", locale)
    assert twd("1,500.00", locale) in paid.text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("in_warranty", [True, False])
def test_shared_messages_read_as_a_repair(locale: str, in_warranty: bool) -> None:
    case = stage("new", in_warranty=in_warranty)
    received = checked(case, "case_received", locale)
    approved = render_case(case, "case_approved", locale)
    for rendered in (received, approved):
        assert ("repair" if locale == "en" else "維修") in rendered.subject
        # A repair refunds nothing up front and takes nothing back for good.
        for word in ("refund", "return") if locale == "en" else ("退款", "退貨"):
            assert word not in prose(rendered)
    if in_warranty:
        assert ("free of charge" if locale == "en" else "維修免費") in received.text
    else:
        assert ("send you a quote" if locale == "en" else "提供報價") in received.text
        assert ("send you a quote" if locale == "en" else "提供維修報價") in approved.text
    for message in ("picked_up", "item_received", "shipment_reminder", "case_cancelled"):
        rendered = checked(case, message, locale)
        assert ("repair" if locale == "en" else "維修") in rendered.text
        for word in ("refund", "return") if locale == "en" else ("退款", "退貨"):
            assert word not in prose(rendered), (message, word)


@pytest.mark.parametrize("locale", ["en", "zh-TW"])
def test_an_escalation_without_a_timer_names_its_reason_not_a_breach(locale: str) -> None:
    case = sample_case().model_dump(mode="json")
    context = {
        "case": case,
        "status_url": "http://localhost:8000/status/t",
        "timezone": "Asia/Taipei",
        "extra": {"timer": None, "reason": "The payment provider refused the refund."},
    }
    rendered = render_message("ops_escalation", locale, context)
    assert "None" not in rendered.subject + rendered.text + rendered.html
    assert "SLA" not in rendered.subject
    if locale == "en":
        assert "The payment provider refused the refund." in rendered.text
