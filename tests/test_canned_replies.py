"""Canned replies: the shipped file, a shop's own file, and a broken one."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from api.console.canned import DEFAULT_FILE, CannedError, choices, load_canned
from domain.models import CaseView, Locale
from tests.support.factory import request_body


def _case(locale: str) -> CaseView:
    now = datetime.now(UTC)
    body = request_body(now=now, customer={"locale": locale})
    return CaseView.model_validate(
        {**body, "id": "R-CANNED01", "created_at": now, "updated_at": now,
         "status": "awaiting_review", "status_url": "http://x/s/t",
         "decision": {"eligible": True, "refund_estimate": {"amount": "1", "currency": "TWD"},
                      "restocking_fee": {"amount": "0", "currency": "TWD"}}}
    )  # fmt: skip


def test_the_shipped_replies_cover_both_actions_in_every_language() -> None:
    replies = load_canned(None)
    assert {reply.action for reply in replies} == {"respond", "request_info"}
    for reply in replies:
        assert reply.text.zh_tw and reply.text.zh_cn and reply.title.zh_tw


def test_a_reply_comes_in_the_customers_language_with_the_case_filled_in() -> None:
    case = _case("zh-TW")
    [(title, text), *_] = choices(load_canned(None), "request_info", agent=Locale.EN, case=case)
    assert title == "Ask for a photo"  # the agent's language
    assert text.startswith("能否請您提供商品與包裝的照片") and "R-CANNED01" in text
    assert choices(load_canned(None), "approve", agent=Locale.EN, case=case) == []


def test_a_shops_own_file_is_used_and_a_broken_one_names_the_key(tmp_path: Path) -> None:
    own = tmp_path / "replies.toml"
    own.write_text(
        '[[reply]]\naction = "respond"\ntitle.en = "Hi"\ntext.en = "Hello about {order_id}"\n'
    )
    [reply] = load_canned(own)
    case = _case("zh-CN")
    # No zh-CN text: the English one.
    assert choices([reply], "respond", agent=Locale.ZH_CN, case=case) == [
        ("Hi", f"Hello about {case.order.id}")
    ]
    own.write_text('[[reply]]\naction = "approve"\ntitle.en = "x"\ntext.en = "y"\n')
    with pytest.raises(CannedError, match=r"reply\.0\.action"):
        load_canned(own)
    with pytest.raises(CannedError, match="cannot read"):
        load_canned(tmp_path / "missing.toml")
    assert DEFAULT_FILE.exists()
