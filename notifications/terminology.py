"""The terminology table (`terminology.toml`): the term each locale uses for a concept, the
terms it avoids, and what a template's words must agree with."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).with_name("terminology.toml")
CHINESE = ("zh-TW", "zh-CN")
# Jinja's code and comments, and HTML tags: what is left is the words a reader sees.
_CODE = re.compile(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}|<[^>]*>", re.DOTALL)


@dataclass(frozen=True)
class Term:
    """One concept: how English shows it, each Chinese locale's term and its avoided ones."""

    concept: str
    en: tuple[re.Pattern[str], ...]
    terms: dict[str, str]
    avoid: dict[str, tuple[str, ...]]
    script: bool

    def shown_in(self, english: str) -> bool:
        """Whether an English template's words mention the concept."""
        return any(pattern.search(english) for pattern in self.en)


@cache
def terminology(path: Path = TABLE) -> tuple[Term, ...]:
    """The table's entries, in file order."""
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    return tuple(
        Term(
            concept=concept,
            en=tuple(re.compile(p, re.IGNORECASE) for p in entry["en"]),
            terms={locale: entry[locale] for locale in CHINESE},
            avoid={locale: tuple(entry[f"avoid-{locale}"]) for locale in CHINESE},
            script=bool(entry.get("script", False)),
        )
        for concept, entry in raw.items()
    )


def script_only(locale: str, path: Path = TABLE) -> frozenset[str]:
    """The characters only `locale`'s script writes, from the table's same-word pairs
    (訂單 / 订单 gives 訂 and 單 to zh-TW, 订 and 单 to zh-CN)."""
    other = CHINESE[1 - CHINESE.index(locale)]
    return frozenset(
        own
        for term in terminology(path)
        if term.script
        for own, theirs in zip(term.terms[locale], term.terms[other], strict=True)
        if own != theirs
    )


def words(template_source: str) -> str:
    """A template's text without its Jinja code, comments and HTML tags."""
    return _CODE.sub(" ", template_source)
