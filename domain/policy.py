"""The shop's policy file: load it, validate it, and fall back to the built-in defaults."""

from __future__ import annotations

import functools
import re
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    FieldSerializationInfo,
    ValidationError,
    field_serializer,
    field_validator,
)

from domain.models import ComplaintCategory

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

    window_days: Annotated[int, Field(ge=0, le=3650)] = 7
    defect_window_days: Annotated[int, Field(ge=0, le=3650)] = 15
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
    fast_refund: bool = True
    advanced_exchange: bool = False
    serial_returner_threshold: Annotated[int, Field(ge=1, le=1000)] = 3
    auto_approve_on_review_timeout: bool = False
    # Where customers send returns they ship themselves; DESIGN leaves it to the shop.
    return_address: Annotated[str, Field(min_length=1, max_length=400)] = (
        "Returns Department, 1 Warehouse Road, Taoyuan 330, Taiwan"
    )


class RepairsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The shop's own warranty on a repair, from the day the repaired item is delivered back.
    warranty_months: Annotated[int, Field(ge=0, le=120)] = 3


class ComplaintsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    routing: dict[ComplaintCategory, str] = DEFAULT_ROUTING

    @field_validator("routing")
    @classmethod
    def _complete_routing(cls, value: dict[ComplaintCategory, str]) -> dict[ComplaintCategory, str]:
        # A file names only the categories it reroutes; a missing one would leave no queue.
        return {**DEFAULT_ROUTING, **value}


class Policy(BaseModel):
    """Every value of the policy file; a case carries the copy it was opened under."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "Asia/Taipei"
    holidays: str = "TW"
    business_hours: str = "09:00-18:00"
    # Amounts travel with at most two decimals (DESIGN 6), so no currency needs more here.
    currency_minor_units: Annotated[int, Field(ge=0, le=2)] = 2
    returns: ReturnsPolicy = ReturnsPolicy()
    repairs: RepairsPolicy = RepairsPolicy()
    timers: dict[str, Duration] = DEFAULT_TIMERS
    complaints: ComplaintsPolicy = ComplaintsPolicy()

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
        raise PolicyError(f"{source}: {key}: {first['msg']}") from err
