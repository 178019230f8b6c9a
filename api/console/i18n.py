"""The console's languages: English templates, translated through gettext catalogs.

The catalogs are `.po` files beside this module (a translator edits text, not code), compiled
in memory when first used. Each language gets its own Jinja environment with its catalog
installed, so rendering never swaps translations under a concurrent request.
"""

from __future__ import annotations

import hashlib
import io
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

from domain.locales import Locale, match_locale

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
LOCALES = HERE / "locales"
# The console's languages: English is the templates' own text; the others have a catalog.
CONSOLE_LOCALES = (Locale.EN, Locale.ZH_TW, Locale.ZH_CN)


def catalog_path(locale: Locale) -> Path:
    """The `.po` file of a language (none for English)."""
    return LOCALES / f"{locale.value.replace('-', '_')}.po"


@cache
def translations(locale: Locale) -> Translations:
    """The compiled catalog of a language (an empty one for English)."""
    if locale is Locale.EN:
        return Translations()
    with catalog_path(locale).open("rb") as po:
        catalog = read_po(po, locale=locale.value.replace("-", "_"))
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


@cache
def environment(locale: Locale) -> Environment:
    """The Jinja environment of a language, its catalog installed."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals["asset"] = asset
    return env


@cache
def asset(name: str) -> str:
    """A static file's URL, named by its content: a browser never keeps a stale script."""
    digest = hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:12]
    return f"/console/static/{name}?v={digest}"


def render(name: str, locale: Locale, context: dict[str, Any]) -> str:
    """A console page in a language."""
    return environment(locale).get_template(name).render({**context, "locale": locale.value})


def negotiate(preferred: str | None, accept_language: str) -> Locale:
    """The agent's preferred language, else the browser's first one we have, else English."""
    if preferred in {locale.value for locale in CONSOLE_LOCALES}:
        return Locale(preferred)
    # The same matching as a customer's locale (domain/locales.py), but a language we don't
    # write gives way to the browser's next one instead of English at once.
    for part in accept_language.split(","):
        found = match_locale(part.split(";", 1)[0].strip())
        if found is not None and found in CONSOLE_LOCALES:
            return found
    return Locale.EN
