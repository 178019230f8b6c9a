"""Issue 11: a peak-season order's case waits under the season's longer review deadline, and
its first message tells the customer why."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from domain.calendar import BusinessCalendar
from domain.policy import Policy
from domain.rules import PEAK_SEASON
from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    deadline,
    entry,
    mail_text,
    mails_arrive,
    near,
    reach_deadline,
    stop,
)
from tests.workflows.test_return_review import OPENED_TEE


async def test_a_peak_season_order_waits_longer_for_review_and_is_told_why(stack: Stack) -> None:
    now = await stack.now()
    placed = now - timedelta(days=6)
    day = placed.astimezone(ZoneInfo("Asia/Taipei")).date()
    policy = Policy.model_validate(
        {
            "peak_seasons": [
                {
                    "name": "Year-end sale",
                    # The order's own shop date is the season's last day.
                    "orders_from": (day - timedelta(days=3)).isoformat(),
                    "orders_until": day.isoformat(),
                    "extra_return_days": 14,
                    "timers": {"review": "3bd"},
                },
                {"name": "Other", "orders_from": "2020-01-01", "orders_until": "2020-01-31"},
            ]
        }
    )
    case = case_input(now=now, policy=policy, items=OPENED_TEE, order={"placed_at": placed})
    # The case carries its own season alone, with the season's timer in force.
    assert [season.name for season in case.policy.peak_seasons] == ["Year-end sale"]
    assert case.policy.timer("review") == "3bd"
    assert case.decision.fired(PEAK_SEASON) and case.decision.review == "manual"
    [why] = [rule.message for rule in case.decision.rules if rule.id == PEAK_SEASON]
    assert why.endswith(": 14 more days to return, and our reviews may take up to 3 business days.")

    handle = await stack.start(case)
    view = await reach_deadline(handle, "review")
    calendar = BusinessCalendar.from_policy(case.policy, case.holidays)
    waiting_since = entry(view, "awaiting_review").at
    due = deadline(view, "review").due_at
    assert near(due, calendar.add(waiting_since, "3bd"))
    assert not near(due, calendar.add(waiting_since, "1bd"))

    await mails_arrive(stack.mail, case, "case_received")
    text = mail_text(stack.mail, case, "case_received")
    assert " ".join(why.split()) in " ".join(text.split())
    await stop(stack.client, handle)
