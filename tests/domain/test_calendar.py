"""The business calendar: business hours and days across weekends, holidays and timezones."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import holidays
import pytest

from domain.calendar import BusinessCalendar, case_holidays, describe
from domain.policy import Policy

TAIPEI = BusinessCalendar(timezone="Asia/Taipei", holidays="TW", business_hours="09:00-18:00")
NO_HOLIDAYS = BusinessCalendar(timezone="Asia/Taipei", holidays="", business_hours="09:00-18:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_tw_national_day_2026_is_a_saturday_observed_on_friday() -> None:
    # The holiday tests below rely on these dates; fail loudly if the package changes them.
    tw = holidays.country_holidays("TW", years=2026)
    assert date(2026, 10, 10) in tw
    assert date(2026, 10, 10).weekday() == 5
    assert date(2026, 10, 9) in tw
    assert "observed" in tw[date(2026, 10, 9)].lower()
    assert date(2026, 10, 26) in tw  # Restoration Day (Sun 25th) observed
    assert TAIPEI.is_holiday(date(2026, 10, 9))
    assert not TAIPEI.is_business_day(date(2026, 10, 9))
    assert not NO_HOLIDAYS.is_holiday(date(2026, 10, 9))
    assert TAIPEI.is_business_day(date(2026, 10, 8))


@pytest.mark.parametrize(
    ("calendar", "start", "duration", "expected"),
    [
        # The examples of the brief.
        pytest.param(
            TAIPEI, "2026-11-20T19:30+08:00", "1bh", "2026-11-23T10:00+08:00", id="fri-evening"
        ),
        pytest.param(
            TAIPEI, "2026-11-20T17:30+08:00", "1bh", "2026-11-23T09:30+08:00", id="fri-1730"
        ),
        pytest.param(
            TAIPEI, "2026-11-20T17:00+08:00", "1bh", "2026-11-20T18:00+08:00", id="ends-at-close"
        ),
        pytest.param(
            TAIPEI, "2026-11-23T08:00+08:00", "2bh", "2026-11-23T11:00+08:00", id="before-opening"
        ),
        pytest.param(
            TAIPEI, "2026-11-21T15:00+08:00", "1bh", "2026-11-23T10:00+08:00", id="saturday"
        ),
        pytest.param(
            TAIPEI, "2026-11-24T16:00+08:00", "4bh", "2026-11-25T11:00+08:00", id="overnight"
        ),
        pytest.param(
            TAIPEI, "2026-11-23T10:00+08:00", "9bh", "2026-11-24T10:00+08:00", id="a-full-day"
        ),
        pytest.param(
            TAIPEI, "2026-11-20T12:00+08:00", "20bh", "2026-11-24T14:00+08:00", id="multi-day"
        ),
        # Thursday before the observed National Day (Fri 9 Oct) and the weekend.
        pytest.param(
            TAIPEI, "2026-10-08T17:30+08:00", "1bh", "2026-10-12T09:30+08:00", id="tw-holiday"
        ),
        pytest.param(
            NO_HOLIDAYS,
            "2026-10-08T17:30+08:00",
            "1bh",
            "2026-10-09T09:30+08:00",
            id="weekends-only",
        ),
        # A start in another timezone: 11:30 UTC Friday is 19:30 in Taipei.
        pytest.param(
            TAIPEI, "2026-11-20T11:30+00:00", "1bh", "2026-11-23T10:00+08:00", id="utc-start"
        ),
        pytest.param(TAIPEI, "2026-11-20T19:30+08:00", "0bh", "2026-11-20T19:30+08:00", id="zero"),
    ],
)
def test_business_hours(
    calendar: BusinessCalendar, start: str, duration: str, expected: str
) -> None:
    result = calendar.add(at(start), duration)
    assert result == at(expected)
    assert result.utcoffset() == at(expected).utcoffset()


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        pytest.param("2026-11-20T10:00+08:00", "1bd", "2026-11-23T10:00+08:00", id="fri-to-mon"),
        pytest.param("2026-11-24T15:45+08:00", "1bd", "2026-11-25T15:45+08:00", id="tue-to-wed"),
        pytest.param("2026-11-23T10:00+08:00", "5bd", "2026-11-30T10:00+08:00", id="a-week"),
        # Outside hours: the count starts at the next opening and ends at a close.
        pytest.param("2026-11-20T20:00+08:00", "1bd", "2026-11-23T18:00+08:00", id="fri-evening"),
        pytest.param("2026-11-23T08:00+08:00", "1bd", "2026-11-23T18:00+08:00", id="mon-early"),
        pytest.param("2026-11-22T12:00+08:00", "2bd", "2026-11-24T18:00+08:00", id="sunday"),
        pytest.param("2026-11-23T18:00+08:00", "1bd", "2026-11-24T18:00+08:00", id="at-close"),
        # Holidays: Fri 9 Oct (National Day observed), Mon 26 Oct (Restoration Day observed).
        pytest.param("2026-10-08T10:00+08:00", "1bd", "2026-10-12T10:00+08:00", id="national-day"),
        pytest.param("2026-10-06T11:00+08:00", "5bd", "2026-10-14T11:00+08:00", id="5bd-holiday"),
        pytest.param("2026-10-23T12:00+08:00", "1bd", "2026-10-27T12:00+08:00", id="observed-mon"),
        pytest.param("2026-10-08T19:00+08:00", "1bd", "2026-10-12T18:00+08:00", id="eve-holiday"),
    ],
)
def test_business_days(start: str, duration: str, expected: str) -> None:
    assert TAIPEI.add(at(start), duration) == at(expected)


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        pytest.param("2026-11-20T19:30+08:00", "30s", "2026-11-20T19:30:30+08:00", id="seconds"),
        pytest.param("2026-11-20T23:50+08:00", "15m", "2026-11-21T00:05+08:00", id="minutes"),
        pytest.param("2026-11-20T23:00+08:00", "2h", "2026-11-21T01:00+08:00", id="hours"),
        pytest.param("2026-11-20T19:30+08:00", "3d", "2026-11-23T19:30+08:00", id="days-weekend"),
        pytest.param("2026-10-08T10:00+08:00", "24h", "2026-10-09T10:00+08:00", id="24h-holiday"),
        pytest.param("2026-11-20T11:30+00:00", "1h", "2026-11-20T20:30+08:00", id="utc-start"),
    ],
)
def test_calendar_durations_ignore_business_hours(start: str, duration: str, expected: str) -> None:
    result = TAIPEI.add(at(start), duration)
    assert result == at(expected)
    assert result.utcoffset() == timedelta(hours=8)


def test_calendar_days_are_24_hours_across_dst() -> None:
    berlin = BusinessCalendar(timezone="Europe/Berlin", holidays="DE", business_hours="09:00-17:00")
    # Clocks go forward on 29 March 2026: 24 elapsed hours land at 13:00 summer time.
    result = berlin.add(at("2026-03-28T12:00+01:00"), "1d")
    assert result == at("2026-03-29T13:00+02:00")
    assert result.utcoffset() == timedelta(hours=2)


def test_business_day_keeps_the_wall_clock_across_dst() -> None:
    berlin = BusinessCalendar(timezone="Europe/Berlin", holidays="", business_hours="09:00-17:00")
    result = berlin.add(at("2026-03-27T10:00+01:00"), "1bd")
    assert result == at("2026-03-30T10:00+02:00")


def test_round_the_clock_hours() -> None:
    always = BusinessCalendar(timezone="Asia/Taipei", holidays="", business_hours="00:00-24:00")
    assert always.add(at("2026-11-20T23:00+08:00"), "2bh") == at("2026-11-23T01:00+08:00")
    assert always.is_business_time(at("2026-11-20T23:59+08:00"))


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param("2026-11-23T09:00+08:00", True, id="opening"),
        pytest.param("2026-11-23T17:59:59+08:00", True, id="last-second"),
        pytest.param("2026-11-23T18:00+08:00", False, id="closing"),
        pytest.param("2026-11-23T08:59+08:00", False, id="before-opening"),
        pytest.param("2026-11-21T10:00+08:00", False, id="saturday"),
        pytest.param("2026-10-09T10:00+08:00", False, id="observed-holiday"),
        pytest.param("2026-11-23T02:00+00:00", True, id="utc-10am-taipei"),
        pytest.param("2026-11-23T10:00+00:00", False, id="utc-6pm-taipei"),
    ],
)
def test_is_business_time(moment: str, expected: bool) -> None:
    assert TAIPEI.is_business_time(at(moment)) is expected


def test_from_policy_uses_policy_values() -> None:
    policy = Policy(timezone="Europe/Berlin", holidays="", business_hours="08:00-16:00")
    calendar = BusinessCalendar.from_policy(policy)
    assert calendar.add(at("2026-11-20T15:30+01:00"), "1bh") == at("2026-11-23T08:30+01:00")


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="no timezone"):
        TAIPEI.add(datetime(2026, 11, 20, 10, 0), "1bh")


@pytest.mark.parametrize("duration", ["", "1w", "1 d", "bd", "-1h", "1.5h"])
def test_bad_durations_are_refused(duration: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        TAIPEI.add(at("2026-11-20T10:00+08:00"), duration)


def test_bad_business_hours_are_refused() -> None:
    with pytest.raises(ValueError, match="not a range"):
        BusinessCalendar(timezone="Asia/Taipei", holidays="", business_hours="18:00-09:00")


@pytest.mark.parametrize(
    ("duration", "text"),
    [
        ("1bd", "1 business day"),
        ("5bd", "5 business days"),
        ("1bh", "1 business hour"),
        ("2bh", "2 business hours"),
        ("24h", "24 hours"),
        ("1h", "1 hour"),
        ("3d", "3 days"),
        ("1d", "1 day"),
        ("30s", "30 seconds"),
        ("15m", "15 minutes"),
    ],
)
def test_describe(duration: str, text: str) -> None:
    assert describe(duration) == text


def test_describe_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        describe("soon")


def test_a_case_carries_the_holidays_from_the_day_before_it_opened() -> None:
    policy = Policy(holidays="TW")
    table = case_holidays(policy, datetime(2026, 10, 10, 2, tzinfo=UTC))
    assert min(table[2026]) == date(2026, 10, 9)  # the day before: the local date may lag
    assert date(2026, 1, 1) not in table[2026]
    assert date(2027, 1, 1) in table[2027] and date(2028, 12, 25) in table[2028]


def test_a_calendar_handed_its_holidays_counts_weekends_only_past_them() -> None:
    # A workflow's calendar can't look holidays up (the sandbox forbids the package's locale
    # reads, and the task would fail on every retry): past the years a case carries, a day
    # is a business day unless it falls on a weekend.
    carried = BusinessCalendar.from_policy(
        Policy(holidays="TW"), case_holidays(Policy(holidays="TW"), at("2026-10-10T02:00Z"))
    )
    assert carried.is_holiday(date(2027, 1, 1))  # carried
    assert not carried.is_holiday(date(2030, 1, 1))  # past the table: not looked up
    assert TAIPEI.is_holiday(date(2030, 1, 1))  # a calendar with no table looks it up
    # Monday 2029-12-31 18:00 + 1 business day: Tuesday 2030-01-01 (New Year's Day counts
    # only when looked up: Wednesday 2030-01-02).
    start = at("2029-12-31T18:00+08:00")
    assert carried.add(start, "1bd").date() == date(2030, 1, 1)
    assert TAIPEI.add(start, "1bd").date() == date(2030, 1, 2)
