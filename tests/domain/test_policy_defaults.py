"""The policy's defaults are part of every open case (issue 9, slim contracts).

A case's workflow input carries its policy without the values at their defaults (the payload
converter leaves defaults out), so an open case reads the defaults of the code it runs on.
Changing one would move open cases: it needs a versioned rollout (docs/versioning.md), and
this test makes the change deliberate.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from pydantic import TypeAdapter

from config.temporal import data_converter
from domain.policy import Policy
from tests.support.factory import case_input
from workflows.case import CaseInput

PINNED = Path(__file__).with_name("policy_defaults.json")


def test_the_policy_defaults_are_the_pinned_ones() -> None:
    assert Policy().model_dump(mode="json") == json.loads(PINNED.read_text()), (
        "A policy default changed: open cases would follow it. Roll it out as "
        "docs/versioning.md says, then update tests/domain/policy_defaults.json."
    )


def test_a_case_carries_only_the_policy_the_shop_changed() -> None:
    policy = Policy.model_validate(
        {"timers": {"survey": "2d"}, "returns": {"window_days": 14}, "timezone": "Asia/Tokyo"}
    )
    case = case_input(now=datetime.now(UTC), policy=policy)
    (payload,) = data_converter.payload_converter.to_payloads([case])
    carried = json.loads(payload.data)["policy"]
    assert carried == {
        "timezone": "Asia/Tokyo",
        "returns": {"window_days": 14},
        "timers": {"survey": "2d"},
    }
    (back,) = data_converter.payload_converter.from_payloads([payload], [CaseInput])
    assert back.policy == policy
    assert back.policy.timer("review") == Policy().timer("review")


def test_the_holidays_travel_one_line_per_year_and_come_back_as_dates() -> None:
    case = case_input(now=datetime.now(UTC))
    (payload,) = data_converter.payload_converter.to_payloads([case])
    lines = json.loads(payload.data)["holidays"]
    assert all(isinstance(days, str) for days in lines.values()), lines
    (back,) = data_converter.payload_converter.from_payloads([payload], [CaseInput])
    assert back.holidays == case.holidays and any(back.holidays.values())


def test_a_case_input_of_the_full_old_form_still_reads() -> None:
    case = case_input(now=datetime.now(UTC))
    # As histories recorded before payloads left defaults out hold it: every field, ISO dates.
    old = json.dumps(
        {
            **json.loads(data_converter.payload_converter.to_payloads([case])[0].data),
            "policy": case.policy.model_dump(mode="json"),
            "holidays": {
                year: [day.isoformat() for day in days] for year, days in case.holidays.items()
            },
        }
    )
    assert TypeAdapter(CaseInput).validate_json(old) == case
