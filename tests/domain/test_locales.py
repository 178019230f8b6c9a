"""A customer's language tag resolves to the locale we write in (domain/locales.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from api.console.i18n import negotiate
from domain.locales import Locale, match_locale, resolve_locale
from domain.models import Customer

EN, TW, CN = Locale.EN, Locale.ZH_TW, Locale.ZH_CN

# (tag as sent, the locale it resolves to)
TABLE: list[tuple[str, Locale]] = [
    ("en", EN),
    ("zh-TW", TW),
    ("zh-CN", CN),
    ("zh-HK", TW),
    ("zh-MO", TW),
    ("zh-SG", CN),
    ("zh-Hant", TW),
    ("zh-Hant-TW", TW),
    ("zh-Hant-HK", TW),
    ("zh-Hans", CN),
    ("zh-Hans-CN", CN),
    ("zh-Hans-SG", CN),
    # An explicit script wins over the region.
    ("zh-Hans-HK", CN),
    ("zh-Hant-CN", TW),
    # A bare zh, and other Chinese regions, read Simplified (CLDR's likely script).
    ("zh", CN),
    ("zh-MY", CN),
    ("zh-US", CN),
    ("en-GB", EN),
    ("en-US", EN),
    ("en-Latn-IN", EN),
    ("fr", EN),
    ("fr-CA", EN),
    ("ja-JP", EN),
    ("tlh", EN),
    ("x-klingon", EN),
    # Case-insensitive, and `_` for `-`.
    ("ZH-hk", TW),
    ("zh_HK", TW),
    ("zh_hant_tw", TW),
    ("ZH_SG", CN),
    ("EN_gb", EN),
    ("zh-tw", TW),
]


@pytest.mark.parametrize(("tag", "expected"), TABLE)
def test_the_mapping_table(tag: str, expected: Locale) -> None:
    assert resolve_locale(tag) is expected
    customer = Customer(id="C-1", locale=tag)  # type: ignore[arg-type]
    assert customer.locale is expected
    # The original tag stays on the case only when it differs from what it resolved to.
    assert customer.requested_locale == (None if tag == expected.value else tag)
    # A stored customer validates again to the same thing (every decode of a case view).
    again = Customer.model_validate(customer.model_dump(mode="json"))
    assert (again.locale, again.requested_locale) == (customer.locale, customer.requested_locale)


NOT_TAGS: list[Any] = [
    "",
    " ",
    "e",
    "english please",
    "zh-" + "x" * 40,
    "en\n",
    "zh\x00TW",
    "zh--TW",
    "-zh",
    "zh-TW-",
    "中文",
    7,
    None,
    ["en"],
    {"tag": "en"},
]


@pytest.mark.parametrize("value", NOT_TAGS)
def test_a_value_that_is_no_language_tag_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(ValueError, match="language tag"):
        resolve_locale(value)
    with pytest.raises(ValidationError) as caught:
        Customer(id="C-1", locale=value)
    assert [e["loc"] for e in caught.value.errors()] == [("locale",)]


def test_match_locale_leaves_languages_we_dont_write_to_the_caller() -> None:
    assert match_locale("fr-FR") is None
    assert match_locale("not a tag") is None
    assert match_locale("zh-HK") is TW


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("zh-HK,zh;q=0.8,en;q=0.5", TW),
        # A language we don't write gives way to the browser's next one, not English.
        ("fr-FR,fr;q=0.9,zh-SG;q=0.8", CN),
        ("de, zh_Hant", TW),
        ("ja", EN),
        ("*", EN),
        ("", EN),
        ("en-GB,zh-TW", EN),
    ],
)
def test_the_console_negotiates_with_the_same_table(accept: str, expected: Locale) -> None:
    assert negotiate(None, accept) is expected
    # The agent's own choice comes first.
    assert negotiate("zh-CN", accept) is CN
