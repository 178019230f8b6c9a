"""The languages we write to customers and agents in, and how any language tag maps to one.

Storefronts and browsers send BCP 47 tags (`zh-HK`, `zh_Hant_TW`, `en-GB`, `fr`); we have
templates in three. `match_locale` finds the one a tag means, or None when we have none for it
(the console's `Accept-Language` walk then tries the browser's next language);
`resolve_locale` is the customer's language: the match, else English. Both are pure and cheap:
a case's customer is validated with every decode of its view, inside the workflow sandbox too,
so no CLDR data is read here (the zh table below is CLDR's likely script, written out).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeGuard


class Locale(StrEnum):
    EN = "en"
    ZH_TW = "zh-TW"
    ZH_CN = "zh-CN"


FALLBACK_LOCALE = Locale.EN
# RFC 5646 §4.4.1: a tag of up to 35 characters is enough for any language, script and region.
TAG_MAX = 35
# A language tag's shape: a 2-3 (or 5-8) letter language, then subtags of 1-8 letters or digits,
# joined by `-` (or `_`, as POSIX and Java spell them); `x-` (private use) and `i-`
# (grandfathered) tags are well-formed too, and fall back like any language we don't write.
_TAG = re.compile(r"^(?:[a-z]{2,3}|[a-z]{5,8}|[xi])(?:[-_][a-z0-9]{1,8})*$", re.IGNORECASE)
# Chinese by script: Traditional for Taiwan, Hong Kong and Macau, Simplified elsewhere (the
# mainland, Singapore, Malaysia, and a bare `zh`), as CLDR's likely subtags have it.
_TRADITIONAL_REGIONS = frozenset({"tw", "hk", "mo"})
_SCRIPTS = {"hant": Locale.ZH_TW, "hans": Locale.ZH_CN}


def is_language_tag(value: object) -> TypeGuard[str]:
    """Whether `value` is a well-formed language tag (a string, at most 35 characters)."""
    return isinstance(value, str) and len(value) <= TAG_MAX and bool(_TAG.fullmatch(value))


def match_locale(tag: str) -> Locale | None:
    """The locale a well-formed language tag means, or None when we write no such language.

    Case-insensitive; `_` works as `-`. `zh-HK`, `zh-MO`, `zh-Hant(-*)` → zh-TW; `zh-SG`,
    `zh-Hans(-*)`, a bare `zh` → zh-CN; `en-*` → en.
    """
    if not is_language_tag(tag):
        return None
    language, *rest = tag.lower().replace("_", "-").split("-")
    if language == "en":
        return Locale.EN
    if language != "zh":
        return None
    for subtag in rest:
        # An explicit script decides; otherwise the first region does.
        if subtag in _SCRIPTS:
            return _SCRIPTS[subtag]
    region = next((s for s in rest if len(s) == 2 or (len(s) == 3 and s.isdigit())), None)
    return Locale.ZH_TW if region in _TRADITIONAL_REGIONS else Locale.ZH_CN


def resolve_locale(value: object) -> Locale:
    """The customer's locale for a language tag: its best match, English for any other
    language. Raises ValueError for a value that is no language tag at all."""
    if not is_language_tag(value):
        raise ValueError(
            "must be a language tag such as en, zh-TW or zh-CN (at most"
            f" {TAG_MAX} letters, digits and hyphens)"
        )
    return match_locale(value) or FALLBACK_LOCALE
