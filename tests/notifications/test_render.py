"""Every message renders in every locale, escapes what it must, and fails loudly when fed badly."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from html import unescape
from pathlib import Path

import pytest
from jinja2.exceptions import UndefinedError

from domain.models import CaseView, Locale
from notifications.render import (
    BUILTIN_TEMPLATES,
    COMPLAINT_MESSAGES,
    EXCHANGE_MESSAGES,
    MESSAGES,
    OPS_MESSAGES,
    REFUND_MESSAGES,
    REPAIR_MESSAGES,
    REQUIRED_EXTRA,
    RETURN_MESSAGES,
    RenderedMessage,
    money,
    render_message,
    when,
)
from notifications.samples import (
    DUE,
    EXTRA,
    STATUS_URL,
    CaseKind,
    context,
    sample_case,
    sample_exchange_case,
    sample_for,
    sample_refund_case,
)

LOCALES = ("en", "zh-TW")
# The locales every message is checked in; the wording tests below check en and zh-TW.
ALL_LOCALES = ("en", "zh-TW", "zh-CN")
CJK = re.compile(r"[\u4e00-\u9fff]")
# Anything here in an output means a template leaked syntax or a Python repr.
LEFTOVERS = ("{{", "}}", "{%", "%}", "{#", "#}", "built-in method", "Undefined", "None")
# The messages each case type sends: exchanges and refund-only cases share the return ones.
MESSAGES_OF: dict[CaseKind, tuple[str, ...]] = {
    "return": RETURN_MESSAGES + OPS_MESSAGES,
    "exchange": RETURN_MESSAGES + EXCHANGE_MESSAGES + OPS_MESSAGES,
    "refund": RETURN_MESSAGES + REFUND_MESSAGES + OPS_MESSAGES,
    # A repair diagnoses instead of inspecting, and sends the item back like a replacement.
    "repair": (
        *(m for m in RETURN_MESSAGES if not m.startswith("inspection_")),
        "replacement_shipped",
        *REPAIR_MESSAGES,
        *OPS_MESSAGES,
    ),
    # A complaint shares the opening, refund, survey and cancellation messages.
    "complaint": (
        "case_received",
        "refund_sent",
        "survey",
        "case_cancelled",
        "sms_nudge",
        *COMPLAINT_MESSAGES,
        *OPS_MESSAGES,
    ),
}
CASES = [(kind, message) for kind, messages in MESSAGES_OF.items() for message in messages]
TAIPEI_DUE = "2026-11-29 10:00 (Asia/Taipei)"
# Latin words a zh-TW message may keep: the channel's name, and the service's and the
# operators' tools' names.
ZH_LATIN_WORDS = {"Email", "SLA", "Temporal", "UI", "Workflow", "ID", "aftersales"}


def data_strings(value: object) -> list[str]:
    """Every string the case or the caller supplies, which a message shows as it is."""
    if isinstance(value, str):
        # A multi-line value (an address) is shown line by line.
        return [value, *(line.strip() for line in value.splitlines())]
    if isinstance(value, dict):
        # Rule sentences come from the policy in English: templates must translate them.
        items = [v for k, v in value.items() if k != "rules"]
        return [s for v in items for s in data_strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in data_strings(v)]
    return []


def untranslated_words(
    rendered: RenderedMessage, case: CaseView, extra: dict[str, object]
) -> set[str]:
    """Latin words left in a zh-TW message once ids, urls, amounts, times and data are gone."""
    html = unescape(re.sub(r"<[^>]*>", " ", rendered.html))
    words = " ".join((rendered.subject, rendered.text, html))
    words = re.sub(r"https?://\S+", " ", words)
    words = re.sub(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} \([A-Za-z_/]+\)", " ", words)
    words = re.sub(r"\b[A-Z]{3} [\d,]+\.\d{2}\b", " ", words)
    words = re.sub(r"(?<![A-Za-z])[A-Z]{0,3}[$¥][\d,]+(?:\.\d{2})?", " ", words)
    data = data_strings(case.model_dump(mode="json")) + data_strings(extra)
    for value in sorted({d for d in data if len(d) >= 2}, key=len, reverse=True):
        words = re.sub(rf"(?<![A-Za-z]){re.escape(value)}(?![A-Za-z])", " ", words)
    # "x 1" is the quantity of an item line.
    words = re.sub(r"\bx (?=\d)", " ", words)
    return set(re.findall(r"[A-Za-z]{2,}", words)) - ZH_LATIN_WORDS


def render(message: str, locale: str = "en", **case_options: object) -> RenderedMessage:
    case = sample_case(**case_options)  # type: ignore[arg-type]
    return render_message(message, locale, context(case, message))


def test_sample_extra_is_exactly_what_each_message_requires() -> None:
    # The render test below passes only these keys, so it proves they are enough.
    assert {m: tuple(EXTRA[m]) for m in EXTRA} == REQUIRED_EXTRA
    assert set(REQUIRED_EXTRA) <= set(MESSAGES)


def test_every_message_belongs_to_a_case_type() -> None:
    assert {message for _, message in CASES} == set(MESSAGES)


def twd(amount: str, locale: str) -> str:
    """A TWD amount as a message in this locale shows it."""
    return money(amount.replace(",", ""), "TWD", locale)


def shows_no_twd(text: str) -> bool:
    return "TWD" not in text and "NT$" not in text


@pytest.mark.parametrize("locale", ALL_LOCALES)
@pytest.mark.parametrize(("kind", "message"), CASES)
def test_every_message_renders(kind: CaseKind, message: str, locale: str) -> None:
    assert (BUILTIN_TEMPLATES / locale / f"{message}.j2").is_file()
    case = sample_for(kind, message)
    values = context(case, message)
    rendered = render_message(message, locale, values)

    assert rendered.subject and rendered.text.strip() and rendered.html.strip()
    assert "\n" not in rendered.subject
    assert case.status_url in rendered.text
    assert case.status_url in rendered.html
    assert case.id in rendered.subject
    for part in (rendered.subject, rendered.text, rendered.html):
        for leftover in LEFTOVERS:
            assert leftover not in part
    assert rendered.html.startswith("<!DOCTYPE html>")
    assert 'name="viewport"' in rendered.html
    if values["deadline"] and message not in OPS_MESSAGES:
        # A message sent with a deadline says by when.
        assert TAIPEI_DUE in rendered.text
        assert TAIPEI_DUE in rendered.html
    if locale != "en":
        for part in (rendered.subject, rendered.text, rendered.html):
            assert CJK.search(part)
        assert untranslated_words(rendered, case, values["extra"]) == set()


@pytest.mark.parametrize("locale", ALL_LOCALES)
@pytest.mark.parametrize(("kind", "message"), CASES)
def test_every_message_renders_without_a_deadline(
    kind: CaseKind, message: str, locale: str
) -> None:
    case = sample_for(kind, message)
    rendered = render_message(message, locale, context(case, message, deadline=None))
    assert case.status_url in rendered.text
    for part in (rendered.subject, rendered.text, rendered.html):
        for leftover in LEFTOVERS:
            assert leftover not in part


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
    assert twd("990.00", locale) in returnless.text


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
    assert "NT$990" in zh.text
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


@pytest.mark.parametrize("locale", ["fr", "zh-HK", "../../etc", ""])
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
        "{% block text %}收到了：{{ status_url }}{% endblock %}\n"
        "{% block html %}<p>{{ case.description }}</p>{% endblock %}\n",
        encoding="utf-8",
    )
    case = sample_case(description="<b>too small</b>")
    values = context(case, "case_received")

    overridden = render_message("case_received", "zh-TW", values, templates_dir=tmp_path)
    assert overridden.subject == "小店已收到 R-7Q2K9MXA 的申請"
    assert "收到了：" + STATUS_URL in overridden.text
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


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "shown"),
    [
        # The examples the issue names, as babel (CLDR) formats them.
        ("990", "TWD", "zh-TW", "NT$990"),
        ("990", "CNY", "zh-CN", "¥990.00"),
        ("990", "TWD", "en", "TWD 990.00"),
        ("297.5", "TWD", "zh-TW", "NT$297.50"),
        ("1234567.5", "TWD", "zh-TW", "NT$1,234,567.50"),
        ("990", "TWD", "zh-CN", "NT$990.00"),
        ("1234567.5", "CNY", "zh-CN", "¥1,234,567.50"),
        ("1234567.5", "USD", "zh-CN", "US$1,234,567.50"),
        ("990", "CNY", "zh-TW", "CN¥990.00"),
        # A locale babel isn't told about formats like en.
        ("990", "TWD", "fr", "TWD 990.00"),
    ],
)
def test_money_filter_formats_for_the_locale(
    amount: str, currency: str, locale: str, shown: str
) -> None:
    assert money(amount, currency, locale) == shown


@pytest.mark.parametrize(
    ("locale", "shown"), [("en", "TWD 990.00"), ("zh-TW", "NT$990"), ("zh-CN", "NT$990.00")]
)
def test_messages_format_money_for_their_locale(locale: str, shown: str) -> None:
    # refund_sent formats in the message itself; case_approved's amount goes through the
    # imported _shared.j2 macros for other messages, so check both paths.
    assert shown in render("refund_sent", locale).text
    assert shown in render("case_approved", locale, returnless=True).html
    offer = render_case(sample_for("exchange", "out_of_stock_offer"), "out_of_stock_offer", locale)
    assert shown in offer.text


def test_cny_in_a_zh_cn_message() -> None:
    case = sample_for("exchange", "out_of_stock_offer")
    rendered = render_case(
        case, "out_of_stock_offer", "zh-CN", amount={"amount": "990", "currency": "CNY"}
    )
    assert "¥990.00" in rendered.text and "¥990.00" in rendered.html


def test_a_fallback_message_formats_money_like_its_own_locale() -> None:
    # A locale without the message falls back to en, and so does its money.
    assert "TWD 990.00" in render("refund_sent", "fr").text


def test_zh_cn_templates_match_zh_tw() -> None:
    names = {p.name for p in (BUILTIN_TEMPLATES / "zh-TW").iterdir()}
    assert {p.name for p in (BUILTIN_TEMPLATES / "zh-CN").iterdir()} == names
    for name in names:
        text = (BUILTIN_TEMPLATES / "zh-CN" / name).read_text(encoding="utf-8")
        assert "zh-TW" not in text


def test_zh_cn_is_found_and_is_simplified() -> None:
    rendered = render("case_received", "zh-CN")
    assert rendered != render("case_received", "en")
    assert rendered != render("case_received", "zh-TW")
    assert 'lang="zh-Hans-CN"' in rendered.html
    for part in (rendered.subject, rendered.text, rendered.html):
        assert "退货" in part
        assert "退貨" not in part
    assert rendered.subject == "我们已收到您的退货申请（R-7Q2K9MXA）"
    # Mainland wording, not the Taiwan one character by character.
    approved = render("case_approved", "zh-CN", shipping_payer="customer")
    assert "快递单号" in approved.text and "物流單號" not in approved.text
    assert "售后详情页" in approved.text
    rejected = render("case_rejected", "zh-CN")
    assert "已超过可申请退货的期限" in rejected.text
    assert "申请保修" in rejected.text and "保固" not in rejected.text
    traditional = set("貨換單維訴態號請務際會這個們說處")
    for kind, message in CASES:
        case = sample_for(kind, message)
        out = render_message(message, "zh-CN", context(case, message))
        words = out.subject + out.text + out.html
        assert not traditional & set(words), (kind, message, traditional & set(words))


def test_when_filter() -> None:
    assert when("2026-11-29T02:00:00+00:00", "Asia/Taipei") == "2026-11-29 10:00 (Asia/Taipei)"
    assert when(DUE, "UTC") == "2026-11-29 02:00 (UTC)"
    assert when(datetime(2026, 11, 29, 2, 0), "Asia/Taipei") == "2026-11-29 10:00 (Asia/Taipei)"


def test_the_untranslated_check_finds_english() -> None:
    case = sample_for("refund", "case_rejected")
    values = context(case, "case_rejected", extra={"reason": None})
    english = render_message("case_rejected", "en", values)
    assert {"sorry", "accept", "policy"} <= untranslated_words(english, case, values["extra"])


def render_case(case: CaseView, name: str, locale: str, /, **extra: object) -> RenderedMessage:
    """Render one message of this case, with `extra` keys over the sample's."""
    values = context(case, name)
    values["extra"] = {**values["extra"], **extra}
    return render_message(name, locale, values)


