"""Issue 11: per-category policy and peak seasons, each at its boundary."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from config.temporal import data_converter
from domain.models import CaseRequest, Decision
from domain.policy import Policy, PolicyError, load_policy
from domain.rules import PEAK_SEASON, evaluate
from tests.support.factory import case_input
from workflows.case import CaseInput

# Delivered 23:30 shop time (15:30 UTC): a UTC calendar would count every day one short.
DELIVERED = "2026-11-20T15:30:00+00:00"
PLACED = "2026-11-05T10:00:00+08:00"

POLICY = Policy.model_validate(
    {
        "categories": {
            "apparel": {"window_days": 30, "restocking_fee_percent": 15},
            "swimwear": {"window_days": 3},
            "electronics": {"auto_approve_max_value": "5000", "defect_window_days": 30},
            "Cosmetics": {"returnless_max_value": "100"},
            "lingerie": {"returnable": False},
            "food": {"returnable": True},
        },
        "peak_seasons": [
            {
                "name": "Singles' Day",
                "names": {"zh-TW": "雙11", "zh-CN": "双11"},
                "orders_from": "11-01",
                "orders_until": "11-15",
                "extra_return_days": 14,
                "timers": {"review": "3bd"},
            },
            {"name": "Year end", "orders_from": "12-20", "orders_until": "01-05"},
        ],
    }
)
NO_SEASON = POLICY.model_copy(update={"peak_seasons": []})


def local_day(n: int, clock: str = "00:10") -> datetime:
    """`clock` shop time (Asia/Taipei), n calendar days after the delivery day."""
    return datetime.fromisoformat(f"2026-11-20T{clock}:00+08:00") + timedelta(days=n)


def item(
    category: str, price: str = "990.00", *, opened: bool = False, sku: str = ""
) -> dict[str, Any]:
    return {
        "sku": sku or f"{category.upper()}-1",
        "category": category,
        "unit_price": price,
        "opened": opened,
    }


def request(
    *items: dict[str, Any], reason: str = "size_fit", placed_at: str = PLACED, kind: str = "return"
) -> CaseRequest:
    return CaseRequest.model_validate(
        {
            "type": kind,
            "order": {
                "id": "SO-1",
                "placed_at": placed_at,
                "delivered_at": DELIVERED,
                "currency": "TWD",
            },
            "customer": {"id": "C-1"},
            "items": list(items) or [item("apparel")],
            "reason": reason,
            "evidence": ["https://img.example/1.jpg"],
        }
    )


def decide(req: CaseRequest, now: datetime, policy: Policy = NO_SEASON) -> Decision:
    return evaluate(req, policy=policy, now=now, prior_cases=0)


def rule(decision: Decision, rule_id: str) -> str:
    [message] = [hit.message for hit in decision.rules if hit.id == rule_id]
    return message


def test_a_category_window_holds_to_its_last_day_in_shop_time() -> None:
    # Day 30 at 00:10 shop time is still day 29 in UTC: the shop's dates decide.
    inside = decide(request(item("apparel")), local_day(30))
    assert inside.eligible
    assert rule(inside, "in_window") == (
        "Apparel can be returned within 30 days of delivery; delivered 30 days ago."
    )
    outside = decide(request(item("apparel")), local_day(31))
    assert not outside.eligible
    assert [hit.id for hit in outside.rules] == ["outside_return_window"]
    assert rule(outside, "outside_return_window") == (
        "Apparel can be returned only within 30 days of delivery; delivered 31 days ago."
    )
    # A category without a window of its own keeps [returns]'s 7 days, worded as before.
    shoes = decide(request(item("shoes")), local_day(8))
    assert rule(shoes, "outside_return_window") == (
        "Delivered 8 days ago; returns are accepted for only 7 days."
    )
    # A seller fault reads the category's defect window.
    broken = decide(request(item("electronics"), reason="defective"), local_day(30))
    assert broken.eligible and "for a defective item within 30 days" in rule(broken, "in_window")
    assert not decide(request(item("electronics"), reason="defective"), local_day(31)).eligible


def test_every_item_must_be_in_its_own_window() -> None:
    mixed = request(item("apparel"), item("swimwear"))
    assert decide(mixed, local_day(3)).eligible
    # Both in window: the strictest window is the one that decided, and it names itself.
    assert rule(decide(mixed, local_day(3)), "in_window").startswith(
        "Swimwear can be returned within 3 days of delivery"
    )
    # A line past its own window stays out; the line still inside it goes ahead.
    late = decide(mixed, local_day(4))
    assert late.eligible
    assert [(line.sku, line.eligible) for line in late.lines] == [
        ("APPAREL-1", True),
        ("SWIMWEAR-1", False),
    ]
    assert late.excluded[0].rule is not None and late.excluded[0].rule.message == (
        "Swimwear can be returned only within 3 days of delivery; delivered 4 days ago."
    )
    assert rule(late, "lines_excluded") == (
        "1 of 2 lines can't be returned and stay with the customer; the others go ahead. "
        "SWIMWEAR-1: Swimwear can be returned only within 3 days of delivery; "
        "delivered 4 days ago."
    )
    assert late.refund_estimate.amount == Decimal("990.00")
    # Every line past its window: the case is refused, naming each window.
    with_default = decide(request(item("swimwear"), item("shoes")), local_day(8))
    assert not with_default.eligible
    assert rule(with_default, "outside_return_window") == (
        "Swimwear can be returned only within 3 days of delivery, other items only within "
        "7 days; delivered 8 days ago."
    )


def test_a_category_fee_applies_to_its_opened_items() -> None:
    tee = request(item("apparel", "990.00", opened=True, sku="TEE"))
    decision = decide(tee, local_day(1))
    assert decision.restocking_fee.amount == Decimal("148.50")
    assert decision.refund_estimate.amount == Decimal("841.50")
    assert rule(decision, "restocking_fee") == (
        "A 15% restocking fee of TWD 148.50 applies to opened apparel (TEE)."
    )
    both = request(
        item("apparel", "990.00", opened=True, sku="TEE"),
        item("shoes", "2000.00", opened=True, sku="SHOE"),
        item("apparel", "500.00", sku="CAP"),  # unopened: no fee
    )
    decision = decide(both, local_day(1))
    assert decision.restocking_fee.amount == Decimal("348.50")  # 148.50 + 10% of 2000
    assert rule(decision, "restocking_fee") == (
        "A restocking fee of TWD 348.50 applies to opened items: "
        "15% on apparel (TEE); 10% on other items (SHOE)."
    )


def test_a_mixed_case_takes_the_strictest_limits() -> None:
    # Electronics alone may auto-approve up to 5000; the apparel in the case holds it to 3000.
    alone = decide(request(item("electronics", "4000.00")), local_day(1))
    assert alone.review == "auto"
    assert "TWD 5,000.00 limit for electronics" in rule(alone, "auto_approve")
    mixed = decide(request(item("electronics", "4000.00"), item("apparel", "100.00")), local_day(1))
    assert mixed.review == "manual"
    assert "above the TWD 3,000.00 auto-approve limit" in rule(mixed, "manual_review")
    # Cosmetics (matched ignoring case) hold a seller-fault case to a 100 returnless limit.
    cheap = request(item("cosmetics", "80.00"), item("shoes", "70.00"), reason="defective")
    decision = decide(cheap, local_day(1))
    assert not decision.returnless and decision.shipping_payer == "seller"
    assert decide(request(item("shoes", "150.00"), reason="defective"), local_day(1)).returnless
    only_cosmetics = decide(request(item("cosmetics", "90.00"), reason="defective"), local_day(1))
    assert only_cosmetics.returnless
    assert "TWD 100.00 returnless limit for cosmetics" in rule(only_cosmetics, "returnless")


def test_non_returnable_categories_have_one_source_of_truth() -> None:
    assert "lingerie" in NO_SEASON.returns.non_returnable_categories
    assert "food" not in NO_SEASON.returns.non_returnable_categories
    assert all(section.returnable is None for section in NO_SEASON.categories.values())
    assert "lingerie" not in NO_SEASON.categories and "food" not in NO_SEASON.categories
    blocked = decide(request(item("lingerie")), local_day(1))
    assert [hit.id for hit in blocked.rules] == ["in_window", "non_returnable_category"]
    assert decide(request(item("lingerie"), reason="defective"), local_day(1)).eligible
    assert decide(request(item("food")), local_day(1)).eligible
    assert not decide(request(item("digital")), local_day(1)).eligible
    # The loaded copy reads back the same (a case's input is decoded again and again).
    assert Policy.model_validate_json(NO_SEASON.model_dump_json(exclude_defaults=True)) == NO_SEASON


ORDER_DAYS = [
    pytest.param("2026-10-31T23:59:00+08:00", False, id="day-before"),
    pytest.param("2026-10-31T16:00:00+00:00", True, id="first-day-in-shop-time"),
    pytest.param("2026-11-15T23:59:00+08:00", True, id="last-day"),
    pytest.param("2026-11-15T16:00:00+00:00", False, id="day-after-in-shop-time"),
]


@pytest.mark.parametrize(("placed_at", "in_season"), ORDER_DAYS)
def test_a_season_covers_its_first_and_last_order_days(placed_at: str, in_season: bool) -> None:
    shoes = request(item("shoes"), placed_at=placed_at)
    window = 7 + 14 if in_season else 7
    assert decide(shoes, local_day(window), POLICY).eligible
    late = decide(shoes, local_day(window + 1), POLICY)
    assert not late.eligible
    assert f"accepted for only {window} days" in rule(late, "outside_return_window")
    # The season's extra days widen category windows too.
    assert (
        decide(request(item("apparel"), placed_at=placed_at), local_day(30 + 14), POLICY).eligible
        is in_season
    )
    copy = POLICY.for_order(shoes.order)
    assert copy.timer("review") == ("3bd" if in_season else "1bd")
    assert (decide(shoes, local_day(1), POLICY).peak_season is not None) is in_season


def test_the_customer_is_told_why_and_the_dry_run_shows_it() -> None:
    shoes = request(item("shoes"), placed_at="2026-11-11T20:00:00+08:00")
    decision = decide(shoes, local_day(2), POLICY)
    assert [hit.id for hit in decision.rules][:2] == ["in_window", PEAK_SEASON]
    assert rule(decision, PEAK_SEASON) == (
        "Ordered during Singles' Day (11-01 to 11-15): 14 more days to return, "
        "and our reviews may take up to 3 business days."
    )
    assert rule(decision, "in_window") == "Delivered 2 days ago; returns are accepted for 21 days."
    assert decision.peak_season is not None
    assert decision.peak_season.names["zh-TW"] == "雙11"
    assert decision.peak_season.timers == {"review": "3bd"}
    # The case's own copy decides the same (a child case evaluates with it).
    assert decide(shoes, local_day(2), POLICY.for_order(shoes.order)) == decision
    # Refused anyway: the season explains the longer window, not SLAs the case won't meet.
    late = decide(shoes, local_day(22), POLICY)
    assert [hit.id for hit in late.rules] == ["outside_return_window", PEAK_SEASON]
    assert rule(late, PEAK_SEASON).endswith(": 14 more days to return.")
    # A complaint has no window: only the slower review is news.
    complaint = CaseRequest.model_validate(
        {
            **shoes.model_dump(mode="json"),
            "type": "complaint",
            "reason": None,
            "complaint": {"category": "logistics"},
        }
    )
    assert rule(decide(complaint, local_day(2), POLICY), PEAK_SEASON).endswith(
        ": our reviews may take up to 3 business days."
    )


def test_yearly_seasons_run_over_new_year_and_dated_ones_once() -> None:
    policy = Policy.model_validate(
        {
            "peak_seasons": [
                {
                    "name": "Year end",
                    "orders_from": "12-20",
                    "orders_until": "01-05",
                    "extra_return_days": 7,
                },
                {
                    "name": "Lunar New Year 2027",
                    "orders_from": "2027-01-20",
                    "orders_until": "2027-02-10",
                    "timers": {"dispatch": "3bd"},
                },
            ]
        }
    )

    def season(placed: str) -> str | None:
        found = policy.season_for(datetime.fromisoformat(placed))
        return found.name if found else None

    assert season("2026-12-20T00:00:00+08:00") == "Year end"
    assert season("2027-01-05T23:00:00+08:00") == "Year end"
    assert season("2027-01-06T00:00:00+08:00") is None
    assert season("2027-02-10T12:00:00+08:00") == "Lunar New Year 2027"
    assert season("2028-02-01T12:00:00+08:00") is None


def test_a_case_carries_only_its_own_season() -> None:
    now = datetime(2026, 11, 20, 4, tzinfo=UTC)
    plain = case_input(now=now, policy=POLICY, order={"placed_at": "2026-11-18T10:00:00+08:00"})
    (payload,) = data_converter.payload_converter.to_payloads([plain])
    carried = json.loads(payload.data)["policy"]
    assert "peak_seasons" not in carried and carried["timers"] == {}
    assert plain.decision.peak_season is None and not plain.decision.fired(PEAK_SEASON)

    peak = case_input(now=now, policy=POLICY, order={"placed_at": "2026-11-11T10:00:00+08:00"})
    (payload,) = data_converter.payload_converter.to_payloads([peak])
    carried = json.loads(payload.data)["policy"]
    assert [s["name"] for s in carried["peak_seasons"]] == ["Singles' Day"]
    assert carried["timers"] == {"review": "3bd"}
    (back,) = data_converter.payload_converter.from_payloads([payload], [CaseInput])
    assert back.policy == peak.policy and back.policy.timer("review") == "3bd"
    assert back.policy.for_order(peak.request.order) == back.policy
    assert Policy().for_order(peak.request.order) is not None
    assert (
        "categories"
        not in json.loads(
            data_converter.payload_converter.to_payloads([case_input(now=now)])[0].data
        )["policy"]
    )


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_file_with_categories_and_seasons_loads(tmp_path: Path) -> None:
    policy = load_policy(
        write(
            tmp_path,
            """
