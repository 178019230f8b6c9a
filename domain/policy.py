"""The shop's policy file: load it, validate it, and fall back to the built-in defaults."""

from __future__ import annotations

import functools
import re
import tomllib
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    StrictBool,
    StrictInt,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

from domain.models import ChainName, ComplaintCategory, Order, ReturnMethod, SeasonNote

DURATION_PATTERN = re.compile(r"^(\d{1,6})(s|m|h|d|bh|bd)$")


def _check_duration(value: str) -> str:
    if not DURATION_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not a duration; use a number and a unit: 30s, 15m, 2h, 3d, 1bh, 1bd"
        )
    return value


Duration = Annotated[str, AfterValidator(_check_duration)]

DEFAULT_TIMERS: dict[str, str] = {
    "first_response": "1bh",
    "first_response_hard": "24h",
    "review": "1bd",
    "customer_info": "7d",
    "customer_info_reminder": "3d",
    "customer_shipment": "7d",
    "customer_shipment_reminder": "3d",
    "carrier_pickup": "3d",
    "transit": "10d",
    "inspection": "1bd",
    "refund": "24h",
    "refund_unshipped": "1h",
    "dispatch": "1bd",
    "diagnosis": "5bd",
    "repair": "5bd",
    "quote_response": "7d",
    "offer_response": "3d",
    "interception": "3d",
    "follow_up": "3d",
    "complaint_follow_up": "24h",
    "survey": "7d",
    "exception_window": "30d",
    # After a message that needs an answer (info needed, a quote, an offer) with none yet: an
    # SMS, once, if the customer has a phone and the message went by mail. "0s" turns it off.
    "sms_nudge": "24h",
    "restock": "14d",
    "negative_review_response": "2h",
}

DEFAULT_ROUTING: dict[ComplaintCategory, str] = {
    ComplaintCategory.PRODUCT_QUALITY: "quality",
    ComplaintCategory.LOGISTICS: "logistics",
    ComplaintCategory.AFTER_SALES_SERVICE: "customer_service",
    ComplaintCategory.ORDER_PROCESSING: "operations",
    ComplaintCategory.WEBSITE: "operations",
    ComplaintCategory.PRICE: "customer_service",
    ComplaintCategory.PAYMENT: "finance",
    ComplaintCategory.SERVICE_ATTITUDE: "customer_service",
}

PolicyAmount = Annotated[Decimal, Field(ge=0, le=Decimal("100000000"))]


@functools.cache
def _holiday_countries() -> frozenset[str]:
    """The countries the holidays package has calendars for, looked up once per process.

    Every Policy validates this, and so every case input a worker decodes: the package's own
    lookup builds its list each call, slow enough under load to trip the workflow deadlock
    detector (2 s) once.
    """
    import holidays  # only when first needed: the package is large

    return frozenset(holidays.list_supported_countries())


class ReturnsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    window_days: Annotated[StrictInt, Field(ge=0, le=3650)] = 7
    defect_window_days: Annotated[StrictInt, Field(ge=0, le=3650)] = 15
    non_returnable_categories: list[str] = [
        "personal_hygiene",
        "food",
        "perishable",
        "customized",
        "digital",
    ]
    restocking_fee_percent: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("10")
    auto_approve_max_value: PolicyAmount = Decimal("3000")
    returnless_max_value: PolicyAmount = Decimal("200")
    fast_refund: StrictBool = True
    advanced_exchange: StrictBool = False
    serial_returner_threshold: Annotated[StrictInt, Field(ge=1, le=1000)] = 3
    auto_approve_on_review_timeout: StrictBool = False
    # Store credit a customer takes instead of a refund: the bonus on top (percent of the
    # credited amount), and when it is issued (docs/policy.md).
    store_credit_bonus_percent: Annotated[Decimal, Field(ge=0, le=100)] = Decimal("0")
    store_credit_at: Literal["approval", "first_scan", "inspection"] = "first_scan"
    # Where customers send returns they ship themselves; DESIGN leaves it to the shop.
    return_address: Annotated[str, Field(min_length=1, max_length=400)] = (
        "Returns Department, 1 Warehouse Road, Taoyuan 330, Taiwan"
    )
    # The ways an item may come back (docs/policy.md): without a choice in the request, a
    # return the shop pays for takes the first of pickup / dropoff offered here, one the
    # customer pays for the first of ship / dropoff.
    return_methods: Annotated[list[ReturnMethod], Field(min_length=1, max_length=3)] = [
        ReturnMethod.PICKUP,
        ReturnMethod.SHIP,
    ]
    # The store chains a drop-off may name; the first is taken when the customer names none.
    dropoff_chains: Annotated[list[ChainName], Field(max_length=20)] = ["7-ELEVEN", "FamilyMart"]

    @field_validator("return_methods")
    @classmethod
    def _a_way_for_every_payer(cls, value: list[ReturnMethod]) -> list[ReturnMethod]:
        offered = set(value)
        # Who pays decides the way when the customer doesn't choose: each payer needs one.
        if not offered & {ReturnMethod.PICKUP, ReturnMethod.DROPOFF}:
            raise ValueError("offer pickup or dropoff for returns the shop pays for")
        if not offered & {ReturnMethod.SHIP, ReturnMethod.DROPOFF}:
            raise ValueError("offer ship or dropoff for returns the customer pays for")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _chains_for_dropoffs(self) -> ReturnsPolicy:
        if ReturnMethod.DROPOFF in self.return_methods and not self.dropoff_chains:
            raise ValueError("dropoff_chains: name at least one chain when dropoff is offered")
        return self


class RepairsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The shop's own warranty on a repair, from the day the repaired item is delivered back.
    warranty_months: Annotated[StrictInt, Field(ge=0, le=120)] = 3
    # Charged when the customer declines (or lets lapse) a repair quote: the diagnosis was
    # work done. 0 charges nothing; an agent may waive it on the diagnosis.
    diagnosis_fee: PolicyAmount = Decimal("0")


class ComplaintsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routing: dict[ComplaintCategory, str] = DEFAULT_ROUTING

    @field_validator("routing")
    @classmethod
    def _complete_routing(cls, value: dict[ComplaintCategory, str]) -> dict[ComplaintCategory, str]:
        # A file names only the categories it reroutes; a missing one would leave no queue.
        return {**DEFAULT_ROUTING, **value}


WindowDays = Annotated[StrictInt, Field(ge=0, le=3650)]
Percent = Annotated[Decimal, Field(ge=0, le=100)]
CategoryName = Annotated[str, Field(min_length=1, max_length=100)]


class CategoryPolicy(BaseModel):
    """A `[categories.<name>]` section: what items of that category are held to instead of
    `[returns]` (a key left out keeps the `[returns]` value)."""

    model_config = ConfigDict(extra="forbid")

    window_days: WindowDays | None = None
    defect_window_days: WindowDays | None = None
    restocking_fee_percent: Percent | None = None
    auto_approve_max_value: PolicyAmount | None = None
    returnless_max_value: PolicyAmount | None = None
    # File sugar for `returns.non_returnable_categories`: loading moves `false` into that list
    # (the one place rules read) and clears the key, so the two never disagree.
    returnable: StrictBool | None = None

    def overrides(self) -> bool:
        """Whether the section still changes anything once `returnable` is moved out."""
        return any(value is not None for name, value in self if name != "returnable")


_MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")
# Any leap year: a yearly season's days are month-days, and 02-29 must be one of them.
_LEAP_YEAR = 2000


def _season_day(value: object) -> object:
    # TOML gives a date for `2027-01-20` and a string for "11-01"; both travel as text.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value.isoformat()
    return value


def _check_season_day(value: str) -> str:
    match = _MONTH_DAY.match(value)
    try:
        if match:
            date(_LEAP_YEAR, int(match.group(1)), int(match.group(2)))
        else:
            date.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f'{value!r} is not a day; use MM-DD for every year ("11-01") or a date (2027-01-20)'
        ) from None
    return value


SeasonDay = Annotated[
    str, BeforeValidator(_season_day), AfterValidator(_check_season_day), Field(max_length=10)
]


