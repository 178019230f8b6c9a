"""Category and peak-season return windows at their boundaries, run as cases (issue 11, "Must
show"): the last day in opens the return and the customer is told why; the first day out is
rejected, and the rejection names the window that decided it.

The day counts themselves are checked exhaustively in tests/domain/test_policy_categories.py;
here each boundary goes through the workflow to the messages the customer gets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from domain.policy import Policy
from domain.rules import PEAK_SEASON
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import mail_names, mail_text, mails_arrive, reach, stop

SHOP = ZoneInfo("Asia/Taipei")
APPAREL_30 = {"categories": {"apparel": {"window_days": 30}}}
SEASON = "Year-end sale"
# The season's extra days on top of [returns]'s 7: its orders have 21 days.
WHY = ": 14 more days to return."


@dataclass(frozen=True)
class Window:
    """One boundary: the policy, when the order was placed relative to the season's end, how
    many days ago it was delivered, and what the customer must read."""

    policy: dict[str, Any]
    delivered_days_ago: int
    eligible: bool
    rule: str
    # For a peak-season policy: the order's shop day, relative to the season's last day.
    placed_after_season: int | None = None


WINDOWS = [
    pytest.param(
        Window(
            APPAREL_30,
            30,
            True,
            "Apparel can be returned within 30 days of delivery; delivered 30 days ago.",
        ),
        id="category-last-day-in",
    ),
    pytest.param(
        Window(
            APPAREL_30,
            31,
            False,
            "Apparel can be returned only within 30 days of delivery; delivered 31 days ago.",
        ),
        id="category-first-day-out",
    ),
    pytest.param(
        Window({}, 21, True, "Delivered 21 days ago; returns are accepted for 21 days.", 0),
        id="season-last-day-in",
    ),
    pytest.param(
        Window({}, 22, False, "Delivered 22 days ago; returns are accepted for only 21 days.", 0),
        id="season-first-day-out",
    ),
    pytest.param(
        # Ordered the day after the season: [returns]'s 7 days, and no season to explain.
        Window({}, 8, False, "Delivered 8 days ago; returns are accepted for only 7 days.", 1),
        id="ordered-after-the-season",
    ),
]


def season_policy(base: dict[str, Any], placed: datetime, after: int) -> Policy:
    """`base` with a season whose last order day is `after` shop days before `placed`'s."""
    last = placed.astimezone(SHOP).date() - timedelta(days=after)
    season = {
        "name": SEASON,
        "orders_from": (last - timedelta(days=3)).isoformat(),
        "orders_until": last.isoformat(),
        "extra_return_days": 14,
    }
    return Policy.model_validate({**base, "peak_seasons": [season]})


@pytest.mark.parametrize("window", WINDOWS)
async def test_a_window_at_its_boundary(stack: Stack, window: Window) -> None:
    now = await stack.now()
    # Same clock time: the shop's calendar days between delivery and now are exactly N.
    delivered = now - timedelta(days=window.delivered_days_ago)
    placed = delivered - timedelta(days=4)
    seasonal = window.placed_after_season is not None
    policy = (
        season_policy(window.policy, placed, window.placed_after_season or 0)
        if seasonal
        else Policy.model_validate(window.policy)
    )
    case = case_input(
        now=now,
        policy=policy,
        order={"placed_at": placed.isoformat(), "delivered_at": delivered.isoformat()},
    )
    decision = case.decision
    assert decision.eligible is window.eligible
    rule_id = "in_window" if window.eligible else "outside_return_window"
    assert [r.message for r in decision.rules if r.id == rule_id] == [window.rule]
    in_season = seasonal and window.placed_after_season == 0
    assert decision.fired(PEAK_SEASON) is in_season
    handle = await stack.start(case)

    if window.eligible:
        view = await reach(handle, "awaiting_shipment")
        await mails_arrive(stack.mail, case, "case_approved")
        assert mail_names(stack.mail, case) == ["case_received", "case_approved"]
    else:
        view = await reach(handle, "rejected")
        assert view.agent_actions == ["approve_exception"]
        await mails_arrive(stack.mail, case, "case_rejected")
        assert mail_names(stack.mail, case) == ["case_received", "case_rejected"]
        rejected = " ".join(mail_text(stack.mail, case, "case_rejected").split())
        assert f"- {window.rule}" in rejected
    assert view.decision == decision
    received = " ".join(mail_text(stack.mail, case, "case_received").split())
    # A season's order is told why its window is longer, in the first message already.
    assert (SEASON in received and WHY in received) is in_season
    if not in_season:
        assert "more days to return" not in received
    await stop(stack.client, handle)
