"""Loading the policy file: defaults, overrides, and errors that name the key at fault."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from domain.models import ComplaintCategory
from domain.policy import DEFAULT_TIMERS, Policy, PolicyError, load_policy


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("path", [None, ""])
def test_no_file_gives_the_defaults(path: str | None) -> None:
    policy = load_policy(path)
    assert policy == Policy()
    assert policy.timezone == "Asia/Taipei"
    assert policy.holidays == "TW"
    assert policy.returns.window_days == 7
    assert policy.returns.defect_window_days == 15
    assert policy.returns.auto_approve_max_value == Decimal("3000")
    assert policy.timer("review") == "1bd"
    assert policy.complaints.routing[ComplaintCategory.PAYMENT] == "finance"


def test_a_file_overrides_only_what_it_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
timezone = "Europe/Berlin"
holidays = "DE"
business_hours = "08:00-16:30"

[returns]
window_days = 14
returnless_max_value = "15.50"
non_returnable_categories = ["food"]

[timers]
review = "2bd"
refund_unshipped = "30m"

[complaints.routing]
price = "sales"
""",
    )
    policy = load_policy(path)
    assert policy.timezone == "Europe/Berlin"
    assert policy.holidays == "DE"
    assert policy.business_hours == "08:00-16:30"
    assert policy.returns.window_days == 14
    assert policy.returns.returnless_max_value == Decimal("15.50")
    assert policy.returns.non_returnable_categories == ["food"]
    # Untouched keys keep their defaults, in the same table and in others.
    assert policy.returns.defect_window_days == 15
    assert policy.currency_minor_units == 2
    assert policy.timer("review") == "2bd"
    assert policy.timer("refund_unshipped") == "30m"
    assert policy.timer("transit") == DEFAULT_TIMERS["transit"]
    assert set(policy.timers) == set(DEFAULT_TIMERS)
    assert policy.complaints.routing[ComplaintCategory.PRICE] == "sales"
    assert policy.complaints.routing[ComplaintCategory.LOGISTICS] == "logistics"
    assert set(policy.complaints.routing) == set(ComplaintCategory)


def test_the_example_of_the_design_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
timezone = "Asia/Taipei"
holidays = "TW"
business_hours = "09:00-18:00"
currency_minor_units = 2

[returns]
window_days = 7
defect_window_days = 15
non_returnable_categories = ["personal_hygiene", "food", "perishable", "customized", "digital"]
restocking_fee_percent = 10
auto_approve_max_value = "3000"
returnless_max_value = "200"
fast_refund = true
advanced_exchange = false
serial_returner_threshold = 3
auto_approve_on_review_timeout = false

[timers]
review = "1bd"
customer_shipment = "7d"
customer_shipment_reminder = "3d"
first_response = "1bh"
first_response_hard = "24h"
refund = "24h"
refund_unshipped = "1h"
""",
    )
    assert load_policy(path) == Policy()


@pytest.mark.parametrize(
    ("text", "names"),
    [
        pytest.param("[returns]\nwindow_days = -1\n", ["returns.window_days"], id="negative"),
        pytest.param(
            '[returns]\nwindow_days = "seven"\n', ["returns.window_days"], id="not-a-number"
        ),
        pytest.param(
            '[timers]\nreview = "1 day"\n', ["timers.review", "not a duration"], id="bad-duration"
        ),
        pytest.param('[timers]\nreview = "2w"\n', ["timers.review"], id="unknown-unit"),
        pytest.param('[timers]\nlunch = "1h"\n', ["timers", "'lunch'"], id="unknown-timer"),
        pytest.param(
            'timezone = "Mars/Olympus"\n', ["timezone", "Mars/Olympus"], id="bad-timezone"
        ),
        pytest.param('colour = "red"\n', ["colour"], id="unknown-top-level-key"),
        pytest.param("[returns]\nwindows = 7\n", ["returns.windows"], id="unknown-returns-key"),
        pytest.param('holidays = "XX"\n', ["holidays", "'XX'"], id="unknown-country"),
        pytest.param('business_hours = "18:00-09:00"\n', ["business_hours"], id="backwards-hours"),
        pytest.param(
            '[complaints.routing]\nweather = "ops"\n',
            ["complaints.routing.weather"],
            id="unknown-complaint-category",
        ),
        pytest.param("timezone = \n", ["not valid TOML", "line 1"], id="bad-toml-syntax"),
    ],
)
def test_an_invalid_file_names_the_key(tmp_path: Path, text: str, names: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for name in names:
        assert name in message


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "nowhere.toml")