class PeakSeason(BaseModel):
    """A `[[peak_seasons]]` entry: orders placed in its period get longer return windows and
    the longer SLA timers it names."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=80)]
    # The name in the customer's locale, e.g. {"zh-TW" = "雙11"}; `name` otherwise.
    names: dict[
        Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")],
        Annotated[str, Field(min_length=1, max_length=80)],
    ] = {}
    # The days of `order.placed_at` (policy timezone) it covers, both inclusive: "MM-DD" for
    # every year (a period may run over New Year: "12-20" to "01-05"), or dates for one year.
    orders_from: SeasonDay
    orders_until: SeasonDay
    extra_return_days: Annotated[StrictInt, Field(ge=0, le=365)] = 0
    # Timers of `[timers]` to replace for these orders, with their season durations.
    timers: dict[str, Duration] = {}

    @field_validator("timers")
    @classmethod
    def _known_timers(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(DEFAULT_TIMERS))
        if unknown:
            raise ValueError(f"unknown timer {unknown[0]!r}")
        return value

    @model_validator(mode="after")
    def _one_period(self) -> PeakSeason:
        yearly = [bool(_MONTH_DAY.match(day)) for day in (self.orders_from, self.orders_until)]
        if yearly[0] != yearly[1]:
            raise ValueError(
                "orders_from and orders_until must both be MM-DD (every year) or both dates"
            )
        if not yearly[0]:
            start, end = date.fromisoformat(self.orders_from), date.fromisoformat(self.orders_until)
            if end < start:
                raise ValueError("orders_until is before orders_from")
            if (end - start).days > 366:
                raise ValueError("a dated season can't be longer than a year")
        return self

    @property
    def yearly(self) -> bool:
        """Whether the season comes back every year (MM-DD) rather than once (dates)."""
        return bool(_MONTH_DAY.match(self.orders_from))

    def covers(self, day: date) -> bool:
        """Whether an order placed on `day` (shop date) falls in the season."""
        if not self.yearly:
            return (
                date.fromisoformat(self.orders_from) <= day <= date.fromisoformat(self.orders_until)
            )
        month_day = f"{day:%m-%d}"
        if self.orders_from <= self.orders_until:
            return self.orders_from <= month_day <= self.orders_until
        # Over New Year: from the first day to 12-31, and from 01-01 to the last.
        return month_day >= self.orders_from or month_day <= self.orders_until

    def days(self) -> list[date]:
        """The season's days: one leap year's worth for a yearly season."""
        if self.yearly:
            first = date(_LEAP_YEAR, 1, 1)
            year = (first + timedelta(days=n) for n in range(366))
            return [day for day in year if self.covers(day)]
        start, end = date.fromisoformat(self.orders_from), date.fromisoformat(self.orders_until)
        return [start + timedelta(days=n) for n in range((end - start).days + 1)]

    def overlaps(self, other: PeakSeason) -> bool:
        """Whether an order date could fall in both seasons."""
        if self.yearly and not other.yearly:
            return other.overlaps(self)
        return any(other.covers(day) for day in self.days())

    def note(self) -> SeasonNote:
        """What a case's decision says of the season."""
        return SeasonNote(
            name=self.name,
            names=self.names,
            orders_from=self.orders_from,
            orders_until=self.orders_until,
            extra_return_days=self.extra_return_days,
            timers=self.timers,
        )


def shop_date(at: datetime, zone: ZoneInfo) -> date:
    """The shop's calendar date of an instant."""
    # A time without an offset is taken as shop time rather than the host's local time,
    # which would make the answer depend on the machine.
    if at.tzinfo is None or at.utcoffset() is None:
        return at.date()
    return at.astimezone(zone).date()


