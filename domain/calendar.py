"""The business calendar: when the shop works, and when a deadline falls.

Pure and deterministic: it never reads the clock, so workflows can use it inside the sandbox.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import holidays
from pydantic import BeforeValidator, PlainSerializer

from domain.policy import DURATION_PATTERN, Policy

_CALENDAR_UNITS: dict[str, timedelta] = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
}

_UNIT_NAMES: dict[str, tuple[str, str]] = {
    "s": ("second", "seconds"),
    "m": ("minute", "minutes"),
    "h": ("hour", "hours"),
    "d": ("day", "days"),
    "bh": ("business hour", "business hours"),
    "bd": ("business day", "business days"),
}

# Even a calendar of nothing but holidays must not spin forever.
_MAX_SEARCH_DAYS = 366 * 20


def parse_duration(duration: str) -> tuple[int, str]:
    """Split a policy duration such as "3bd" into its count and unit."""
    match = DURATION_PATTERN.match(duration)
    if not match:
        raise ValueError(
            f"{duration!r} is not a duration; use a number and a unit: 30s, 15m, 2h, 3d, 1bh, 1bd"
        )
    return int(match.group(1)), match.group(2)


def describe(duration: str) -> str:
    """Human text for a policy duration: "1bd" -> "1 business day"."""
    count, unit = parse_duration(duration)
    singular, plural = _UNIT_NAMES[unit]
    return f"{count} {singular if count == 1 else plural}"


def _parse_clock(text: str) -> timedelta:
    hours, minutes = text.split(":")
    # A timedelta rather than a time, so that a closing time of 24:00 is representable.
    return timedelta(hours=int(hours), minutes=int(minutes))


class BusinessCalendar:
    """Business days (Mon-Fri minus holidays) and business hours in one timezone."""

    def __init__(
        self,
        *,
        timezone: str,
        holidays: str,
        business_hours: str,
        known_holidays: Mapping[int, Iterable[date]] | None = None,
    ) -> None:
        self.zone = ZoneInfo(timezone)
        self.country = holidays
        opening, _, closing = business_hours.partition("-")
        self.opening = _parse_clock(opening)
        self.closing = _parse_clock(closing)
        if not timedelta(0) <= self.opening < self.closing <= timedelta(days=1):
            raise ValueError(f"{business_hours!r} is not a range like 09:00-18:00")
        # Workflows hand in the years they need: the holidays package reads locale data,
        # which Temporal's sandbox forbids, so a case carries its holiday dates from open.
        self._holidays_by_year: dict[int, frozenset[date]] = {
            year: frozenset(days) for year, days in (known_holidays or {}).items()
        }
        # A calendar handed its holidays never looks any up: in a workflow the lookup would
        # fail its task on every retry (a case still open after the years it carries, or a
        # business-day wait crossing into the year after them). Such a year counts weekends
        # only, the same on every replay.
        self._looks_up = known_holidays is None

    @classmethod
    def from_policy(
        cls, policy: Policy, known_holidays: Mapping[int, Iterable[date]] | None = None
    ) -> BusinessCalendar:
        """The calendar a policy describes."""
        return cls(
            timezone=policy.timezone,
            holidays=policy.holidays,
            business_hours=policy.business_hours,
            known_holidays=known_holidays,
        )

    def holiday_table(self, first_year: int, years: int) -> dict[int, list[date]]:
        """The holidays of a run of years, to hand to a calendar that can't look them up."""
        return {
            year: sorted(d for d in self._year(year))
            for year in range(first_year, first_year + years)
        }

    def _year(self, year: int) -> frozenset[date]:
        found = self._holidays_by_year.get(year)
        if found is None:
            looked_up = self.country and self._looks_up
            found = _country_year(self.country, year) if looked_up else frozenset()
            self._holidays_by_year[year] = found
        return found

    def is_holiday(self, day: date) -> bool:
        """Whether a local date is a public holiday (observed days included)."""
        return day in self._year(day.year)

    def is_business_day(self, day: date) -> bool:
        """Whether a local date is a working day: Monday to Friday and not a holiday."""
        return day.weekday() < 5 and not self.is_holiday(day)

    def is_business_time(self, at: datetime) -> bool:
        """Whether an instant falls inside business hours on a business day."""
        local = self._localize(at)
        since_midnight = local - datetime.combine(local.date(), time(), tzinfo=self.zone)
        # Same-tzinfo subtraction is wall-clock subtraction, which is what opening hours mean.
        return self.is_business_day(local.date()) and self.opening <= since_midnight < self.closing

    def add(self, start: datetime, duration: str) -> datetime:
        """The instant a duration after start, in the calendar's timezone.

        `s`, `m`, `h` and `d` are elapsed time (`1d` = 24 hours). `Nbh` counts only time
        inside business hours on business days; a start outside them begins counting at the
        next opening, so a deadline can fall exactly at closing time (17:00 + 1bh = 18:00).

        `Nbd` is N whole business days. From a start inside business hours it is the same
        local time of day on the Nth following business day (Friday 10:00 + 1bd = Monday
        10:00). From a start outside business hours the count begins at the next opening and
        ends at the close of the Nth business day counted from it (Friday 20:00 + 1bd =
        Monday 18:00, Monday 08:00 + 1bd = Monday 18:00). A zero duration is the start itself.
        """
        count, unit = parse_duration(duration)
        start = self._localize(start)
        if count == 0:
            return start
        if unit in _CALENDAR_UNITS:
            # Through UTC: adding to a local time would drift by an hour across DST changes.
            return (start.astimezone(UTC) + count * _CALENDAR_UNITS[unit]).astimezone(self.zone)
        if unit == "bh":
            return self._add_business_time(start, timedelta(hours=count))
        return self._add_business_days(start, count)

    def _localize(self, at: datetime) -> datetime:
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValueError(f"{at.isoformat()} has no timezone; business time needs one")
        return at.astimezone(self.zone)

    def _at(self, day: date, since_midnight: timedelta) -> datetime:
        """The instant of a local wall-clock time, normalised through UTC (DST gaps)."""
        wall = datetime.combine(day, time(), tzinfo=self.zone) + since_midnight
        return wall.astimezone(UTC).astimezone(self.zone)

    def _next_business_day(self, day: date) -> date:
        """The first business day strictly after day."""
        for offset in range(1, _MAX_SEARCH_DAYS):
            candidate = day + timedelta(days=offset)
            if self.is_business_day(candidate):
                return candidate
        raise ValueError(f"no business day within {_MAX_SEARCH_DAYS} days after {day}")

    def _add_business_time(self, start: datetime, remaining: timedelta) -> datetime:
        # Compared and subtracted in UTC: aware datetimes sharing a tzinfo compare by wall
        # clock, which is wrong across a DST change.
        cursor = start.astimezone(UTC)
        day = start.date()
        if not self.is_business_day(day):
            day = self._next_business_day(day)
        while True:
            opens = self._at(day, self.opening).astimezone(UTC)
            closes = self._at(day, self.closing).astimezone(UTC)
            begin = max(cursor, opens)
            if begin < closes:
                if remaining <= closes - begin:
                    return (begin + remaining).astimezone(self.zone)
                remaining -= closes - begin
            day = self._next_business_day(day)

    def _add_business_days(self, start: datetime, count: int) -> datetime:
        if self.is_business_time(start):
            day = start.date()
            for _ in range(count):
                day = self._next_business_day(day)
            since_midnight = start - datetime.combine(start.date(), time(), tzinfo=self.zone)
            return self._at(day, since_midnight)
        # Outside hours: find the day of the next opening, then close of the Nth day from it.
        day = start.date()
        opens_today = self.is_business_day(day) and start.astimezone(UTC) < self._at(
            day, self.opening
        ).astimezone(UTC)
        if not opens_today:
            day = self._next_business_day(day)
        for _ in range(count - 1):
            day = self._next_business_day(day)
        return self._at(day, self.closing)


