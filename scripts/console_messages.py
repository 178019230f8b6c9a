"""Update the console's translation catalogs from its templates.

    python -m scripts.console_messages

Extracts every `_()` text from api/console/templates and merges it into each language's
`.po` file under api/console/locales: new texts arrive untranslated (the suite's catalog test
then names them), texts no template uses any more are dropped, translations are kept.
"""

from __future__ import annotations

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from api.console.i18n import CONSOLE_LOCALES, TEMPLATES, catalog_path
from domain.models import Locale

METHODS = [("**.j2", "jinja2")]
OPTIONS = {"**.j2": {"extensions": "jinja2.ext.i18n"}}


def template_messages() -> Catalog:
    """Every text the templates translate."""
    catalog = Catalog()
    for filename, line, message, _comments, _context in extract_from_dir(
        str(TEMPLATES), method_map=METHODS, options_map=OPTIONS
    ):
        catalog.add(message, locations=[(filename, line)])
    return catalog


def update(locale: Locale) -> int:
    """Merge the templates' texts into a language's catalog; how many lack a translation."""
    path = catalog_path(locale)
    babel_locale = locale.value.replace("-", "_")
    if path.exists():
        with path.open("rb") as po:
            catalog = read_po(po, locale=babel_locale)
    else:
        catalog = Catalog(locale=babel_locale, project="aftersales console")
    catalog.update(template_messages(), no_fuzzy_matching=True)
    catalog.obsolete.clear()
    catalog.fuzzy = False  # the header: a fuzzy one is left out of the compiled catalog
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as po:
        write_po(po, catalog, width=100, omit_header=False, sort_output=False)
    return sum(1 for message in catalog if message.id and not message.string)


def main() -> None:
    """Update every catalog and say what is left to translate."""
    for locale in CONSOLE_LOCALES:
        if locale is Locale.EN:
            continue
        missing = update(locale)
        print(f"{catalog_path(locale)}: {missing} untranslated")


if __name__ == "__main__":
    main()
