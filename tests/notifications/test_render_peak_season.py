"""Issue 11: the case-opened message tells a peak-season customer why windows and steps are
longer, in every locale, from the decision the rules gave."""

from __future__ import annotations

from datetime import datetime
from html import unescape

import pytest

from domain.models import CaseRequest, Locale
from domain.policy import Policy
from domain.rules import PEAK_SEASON, evaluate
from notifications.render import render_message
from notifications.samples import context, sample_case

POLICY = Policy.model_validate(
    {
        "peak_seasons": [
            {
                "name": "Singles' Day",
                "names": {"zh-TW": "雙11", "zh-CN": "双11"},
                "orders_from": "11-01",
                "orders_until": "11-15",
                "extra_return_days": 14,
                "timers": {"review": "3bd", "customer_shipment": "10d"},
            }
        ]
    }
)
# The sample return was delivered 2026-11-12 from an order of 2026-11-10.
NOW = datetime.fromisoformat("2026-11-14T10:00:00+08:00")

# Chinese punctuation is full width (ruff's RUF001 would have it ASCII).
EXPECTED = {
    "en": (
        "Ordered during Singles' Day (11-01 to 11-15): 14 more days to return, our reviews may "
        "take up to 3 business days, and you have 10 days to send the item back."
    ),
    "zh-TW": (
        "您在雙11期間（11-01 至 11-15）下單：可申請退貨的期限延長 14 天；"  # noqa: RUF001
        "客服審核最長可能需要 3 個工作天；您有 10 天的時間寄回商品。"  # noqa: RUF001
    ),
    "zh-CN": (
        "您在双11期间（11-01 至 11-15）下单：可申请退货的期限延长 14 天；"  # noqa: RUF001
        "客服审核最长可能需要 3 个工作日；您有 10 天的时间寄回商品。"  # noqa: RUF001
    ),
}


@pytest.mark.parametrize("locale", ["en", "zh-TW", "zh-CN"])
def test_case_received_says_why_a_peak_season_order_gets_more_time(locale: str) -> None:
    case = sample_case(locale=Locale(locale))
    request = CaseRequest.model_validate(
        case.model_dump(include={"type", "order", "customer", "items", "reason"})
    )
    case.decision = evaluate(request, policy=POLICY, now=NOW, prior_cases=0)
    assert case.decision.fired(PEAK_SEASON)
    message = render_message("case_received", locale, context(case, "case_received"))
    assert EXPECTED[locale] in message.text
    assert EXPECTED[locale] in unescape(message.html)
    if locale != "en":
        assert "Ordered during" not in message.text

    # An order outside every season reads as before.
    plain = sample_case(locale=Locale(locale))
    plain.decision = evaluate(request, policy=Policy(), now=NOW, prior_cases=0)
    quiet = render_message("case_received", locale, context(plain, "case_received"))
    assert "11-01" not in quiet.text and "11-01" not in quiet.html