class Policy(BaseModel):
    """Every value of the policy file; a case carries the copy it was opened under."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Taipei"
    holidays: str = "TW"
    business_hours: str = "09:00-18:00"
    # Amounts travel with at most two decimals (DESIGN 6), so no currency needs more here.
    currency_minor_units: Annotated[StrictInt, Field(ge=0, le=2)] = 2
    returns: ReturnsPolicy = ReturnsPolicy()
    repairs: RepairsPolicy = RepairsPolicy()
    timers: dict[str, Duration] = DEFAULT_TIMERS
    complaints: ComplaintsPolicy = ComplaintsPolicy()
    # Per-category overrides of `[returns]`, by category name (matched ignoring case).
    categories: dict[CategoryName, CategoryPolicy] = {}
    # A case's copy holds only the season its order was placed in (`for_order`).
    peak_seasons: list[PeakSeason] = []

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @field_validator("business_hours")
    @classmethod
    def _hours_range(cls, value: str) -> str:
        match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)", value)
        if not match or value[:5] >= value[6:]:
            raise ValueError(f"{value!r} is not a range like 09:00-18:00")
        return value

    @field_validator("holidays")
    @classmethod
    def _known_country(cls, value: str) -> str:
        if value and value not in _holiday_countries():
            raise ValueError(f"no holiday calendar for country {value!r}")
        return value

    @field_validator("timers")
    @classmethod
    def _known_timers(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(DEFAULT_TIMERS))
        if unknown:
            raise ValueError(f"unknown timer {unknown[0]!r}")
        # A file names only the timers it changes; the rest keep their defaults.
        return {**DEFAULT_TIMERS, **value}

    @field_validator("categories")
    @classmethod
    def _distinct_categories(cls, value: dict[str, CategoryPolicy]) -> dict[str, CategoryPolicy]:
        seen: dict[str, str] = {}
        for name in value:
            if name.casefold() in seen:
                raise ValueError(f"{seen[name.casefold()]!r} and {name!r} name the same category")
            seen[name.casefold()] = name
        return value

    @field_validator("peak_seasons")
    @classmethod
    def _seasons_apart(cls, value: list[PeakSeason]) -> list[PeakSeason]:
        # An order in two seasons would need a rule for which wins; shops don't plan that way.
        for index, season in enumerate(value):
            for other in value[index + 1 :]:
                if season.overlaps(other):
                    raise ValueError(f"seasons {season.name!r} and {other.name!r} overlap")
        return value

    @model_validator(mode="after")
    def _one_list_of_non_returnables(self) -> Policy:
        # `returnable = false` in a category section and `returns.non_returnable_categories`
        # say the same thing: after loading, the list alone says it.
        if not any(section.returnable is not None for section in self.categories.values()):
            return self
        blocked = list(self.returns.non_returnable_categories)
        # A list the file wrote is the shop's word; the built-in one gives way to a category
        # the file makes returnable (a shop that takes food back says so in one place).
        written = "non_returnable_categories" in self.returns.model_fields_set
        for name, section in self.categories.items():
            listed = [entry for entry in blocked if entry.casefold() == name.casefold()]
            if section.returnable is True and listed and written:
                raise ValueError(
                    f"categories.{name}.returnable: true, but "
                    f"returns.non_returnable_categories lists {listed[0]!r}"
                )
            if section.returnable is True:
                blocked = [entry for entry in blocked if entry not in listed]
            elif section.returnable is False and not listed:
                blocked.append(name)
        self.returns = self.returns.model_copy(update={"non_returnable_categories": blocked})
        self.categories = {
            name: section.model_copy(update={"returnable": None})
            for name, section in self.categories.items()
            if section.overrides()
        }
        return self

    @field_serializer("timers")
    def _changed_timers(
        self, value: dict[str, str], info: FieldSerializationInfo
    ) -> dict[str, str]:
        # A case's policy copy travels in its workflow input: with defaults left out (the
        # payload converter), only the timers the shop changed, as the file names them.
        if not info.exclude_defaults:
            return value
        return {name: limit for name, limit in value.items() if DEFAULT_TIMERS.get(name) != limit}

    def timer(self, name: str) -> str:
        """The duration of a named timer."""
        return self.timers[name]

    def category(self, name: str) -> CategoryPolicy | None:
        """The `[categories.<name>]` section for an item's category (ignoring case), if any."""
        wanted = name.casefold()
        for key, section in self.categories.items():
            if key.casefold() == wanted:
                return section
        return None

    def returnable(self, category: str) -> bool:
        """Whether items of a category can be returned for a customer reason."""
        wanted = category.casefold()
        return all(name.casefold() != wanted for name in self.returns.non_returnable_categories)

    def season_for(self, placed_at: datetime) -> PeakSeason | None:
        """The peak season an order placed at this time falls in, if any."""
        if not self.peak_seasons:
            return None
        day = shop_date(placed_at, ZoneInfo(self.timezone))
        return next((season for season in self.peak_seasons if season.covers(day)), None)

    def for_order(self, order: Order) -> Policy:
        """The copy a case of this order carries: its peak season's timers in force and the
        other seasons left out (the rules add the season's return days).

        Applying it again gives the same copy, so a child case may pass its parent's on.
        """
        if not self.peak_seasons:
            return self
        season = self.season_for(order.placed_at)
        if season is None:
            return self.model_copy(update={"peak_seasons": []})
        return self.model_copy(
            update={"peak_seasons": [season], "timers": {**self.timers, **season.timers}}
        )


class PolicyError(ValueError):
    """A policy file that can't be used, with the key at fault."""


def load_policy(path: Path | str | None) -> Policy:
    """Load and validate a policy file, or return the defaults when no path is given."""
    if not path:
        return Policy()
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PolicyError(f"{path}: cannot read: {err.strerror}") from err
    return parse_policy(text, source=str(path))


def parse_policy(text: str, *, source: str) -> Policy:
    """Validate a policy file's TOML text; `source` names it in a PolicyError."""
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise PolicyError(f"{source}: not valid TOML: {err}") from err
    try:
        return Policy.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        key = ".".join(str(part) for part in first["loc"])
        if not key:
            # A check across sections (a category against the returns list) names its key in
            # its message.
            raise PolicyError(f"{source}: {first['msg'].removeprefix('Value error, ')}") from err
        raise PolicyError(f"{source}: {key}: {first['msg']}") from err