@pytest.mark.parametrize("locale", LOCALES)
def test_exchange_approval_names_the_replacement_and_when_it_ships(locale: str) -> None:
    plain = render_case(sample_exchange_case(), "case_approved", locale)
    assert "TEE-L-BLK" in plain.text and "TEE-L-BLK" in plain.html
    assert "Zhongxiao E. Rd." in plain.text
    # A like-for-like swap refunds nothing, so no amount is mentioned at all.
    assert shows_no_twd(plain.text)
    assert ("passed inspection" if locale == "en" else "通過檢驗後") in plain.text

    cheaper = render_case(sample_exchange_case(difference=Decimal("100")), "case_approved", locale)
    assert twd("100.00", locale) in cheaper.text and twd("100.00", locale) in cheaper.html

    returnless = render_case(sample_exchange_case(returnless=True), "case_approved", locale)
    assert "Zhongxiao E. Rd." not in returnless.text
    assert "TEE-L-BLK" in returnless.text
    assert ("right away" if locale == "en" else "立即寄出換貨商品") in returnless.text

    advanced_case = sample_exchange_case()
    advanced_case.decision.advanced_exchange = True
    advanced = render_case(advanced_case, "case_approved", locale)
    assert "Zhongxiao E. Rd." in advanced.text
    assert ("charge you for the replacement" if locale == "en" else "收取換貨商品的費用") in (
        advanced.text
    )
    assert TAIPEI_DUE in advanced.text