[returns]
non_returnable_categories = ["food"]

[categories.apparel]
window_days = 30
returnable = true

[categories.underwear]
returnable = false

[[peak_seasons]]
name = "Lunar New Year"
orders_from = 2027-01-20
orders_until = 2027-02-10
extra_return_days = 10
timers = { review = "2bd", dispatch = "3bd" }
""",
        )
    )
    assert policy.returns.non_returnable_categories == ["food", "underwear"]
    assert set(policy.categories) == {"apparel"}
    [season] = policy.peak_seasons
    assert (season.orders_from, season.orders_until) == ("2027-01-20", "2027-02-10")


SEASON = '[[peak_seasons]]\nname = "x"\norders_from = "11-01"\norders_until = "11-15"\n'
BAD_FILES = [
    pytest.param(
        "[categories.apparel]\nwindow_days = -1\n",
        "categories.apparel.window_days",
        id="bad-window",
    ),
    pytest.param(
        "[categories.apparel]\nwindows = 30\n", "categories.apparel.windows", id="unknown-key"
    ),
    pytest.param(
        "[categories.apparel]\nrestocking_fee_percent = 120\n",
        "categories.apparel.restocking_fee_percent",
        id="fee-over-100",
    ),
    pytest.param(
        '[categories.apparel]\nauto_approve_max_value = "lots"\n',
        "categories.apparel.auto_approve_max_value",
        id="bad-amount",
    ),
    pytest.param(
        '[categories.apparel]\nreturnable = "no"\n', "categories.apparel.returnable", id="bad-bool"
    ),
    pytest.param(
        '[returns]\nnon_returnable_categories = ["Food"]\n[categories.food]\nreturnable = true\n',
        "categories.food.returnable",
        id="returnable-and-listed",
    ),
    pytest.param(
        "[categories.Apparel]\nwindow_days = 3\n[categories.apparel]\nwindow_days = 4\n",
        "categories: ",
        id="same-category-twice",
    ),
    pytest.param(
        '[[peak_seasons]]\nname = "x"\norders_from = "13-01"\norders_until = "12-31"\n',
        "peak_seasons.0.orders_from",
        id="bad-day",
    ),
    pytest.param(
        '[[peak_seasons]]\nname = "x"\norders_from = "11-01"\norders_until = 2026-11-15\n',
        "peak_seasons.0",
        id="mixed-days",
    ),
    pytest.param(
        '[[peak_seasons]]\nname = "x"\norders_from = 2026-11-15\norders_until = 2026-11-01\n',
        "peak_seasons.0",
        id="ends-before-start",
    ),
    pytest.param(
        SEASON + 'timers = { reviews = "3bd" }\n',
        "peak_seasons.0.timers",
        id="unknown-timer",
    ),
    pytest.param(
        SEASON + 'timers = { review = "3 days" }\n',
        "peak_seasons.0.timers.review",
        id="bad-duration",
    ),
    pytest.param(
        SEASON + "extra_days = 3\n",
        "peak_seasons.0.extra_days",
        id="unknown-season-key",
    ),
    pytest.param(
        '[[peak_seasons]]\nname = "a"\norders_from = "12-20"\norders_until = "01-05"\n'
        '[[peak_seasons]]\nname = "b"\norders_from = 2027-01-05\norders_until = 2027-01-10\n',
        "peak_seasons: ",
        id="overlap",
    ),
]


@pytest.mark.parametrize(("text", "key"), BAD_FILES)
def test_a_bad_file_fails_naming_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(PolicyError) as err:
        load_policy(write(tmp_path, text))
    assert f"policy.toml: {key}" in str(err.value)