@lru_cache(maxsize=64)
def _country_year(country: str, year: int) -> frozenset[date]:
    # A country's holidays of a year never change while the process runs; working them out
    # cost an open ~2 ms a year (three years per case) before they were kept.
    return frozenset(holidays.country_holidays(country, years=year))


def _days_of_years(value: Any) -> Any:
    """Read a holiday table written by `_year_lines` (or as plain ISO dates)."""
    if not isinstance(value, Mapping):
        return value
    return {
        year: [date.fromisoformat(f"{int(year):04d}-{day}") for day in days.split()]
        if isinstance(days, str)
        else days
        for year, days in value.items()
    }


def _year_lines(table: Mapping[int, Iterable[date]]) -> dict[int, str]:
    # "MM-DD" cut from the ISO date: `strftime` for the dates of three years was 3.6% of the
    # API's CPU in a burst of opens (every open writes its workflow input), four times this.
    return {year: " ".join(day.isoformat()[5:] for day in days) for year, days in table.items()}


# The holidays a case carries in its workflow input, one line of "MM-DD" per year: the same
# dates in a third of the bytes of ISO dates, in every case's history.
HolidayTable = Annotated[
    dict[int, list[date]],
    BeforeValidator(_days_of_years),
    PlainSerializer(_year_lines, when_used="json"),
]


def case_holidays(policy: Policy, opened_at: datetime) -> dict[int, list[date]]:
    """Holiday dates from the day a case opens to the end of the second year after, to carry
    into its workflow."""
    table = BusinessCalendar.from_policy(policy).holiday_table(opened_at.year, 3)
    # A case never counts business time before it opened; the day before stays, as the
    # shop's local date can be a day behind the UTC one.
    first = opened_at.date() - timedelta(days=1)
    return {year: [day for day in days if day >= first] for year, days in table.items()}