@pytest.mark.parametrize("locale", LOCALES)
def test_exchange_inspection_passed_sends_the_replacement(locale: str) -> None:
    rendered = render_case(sample_for("exchange", "inspection_passed"), "inspection_passed", locale)
    assert ("we'll now send your replacement" if locale == "en" else "寄出您的換貨商品") in (
        rendered.text
    )
    assert "TEE-L-BLK" in rendered.text
    assert shows_no_twd(rendered.text)


@pytest.mark.parametrize("locale", LOCALES)
def test_refund_only_rejection_points_to_a_return(locale: str) -> None:
    case = sample_for("refund", "case_rejected")
    rendered = render_case(case, "case_rejected", locale, reason=None)
    if locale == "en":
        assert "please open a return case" in rendered.text
        assert "Open a return request from your order instead" in rendered.text
    else:
        assert "改以退貨退款辦理" in rendered.text
        assert "申請退貨退款" in rendered.text
    # Without the alternative, the letter still says what to do.
    case.decision.alternatives = []
    bare = render_case(case, "case_rejected", locale, reason=None)
    assert ("open a return request" if locale == "en" else "從訂單頁面申請退貨退款") in bare.text


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize(
    ("kind", "message", "amount"),
    [
        ("exchange", "difference_due", "300.00"),
        ("exchange", "out_of_stock_offer", "990.00"),
        ("refund", "refund_offer", "297.00"),
    ],
)
def test_offers_give_the_amount_and_the_deadline(
    kind: CaseKind, message: str, amount: str, locale: str
) -> None:
    rendered = render_case(sample_for(kind, message), message, locale)
    for part in (rendered.text, rendered.html):
        assert twd(amount, locale) in part
        assert TAIPEI_DUE in part


