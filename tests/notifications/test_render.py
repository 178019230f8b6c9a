"""Every message renders in every locale, escapes what it must, and fails loudly when fed badly."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from jinja2.exceptions import UndefinedError

from domain.models import Locale
from notifications.render import (
    BUILTIN_TEMPLATES,
    MESSAGES,
    REQUIRED_EXTRA,
    RenderedMessage,
    money,
    render_message,
    when,
)
from tests.notifications.sample import DUE, EXTRA, STATUS_URL, context, sample_case

LOCALES = ("en", "zh-TW")
CJK = re.compile(r"[\u4e00-\u9fff]")
# Anything here in an output means a template leaked syntax or a Python repr.
LEFTOVERS = ("{{", "}}", "{%", "%}", "{#", "#}", "built-in method", "Undefined", "None")


def render(message: str, locale: str = "en", **case_options: object) -> RenderedMessage:
    case = sample_case(**case_options)  # type: ignore[arg-type]
    return render_message(message, locale, context(case, message))


def test_sample_extra_is_exactly_what_each_message_requires() -> None:
    # The render test below passes only these keys, so it proves they are enough.
    assert {m: tuple(EXTRA[m]) for m in EXTRA} == REQUIRED_EXTRA
    assert set(REQUIRED_EXTRA) <= set(MESSAGES)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("message", MESSAGES)
def test_every_message_renders(message: str, locale: str) -> None:
    assert (BUILTIN_TEMPLATES / locale / f"{message}.j2").is_file()
    rendered = render(message, locale)

    assert rendered.subject and rendered.text.strip() and rendered.html.strip()
    assert "\n" not in rendered.subject
    assert STATUS_URL in rendered.text
    assert STATUS_URL in rendered.html
    assert "R-7Q2K9MXA" in rendered.subject
    for part in (rendered.subject, rendered.text, rendered.html):
        for leftover in LEFTOVERS:
            assert leftover not in part
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert 'name="viewport"' in rendered.html
    if locale == "zh-TW":
        for part in (rendered.subject, rendered.text, rendered.html):
            assert CJK.search(part)


@pytest.mark.parametrize("locale", LOCALES)
def test_deadline_is_shown_in_the_customers_timezone(locale: str) -> None:
    for message in ("case_approved", "info_needed", "info_reminder", "shipment_reminder"):
        rendered = render(message, locale)
        assert "2026-11-29 10:00 (Asia/Taipei)" in rendered.text
        assert "2026-11-29 10:00 (Asia/Taipei)" in rendered.html


def test_customer_timezone_wins_over_the_policy_one_unless_it_is_not_a_zone() -> None:
    case = sample_case()
    case.customer.timezone = "America/New_York"
    text = render_message("info_needed", "en", context(case, "info_needed")).text
    assert "2026-11-28 21:00 (America/New_York)" in text

    case.customer.timezone = "Mars/Olympus_Mons"
    text = render_message("info_needed", "en", context(case, "info_needed")).text
    assert "2026-11-29 10:00 (Asia/Taipei)" in text


@pytest.mark.parametrize("locale", LOCALES)
def test_approval_explains_how_the_item_comes_back(locale: str) -> None:
    self_ship = render("case_approved", locale, shipping_payer="customer")
    assert "Zhongxiao E. Rd." in self_ship.text
    assert "Zhongxiao E. Rd." in self_ship.html

    case = sample_case(shipping_payer="seller")
    extra = {**EXTRA["case_approved"], "tracking_number": "TCAT-77700001"}
    pickup = render_message("case_approved", locale, context(case, "case_approved", extra=extra))
    assert "TCAT-77700001" in pickup.text
    assert "TCAT-77700001" in pickup.html
    assert "Zhongxiao E. Rd." not in pickup.text

    returnless = render("case_approved", locale, returnless=True)
    assert "Zhongxiao E. Rd." not in returnless.text
    assert "TWD 990.00" in returnless.text


@pytest.mark.parametrize("locale", LOCALES)
def test_rejection_gives_the_reason_the_rules_and_the_alternatives(locale: str) -> None:
    rendered = render("case_rejected", locale)
    assert "The item shows signs of use." in rendered.text
    # Rules that don't explain a refusal (who pays shipping) stay out of the letter.
    assert "pays return shipping" not in rendered.text
    if locale == "en":
        assert "returns are accepted for 7 days" in rendered.text
        assert "repair under warranty" in rendered.text
    else:
        assert "已超過可申請退貨的期限" in rendered.text
        assert "申請保固維修" in rendered.text


def test_refund_sent_names_the_amount_and_when_it_arrives() -> None:
    en = render("refund_sent", "en")
    assert "TWD 990.00" in en.text
    assert "5–10 business days" in en.text  # noqa: RUF001
    zh = render("refund_sent", "zh-TW")
    assert "TWD 990.00" in zh.text
    assert "5 至 10 個工作天" in zh.text


def test_html_is_escaped_and_text_is_not() -> None:
    evil = "<script>alert('x')</script> & <b>bold</b>"
    rendered = render("case_received", "en", description=evil, customer_name="<i>Amy</i>")

    assert "<script>" not in rendered.html
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"
        in rendered.html
    )
    assert "&lt;i&gt;Amy&lt;/i&gt;" in rendered.html
    assert evil in rendered.text
    assert "Hello <i>Amy</i>," in rendered.text
    assert "We've received" in rendered.subject
    assert "&#39;" not in rendered.text


def test_extra_values_are_escaped_in_html() -> None:
    case = sample_case()
    extra = {"question": "Is the <tag> still attached & intact?"}
    rendered = render_message("info_needed", "en", context(case, "info_needed", extra=extra))
    assert "Is the &lt;tag&gt; still attached &amp; intact?" in rendered.html
    assert "Is the <tag> still attached & intact?" in rendered.text


@pytest.mark.parametrize("message", sorted(REQUIRED_EXTRA))
def test_a_missing_extra_key_is_a_loud_error(message: str) -> None:
    case = sample_case()
    for key in REQUIRED_EXTRA[message]:
        extra = {k: v for k, v in EXTRA[message].items() if k != key}
        with pytest.raises(UndefinedError, match=key):
            render_message(message, "en", context(case, message, extra=extra))


def test_undefined_variables_in_a_template_fail_loudly(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "case_received.j2").write_text(
        "{% block subject %}Hi{% endblock %}{% block text %}{{ extra.nope }}{% endblock %}"
        "{% block html %}x{% endblock %}",
        encoding="utf-8",
    )
    with pytest.raises(UndefinedError):
        render_message(
            "case_received", "en", context(sample_case(), "case_received"), templates_dir=tmp_path
        )


@pytest.mark.parametrize("locale", ["fr", "zh-CN", "../../etc", ""])
def test_unknown_locale_falls_back_to_en(locale: str) -> None:
    assert render("case_received", locale) == render("case_received", "en")


def test_locale_enum_values_are_accepted() -> None:
    assert render("case_received", Locale.ZH_TW) == render("case_received", "zh-TW")


def test_unknown_message_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown message"):
        render("case_teleported")


def test_templates_dir_overrides_one_template(tmp_path: Path) -> None:
    (tmp_path / "zh-TW").mkdir()
    (tmp_path / "zh-TW" / "case_received.j2").write_text(
        "{% block subject %}\n  小店已收到 {{ case.id }}\n  的申請\n{% endblock %}\n"
        "{% block text %}收到了：{{ status_url }}{% endblock %}\n"  # noqa: RUF001
        "{% block html %}<p>{{ case.description }}</p>{% endblock %}\n",
        encoding="utf-8",
    )
    case = sample_case(description="<b>too small</b>")
    values = context(case, "case_received")

    overridden = render_message("case_received", "zh-TW", values, templates_dir=tmp_path)
    assert overridden.subject == "小店已收到 R-7Q2K9MXA 的申請"
    assert "收到了：" + STATUS_URL in overridden.text  # noqa: RUF001
    assert "<p>&lt;b&gt;too small&lt;/b&gt;</p>" in overridden.html
    # The shop's message still gets the built-in chrome.
    assert "客服中心 敬上" in overridden.text

    builtin = render_message("case_received", "zh-TW", values)
    assert builtin.subject != overridden.subject
    # Only that one template changes: other messages and other locales stay built-in.
    for message, locale in (("case_cancelled", "zh-TW"), ("case_received", "en")):
        values = context(case, message)
        assert render_message(message, locale, values, templates_dir=tmp_path) == (
            render_message(message, locale, values)
        )


def test_money_filter() -> None:
    assert money("990", "TWD") == "TWD 990.00"
    assert money("1234567.5", "USD") == "USD 1,234,567.50"
    with pytest.raises(ValueError):
        money("lots", "TWD")


def test_when_filter() -> None:
    assert when("2026-11-29T02:00:00+00:00", "Asia/Taipei") == "2026-11-29 10:00 (Asia/Taipei)"
    assert when(DUE, "UTC") == "2026-11-29 02:00 (UTC)"
    assert when(datetime(2026, 11, 29, 2, 0), "Asia/Taipei") == "2026-11-29 10:00 (Asia/Taipei)"
