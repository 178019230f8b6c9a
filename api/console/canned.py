"""Canned replies: ready-made text for `respond` and `request_info`, per customer language.

Kept in a TOML file a shop edits (`AFTERSALES_CANNED_REPLIES`, else the one shipped beside
this module), read and validated when the API starts: a broken file fails the start naming
the key, as the policy file does.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.models import CaseView, Locale

DEFAULT_FILE = Path(__file__).parent / "canned_replies.toml"
# The form field each action's text goes into.
TEXT_FIELDS = {"respond": "message", "request_info": "question"}

Text = Annotated[str, Field(min_length=1, max_length=4000)]


class _PerLocale(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    en: Text
    zh_tw: Text | None = Field(default=None, alias="zh-TW")
    zh_cn: Text | None = Field(default=None, alias="zh-CN")

    def get(self, locale: Locale) -> str:
        """The text in this language, else in English."""
        chosen = {Locale.ZH_TW: self.zh_tw, Locale.ZH_CN: self.zh_cn}.get(locale)
        return chosen or self.en


class CannedReply(BaseModel):
    """One ready-made reply."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["respond", "request_info"]
    title: _PerLocale
    text: _PerLocale


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reply: list[CannedReply] = []


class CannedError(ValueError):
    """The canned replies file can't be used; the message names the file and the key."""


def load_canned(path: Path | None) -> list[CannedReply]:
    """Read and validate the canned replies (the shipped file when no path is given)."""
    path = path or DEFAULT_FILE
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise CannedError(f"{path}: cannot read: {err.strerror}") from err
    except tomllib.TOMLDecodeError as err:
        raise CannedError(f"{path}: not valid TOML: {err}") from err
    try:
        return _File.model_validate(raw).reply
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        raise CannedError(f"{path}: {key}: {first['msg']}") from err


def choices(
    replies: list[CannedReply], action: str, *, agent: Locale, case: CaseView
) -> list[tuple[str, str]]:
    """(title in the agent's language, text in the customer's) for an action's replies."""
    customer = Locale(case.customer.locale)
    return [
        (
            reply.title.get(agent),
            reply.text.get(customer)
            .replace("{case_id}", case.id)
            .replace("{order_id}", case.order.id),
        )
        for reply in replies
        if reply.action == action
    ]
