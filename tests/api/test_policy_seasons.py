"""Issue 11 through the API: the dry run and the opened case read categories and peak seasons,
and the case waits under its season's review deadline."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from domain.calendar import BusinessCalendar
from tests.api.conftest import POLICY, Api
from tests.support.factory import request_body


async def test_the_dry_run_and_the_case_read_the_category_and_the_season(api: Api) -> None:
    now = datetime.now(UTC)
    body = request_body(
        now=now,
        order={
            "placed_at": "2020-01-10T10:00:00+08:00",
            "delivered_at": (now - timedelta(days=20)).isoformat(),
        },
        items=[{"sku": "SOFA-1", "category": "bulky", "unit_price": "900.00", "opened": True}],
    )
    dry = await api.request("POST", "/v1/policy/evaluate", "storefront", json=body)
    assert dry.status_code == 200, dry.text
    decision = dry.json()
    rules = {rule["id"]: rule["message"] for rule in decision["rules"]}
    assert decision["eligible"] is True and decision["review"] == "manual"
    # bulky's 10 days, and 14 more for the season: day 20 is in.
    assert rules["in_window"].startswith("Bulky can be returned within 24 days of delivery")
    assert rules["peak_season"] == (
        "Ordered during Test season (2020-01-01 to 2020-01-31): 14 more days to return, "
        "and our reviews may take up to 3 business days."
    )
    assert decision["peak_season"]["timers"] == {"review": "3bd"}

    opened = await api.request("POST", "/v1/cases", "storefront", json=body)
    assert opened.status_code == 201, opened.text
    assert opened.json()["decision"] == decision
    case = await api.reach(opened.json()["id"], "awaiting_review")
    # A status shows a moment before the wait behind it lists its deadline.
    for _ in range(200):
        if any(d["name"] == "review" for d in case["deadlines"]):
            break
        await asyncio.sleep(0.05)
        case = await api.case(case["id"])
    [waiting] = [e for e in case["timeline"] if e["kind"] == "awaiting_review"]
    [review] = [d for d in case["deadlines"] if d["name"] == "review"]
    calendar = BusinessCalendar.from_policy(POLICY)
    expected = calendar.add(datetime.fromisoformat(waiting["at"]), "3bd")
    assert abs(datetime.fromisoformat(review["due_at"]) - expected) < timedelta(minutes=1)
