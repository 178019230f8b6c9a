"""Every template against the terminology table (notifications/terminology.toml): each
Chinese locale uses its own term where the English message shows the concept, never the
terms it avoids, and no character of the other script."""

from __future__ import annotations

from pathlib import Path

import pytest

from notifications.render import BUILTIN_TEMPLATES
from notifications.terminology import CHINESE, script_only, terminology, words

TEMPLATES = {
    locale: sorted((BUILTIN_TEMPLATES / locale).glob("*.j2")) for locale in ("en", *CHINESE)
}


def _source(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_the_table_is_sound() -> None:
    terms = terminology()
    assert len({t.concept for t in terms}) == len(terms) >= 20
    for term in terms:
        for locale in CHINESE:
            # A locale never avoids its own term.
            assert term.terms[locale] not in term.avoid[locale], term.concept
    for locale in CHINESE:
        other = CHINESE[1 - CHINESE.index(locale)]
        # A script's own characters never appear in the other locale's terms.
        for term in terms:
            assert not set(term.terms[other]) & script_only(locale), term.concept
    assert {"訂", "單", "貨", "運", "費", "帳", "戶"} <= script_only("zh-TW")
    assert {"订", "单", "货", "运", "费", "账", "户"} <= script_only("zh-CN")


@pytest.mark.parametrize("locale", CHINESE)
def test_every_template_uses_its_terms_where_english_shows_the_concept(locale: str) -> None:
    missing = []
    for english in TEMPLATES["en"]:
        translated = BUILTIN_TEMPLATES / locale / english.name
        assert translated.is_file(), f"{locale} has no {english.name}"
        text, source = words(_source(english)), _source(translated)
        missing += [
            f"{english.name}: {term.concept} ({term.terms[locale]})"
            for term in terminology()
            if term.shown_in(text) and term.terms[locale] not in source
        ]
    assert missing == []


@pytest.mark.parametrize("locale", CHINESE)
def test_no_template_uses_a_term_its_locale_avoids(locale: str) -> None:
    found = [
        f"{path.name}: {avoided} (say {term.terms[locale]})"
        for path in TEMPLATES[locale]
        for term in terminology()
        for avoided in term.avoid[locale]
        if avoided in _source(path)
    ]
    assert found == []


@pytest.mark.parametrize("locale", CHINESE)
def test_no_template_writes_the_other_scripts_characters(locale: str) -> None:
    other = CHINESE[1 - CHINESE.index(locale)]
    foreign = script_only(other)
    found = [
        f"{path.name}: {sorted(set(_source(path)) & foreign)}"
        for path in TEMPLATES[locale]
        if set(_source(path)) & foreign
    ]
    assert found == []
