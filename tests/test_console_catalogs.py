"""The console's catalogs translate every text its templates show, placeholders intact."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from api.console.i18n import CONSOLE_LOCALES, catalog_path, render, translations
from domain.models import Locale
from scripts.console_messages import template_messages

TRANSLATED = [locale for locale in CONSOLE_LOCALES if locale is not Locale.EN]
PLACEHOLDER = re.compile(r"%\(\w+\)s")


@pytest.mark.parametrize("locale", TRANSLATED, ids=str)
def test_every_template_text_is_translated(locale: Locale) -> None:
    with catalog_path(locale).open("rb") as po:
        catalog = read_po(po)
    wanted = {message.id for message in template_messages() if message.id}
    have = {message.id: message.string for message in catalog if message.id}
    missing = sorted(text for text in wanted if not have.get(text))
    assert missing == [], f"untranslated in {locale}; run `python -m scripts.console_messages`"
    assert sorted(set(have) - wanted) == [], "texts no template uses any more"
    for text, translated in have.items():
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(translated)), text
        # Newstyle gettext %-formats every text: a bare % would fail the page.
        names = {name: "x" for name in re.findall(r"%\((\w+)\)s", text)}
        assert translated % names and text % names


def test_a_page_renders_in_each_language() -> None:
    for locale, title in ((Locale.EN, "Sign in"), (Locale.ZH_TW, "登入"), (Locale.ZH_CN, "登录")):
        html = render("login.html.j2", locale, {"csrf_token": "t", "next": "/console"})
        assert f'<html lang="{locale.value}">' in html and f"<h1>{title}</h1>" in html
    assert translations(Locale.ZH_TW).gettext("Page %(page)s of %(pages)s") == (
        "第 %(page)s 頁，共 %(pages)s 頁"
    )