@pytest.mark.parametrize("locale", LOCALES)
def test_refund_offer_shows_the_agents_note_only_when_there_is_one(locale: str) -> None:
    case = sample_for("refund", "refund_offer")
    with_note = render_case(case, "refund_offer", locale)
    assert EXTRA["refund_offer"]["note"] in with_note.text
    heading = "A note from our team" if locale == "en" else "客服人員的說明"
    assert heading in with_note.text

    without = render_case(case, "refund_offer", locale, note="")
    assert heading not in without.text and heading not in without.html
    assert ("a partial refund" if locale == "en" else "部分退款") in without.text

    full = render_case(case, "refund_offer", locale, amount={"amount": "990", "currency": "TWD"})
    assert ("a full refund" if locale == "en" else "全額退款") in full.text


@pytest.mark.parametrize("locale", LOCALES)
def test_an_amount_may_be_a_bare_number_in_the_order_currency(locale: str) -> None:
    case = sample_for("exchange", "difference_due")
    rendered = render_case(case, "difference_due", locale, amount="300")
    assert twd("300.00", locale) in rendered.text


@pytest.mark.parametrize("locale", LOCALES)
def test_replacement_shipped_gives_tracking_and_reminds_of_the_original(locale: str) -> None:
    case = sample_for("exchange", "replacement_shipped")
    rendered = render_case(case, "replacement_shipped", locale)
    assert "TCAT-66600002" in rendered.text and "TCAT-66600002" in rendered.html
    # An advanced exchange's replacement goes out before the original comes back.
    assert TAIPEI_DUE in rendered.text

    case.deadlines = []
    done = render_case(case, "replacement_shipped", locale)
    assert TAIPEI_DUE not in done.text
    assert ("nothing you need to do" if locale == "en" else "不需要做任何事") in done.text


@pytest.mark.parametrize("locale", LOCALES)
def test_refund_only_steps_name_the_refund(locale: str) -> None:
    for message in ("fulfilment_cancelled", "interception_requested", "interception_failed"):
        rendered = render_case(sample_for("refund", message), message, locale)
        assert twd("990.00", locale) in rendered.text
        assert "SO-1001" in rendered.text
    stopped = render_case(
        sample_for("refund", "interception_requested"), "interception_requested", locale
    )
    assert ("refuse it" if locale == "en" else "拒收") in stopped.text


@pytest.mark.parametrize("locale", LOCALES)
def test_exchange_refund_sent_names_the_amount(locale: str) -> None:
    rendered = render_case(sample_for("exchange", "refund_sent"), "refund_sent", locale)
    assert twd("100.00", locale) in rendered.text
    assert "X-4H8N2PQA" in rendered.subject


@pytest.mark.parametrize("locale", LOCALES)
def test_an_undelivered_refund_request_skips_review(locale: str) -> None:
    unshipped = render_case(sample_refund_case(), "case_received", locale)
    assert ("cancel it before it ships" if locale == "en" else "在出貨前取消訂單") in unshipped.text
    shipped = render_case(sample_refund_case(stage="in_transit"), "case_received", locale)
    assert ("ask the carrier to stop the parcel" if locale == "en" else "攔截包裹") in shipped.text
