"""What a case is: the vocabulary shared by the API, the workflows and the records."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from domain.locales import TAG_MAX, Locale, resolve_locale


class CaseType(StrEnum):
    RETURN = "return"
    EXCHANGE = "exchange"
    REFUND = "refund"
    REPAIR = "repair"
    COMPLAINT = "complaint"


CASE_ID_PREFIX: dict[CaseType, str] = {
    CaseType.RETURN: "R",
    CaseType.EXCHANGE: "X",
    CaseType.REFUND: "F",
    CaseType.REPAIR: "P",
    CaseType.COMPLAINT: "C",
}


class CaseStatus(StrEnum):
    OPEN = "open"
    AWAITING_REVIEW = "awaiting_review"
    AWAITING_CUSTOMER = "awaiting_customer"
    AWAITING_SHIPMENT = "awaiting_shipment"
    IN_TRANSIT = "in_transit"
    INSPECTING = "inspecting"
    REPAIRING = "repairing"
    REFUND_PENDING = "refund_pending"
    REPLACEMENT_SHIPPED = "replacement_shipped"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


TERMINAL_STATUSES = frozenset(
    {CaseStatus.CLOSED, CaseStatus.REJECTED, CaseStatus.CANCELLED, CaseStatus.EXPIRED}
)


class Reason(StrEnum):
    DEFECTIVE = "defective"
    DAMAGED_IN_TRANSIT = "damaged_in_transit"
    WRONG_ITEM = "wrong_item"
    MISSING_ITEM = "missing_item"
    NOT_AS_DESCRIBED = "not_as_described"
    CHANGED_MIND = "changed_mind"
    SIZE_FIT = "size_fit"
    ORDERED_BY_MISTAKE = "ordered_by_mistake"
    BETTER_PRICE = "better_price"
    OTHER = "other"


SELLER_FAULT_REASONS = frozenset(
    {
        Reason.DEFECTIVE,
        Reason.DAMAGED_IN_TRANSIT,
        Reason.WRONG_ITEM,
        Reason.MISSING_ITEM,
        Reason.NOT_AS_DESCRIBED,
    }
)


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class Priority(StrEnum):
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"

    def raised(self) -> Priority:
        """The next priority up; urgent stays urgent."""
        order = list(Priority)
        return order[min(order.index(self) + 1, len(order) - 1)]


class ComplaintCategory(StrEnum):
    PRODUCT_QUALITY = "product_quality"
    LOGISTICS = "logistics"
    AFTER_SALES_SERVICE = "after_sales_service"
    ORDER_PROCESSING = "order_processing"
    WEBSITE = "website"
    PRICE = "price"
    PAYMENT = "payment"
    SERVICE_ATTITUDE = "service_attitude"


MAX_AMOUNT = Decimal("100000000")


def _no_exponent(value: Decimal) -> Decimal:
    if not value.is_finite():
        raise ValueError("must be a finite number")
    return value


# An amount as text: 0 to MAX_AMOUNT, at most two decimal places (so at most 12 digits), no
# sign, exponent or spaces. The OpenAPI schema states this pattern and the API checks the
# same one, so a client can tell a valid amount before sending it (docs/decisions.md).
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,7})(\.[0-9]{1,2})?$|^100000000(\.00?)?$"
_AMOUNT_TEXT = re.compile(AMOUNT_PATTERN)


def _amount_text(value: Any) -> Any:
    # Decimals built in code pass on to the bounds below; what a client sends must be text
    # of the pattern (a JSON number would lose cents to binary floating point).
    if isinstance(value, Decimal) or (isinstance(value, str) and _AMOUNT_TEXT.fullmatch(value)):
        return value
    raise ValueError('must be a decimal string such as "12.50" (0 to 100000000, two decimals)')


# Money travels as a decimal string; bounds keep a typo from refunding a fortune.
Amount = Annotated[
    Decimal,
    Field(ge=0, le=MAX_AMOUNT, max_digits=12, decimal_places=2),
    AfterValidator(_no_exponent),
    BeforeValidator(_amount_text),
    # Written without an exponent, so what is written reads back under the pattern.
    PlainSerializer(lambda value: format(value, "f"), return_type=str, when_used="json"),
    WithJsonSchema(
        {"type": "string", "pattern": AMOUNT_PATTERN, "examples": ["990.00"]}, mode="validation"
    ),
]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(max_length=4000)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class Money(BaseModel):
    amount: Amount
    currency: Currency


class Address(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: Annotated[str, Field(max_length=200)] | None = None
    line1: Annotated[str, Field(max_length=400)] | None = None
    line2: Annotated[str, Field(max_length=400)] | None = None
    city: Annotated[str, Field(max_length=200)] | None = None
    postal_code: Annotated[str, Field(max_length=20)] | None = None
    country: Annotated[str, Field(max_length=2)] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None


class Order(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: ShortText
    placed_at: datetime
    shipped_at: datetime | None = None
    delivered_at: datetime | None = None
    currency: Currency
    payment_method: Annotated[str, Field(max_length=40)] = "card"
    # The order's own parcel, when the storefront knows it: a refund-only case on an order
    # still in transit asks the carrier to intercept it, and the carrier reports on it.
    tracking_number: Annotated[str, Field(max_length=200)] | None = None


class Customer(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: ShortText
    email: Annotated[str, Field(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None = None
    phone: Annotated[str, Field(max_length=40)] | None = None
    # Any language tag; the case keeps the locale it resolved to (domain/locales.py) ...
    locale: Locale = Locale.EN
    # ... and the tag the storefront sent, when that differs (`zh-HK`, `fr`, `en_GB`).
    requested_locale: Annotated[str, Field(max_length=TAG_MAX)] | None = None
    channel: Channel = Channel.EMAIL
    timezone: Annotated[str, Field(max_length=64)] | None = None
    address: Address | None = None

    @model_validator(mode="before")
    @classmethod
    def _keep_requested_locale(cls, data: Any) -> Any:
        # A tag that is no language at all is left to the field's own error (naming
        # `customer.locale`); a stored customer's locale resolves to itself and keeps its tag.
        if not isinstance(data, dict) or "locale" not in data:
            return data
        tag = data["locale"]
        try:
            resolved = resolve_locale(tag)
        except ValueError:
            return data
        if tag != resolved.value:
            return {**data, "locale": resolved.value, "requested_locale": tag}
        return data

    @field_validator("locale", mode="before")
    @classmethod
    def _language_tag(cls, value: Any) -> Locale:
        return resolve_locale(value)


class Item(BaseModel):
    model_config = ConfigDict(extra="allow")

    sku: ShortText
    name: Annotated[str, Field(max_length=400)] = ""
    category: Annotated[str, Field(max_length=100)] = ""
    quantity: Annotated[int, Field(ge=1, le=10000)] = 1
    unit_price: Amount
    opened: bool = False
    warranty_months: Annotated[int, Field(ge=0, le=240)] = 0
    # The line's own reason, when the lines of a case differ (a shirt too small, a lamp
    # broken); None: the case's `reason`.
    reason: Reason | None = None

    @property
    def total(self) -> Decimal:
        """Price of the item line."""
        return self.unit_price * self.quantity


class ExchangeItem(BaseModel):
    sku: ShortText
    quantity: Annotated[int, Field(ge=1, le=10000)] = 1
    unit_price: Amount


class ReturnMethod(StrEnum):
    """How the item travels back to the shop (docs/policy.md, `return_methods`)."""

    # The shop books a carrier to collect it at the customer's address.
    PICKUP = "pickup"
    # The customer sends it themselves and reports the tracking number.
    SHIP = "ship"
    # The customer takes it to a convenience store with a drop-off code the shop books.
    DROPOFF = "dropoff"


# A store chain's name as the carrier and the policy spell it ("7-ELEVEN", "FamilyMart").
ChainName = Annotated[str, Field(min_length=1, max_length=40)]


class OutOfStock(BaseModel):
    """A replacement the warehouse reported out of stock, and what the customer may choose."""

    # The replacement line out of stock (None: the whole replacement).
    sku: str | None = None
    # When the warehouse expects it back in stock, if it said.
    expected_at: date | None = None
    # Variants in stock the customer may switch to, priced by the warehouse.
    alternatives: list[ExchangeItem] = []


class Complaint(BaseModel):
    category: ComplaintCategory
    channel: Annotated[str, Field(max_length=40)] = "web"
    severity: Literal["normal", "high"] = "normal"
    negative_review: bool = False


# What a return (or an exchange's refundable difference) pays out: money back to the original
# payment method, or store credit with the policy's bonus (docs/policy.md).
Resolution = Literal["refund", "store_credit"]
# The case types whose customer may choose store credit at open.
CREDIT_CASE_TYPES = frozenset({CaseType.RETURN, CaseType.EXCHANGE})


def _not(case_type: str) -> dict[str, Any]:
    return {"properties": {"type": {"not": {"const": case_type}}}}


# What api.cases.check_request refuses, stated in the schema: every type but a complaint has a
# reason, a complaint has its complaint, an exchange names what it is exchanged for.
CASE_REQUEST_RULES: dict[str, Any] = {
    "allOf": [
        {
            "anyOf": [
                {"properties": {"type": {"const": "complaint"}}},
                {"required": ["reason"], "properties": {"reason": {"not": {"type": "null"}}}},
            ]
        },
        {
            "anyOf": [
                _not("complaint"),
                {"required": ["complaint"], "properties": {"complaint": {"not": {"type": "null"}}}},
            ]
        },
        {
            "anyOf": [
                _not("exchange"),
                {"required": ["exchange_for"], "properties": {"exchange_for": {"minItems": 1}}},
            ]
        },
    ]
}


class CaseRequest(BaseModel):
    """The body a storefront or agent sends to open a case."""

    model_config = ConfigDict(extra="allow", json_schema_extra=CASE_REQUEST_RULES)

    type: CaseType
    order: Order
    customer: Customer
    items: Annotated[list[Item], Field(min_length=1, max_length=100)]
    reason: Reason | None = None
    description: LongText = ""
    evidence: Annotated[list[Annotated[str, Field(max_length=2000)]], Field(max_length=20)] = []
    exchange_for: Annotated[list[ExchangeItem], Field(max_length=100)] = []
    complaint: Complaint | None = None
    # The customer's choice of how a return or exchange comes back; None: the policy's way.
    return_method: ReturnMethod | None = None
    # The store chain of a drop-off, one of the policy's `dropoff_chains`; None: its first.
    dropoff_chain: ChainName | None = None
    # How the customer wants to be paid back: a refund (the default) or store credit.
    resolution: Resolution = "refund"

    @field_validator("resolution")
    @classmethod
    def _credit_for_returns(cls, value: Resolution, info: ValidationInfo) -> Resolution:
        # Only a return or an exchange pays back at open; other cases offer it later (a
        # refund-only case's offer) or not at all.
        kind = info.data.get("type")
        if value == "store_credit" and kind is not None and kind not in CREDIT_CASE_TYPES:
            raise ValueError(f"a {kind.value} case can't choose store credit at open")
        return value

    @model_validator(mode="after")
    def _headline_reason(self) -> CaseRequest:
        # Lines that each carry a reason need none for the case: its headline is the first
        # line the shop is at fault for (that one decides who pays shipping), else the first.
        if self.reason is None and self.items and all(item.reason for item in self.items):
            reasons = [item.reason for item in self.items if item.reason]
            faults = [reason for reason in reasons if reason in SELLER_FAULT_REASONS]
            self.reason = (faults or reasons)[0]
        return self

    @field_validator("items")
    @classmethod
    def _bounded_total(cls, items: list[Item]) -> list[Item]:
        # Each line is bounded; their sum must be too, or refunds could exceed any real order.
        if sum((item.total for item in items), Decimal("0")) > MAX_AMOUNT:
            raise ValueError(f"the items' total exceeds {MAX_AMOUNT}")
        return items

    @property
    def items_total(self) -> Decimal:
        """Total of every item line."""
        return sum((item.total for item in self.items), Decimal("0"))

    @property
    def exchange_total(self) -> Decimal:
        """Total of the replacement lines an exchange asks for."""
        return sum((line.unit_price * line.quantity for line in self.exchange_for), Decimal("0"))

    def line_reason(self, item: Item) -> Reason | None:
        """The reason a line comes back for: its own, else the case's."""
        return item.reason or self.reason

    @property
    def seller_fault(self) -> bool:
        """Whether the shop is at fault for any line (it then pays the way back)."""
        return any(self.line_reason(item) in SELLER_FAULT_REASONS for item in self.items)

    @property
    def all_seller_fault(self) -> bool:
        """Whether the shop is at fault for every line."""
        return all(self.line_reason(item) in SELLER_FAULT_REASONS for item in self.items)

    @property
    def fault_reason(self) -> Reason | None:
        """The reason that decides who pays the way back: the first line's the shop is at
        fault for, else the case's."""
        for item in self.items:
            reason = self.line_reason(item)
            if reason in SELLER_FAULT_REASONS:
                return reason
        return self.reason


class RuleHit(BaseModel):
    id: str
    message: str


class SeasonNote(BaseModel):
    """The peak season an order was placed in, as its decision tells the customer (the
    policy's `[[peak_seasons]]` entry, docs/policy.md)."""

    name: str
    # The season's name in other locales ("zh-TW" -> "雙11"); messages fall back to `name`.
    names: dict[str, str] = {}
    # Order dates it covers, inclusive: "MM-DD" every year, or "YYYY-MM-DD" once.
    orders_from: str
    orders_until: str
    extra_return_days: int = 0
    # The timers it stretches, with their season durations ("review" -> "3bd").
    timers: dict[str, str] = {}


# When a case issues the store credit a customer chose: the policy's `store_credit_at`
# (approval, first carrier scan, after inspection), or as the case pays out otherwise (an
# exchange's difference once the replacement ships, a refund-only offer once accepted).
CreditMoment = Literal["approval", "first_scan", "inspection", "dispatch", "acceptance"]


class CreditTerms(BaseModel):
    """The store credit a decision gives instead of a refund: the amount, the policy's bonus
    on top, and when it is issued."""

    amount: Money
    bonus_percent: Decimal = Decimal(0)
    bonus: Money
    issue_at: CreditMoment

    @property
    def total(self) -> Decimal:
        """What the customer can spend: the amount and its bonus."""
        return self.amount.amount + self.bonus.amount


class LineTerms(BaseModel):
    """One item line as a return or exchange decided it: whether it goes ahead (or why not),
    and what it pays back if it passes inspection."""

    sku: str
    reason: Reason | None = None
    eligible: bool = True
    # The line's total less its restocking fee: what the line refunds if it passes inspection.
    refund: Money
    restocking_fee: Money
    # Why the line can't go ahead (outside its window, a non-returnable category).
    rule: RuleHit | None = None


class Decision(BaseModel):
    """The outcome of evaluating the policy rules for a would-be case."""

    eligible: bool
    review: Literal["auto", "manual", "none"] = "manual"
    shipping_payer: Literal["seller", "customer"] | None = None
    # How the item comes back (None when nothing is, and in cases decided before there was a
    # choice: those travel the payer's way, a pickup for the shop, the customer's own parcel).
    return_method: ReturnMethod | None = None
    # The store chain of a drop-off, as the policy spells it.
    dropoff_chain: str | None = None
    high_risk: bool = False
    fast_refund: bool = False
    returnless: bool = False
    # An exchange whose replacement ships right after approval, before the original is back.
    advanced_exchange: bool = False
    in_warranty: bool = False
    refund_estimate: Money
    restocking_fee: Money
    rules: list[RuleHit] = []
    alternatives: list[str] = []
    # The peak season the order was placed in, if any (its rule `peak_season` says the same in
    # words); messages in every locale word it from these values.
    peak_season: SeasonNote | None = None
    # Store credit the customer chose instead of the refund (rule `store_credit`); None pays a
    # refund.
    store_credit: CreditTerms | None = None
    # A return's or exchange's lines, each with its terms (empty for the other types and for
    # cases decided before lines were): a line the policy refuses stays out of the case while
    # the others go ahead (rule `lines_excluded`).
    lines: list[LineTerms] = []

    @property
    def excluded(self) -> list[LineTerms]:
        """The lines the case doesn't take back, each with its rule."""
        return [line for line in self.lines if not line.eligible]

    def fired(self, rule_id: str) -> bool:
        """Whether the rule with this id fired."""
        return any(rule.id == rule_id for rule in self.rules)


class Deadline(BaseModel):
    name: str
    due_at: datetime


class TimelineEntry(BaseModel):
    at: datetime
    kind: str
    actor: str
    message: str = ""
    data: dict[str, Any] = {}


class NumberedEntry(TimelineEntry):
    """A timeline entry with its place in the case's timeline, as the projection stores it."""

    seq: int


RefundStatus = Literal["requested", "pending", "succeeded", "failed"]


class Refund(BaseModel):
    amount: Decimal
    currency: str
    status: RefundStatus = "requested"
    refund_id: str | None = None


class Dropoff(BaseModel):
    """A convenience-store drop-off the carrier booked: the code the customer shows at the
    counter, the chain whose stores take it, and when the code stops working."""

    code: str
    chain: str
    expires_at: datetime | None = None


CreditStatus = Literal["requested", "issued", "failed"]


class StoreCredit(BaseModel):
    """Store credit (or a complaint's coupon) issued through the storefront, once per case."""

    amount: Decimal
    # The policy's bonus on top of `amount` (0 for a coupon); the customer can spend both.
    bonus: Decimal = Decimal(0)
    currency: str
    status: CreditStatus = "requested"
    credit_id: str | None = None
    # The code the customer redeems it with, when the storefront gives one.
    code: str | None = None
    # "store_credit" instead of a refund, or "coupon" (a complaint's resolution).
    kind: Literal["store_credit", "coupon"] = "store_credit"

    @property
    def total(self) -> Decimal:
        """What the customer can spend."""
        return self.amount + self.bonus


class Shipment(BaseModel):
    """A parcel the case moves: the inbound return or an outbound replacement."""

    direction: Literal["inbound", "outbound"]
    carrier: str | None = None
    tracking_number: str | None = None
    label_url: str | None = None
    booked_by: Literal["seller", "customer"] = "customer"
    # An inbound parcel the customer takes to a store (decision `return_method` dropoff).
    dropoff: Dropoff | None = None


class RepairDiagnosis(BaseModel):
    """What the repair centre found: can it be fixed, with which parts, at what cost."""

    repairable: bool
    parts: list[str] = []
    cost: Decimal = Decimal(0)
    notes: str = ""
    # What declining the quote costs: the policy's diagnosis fee, at most the quote itself;
    # 0 when the policy charges none or an agent waived it (`diagnosis_fee_waived`).
    diagnosis_fee: Decimal = Decimal(0)
    diagnosis_fee_waived: bool = False


class RepairReport(BaseModel):
    """What the repair centre did."""

    parts_replaced: list[str] = []
    work_done: str = ""
    qc_passed: bool = True


QuoteStatus = Literal["sent", "accepted", "declined", "expired"]
RepairOutcome = Literal["repaired", "returned_unrepaired", "replaced", "refunded"]


class Repair(BaseModel):
    """A repair case's own record (DESIGN 3.5): diagnosis, quote, report, the repair's warranty."""

    diagnosis: RepairDiagnosis | None = None
    # Only a repair that costs the customer something is quoted.
    quote_status: QuoteStatus | None = None
    report: RepairReport | None = None
    outcome: RepairOutcome | None = None
    # The shop's warranty on the repair (policy `repairs.warranty_months` from delivery back).
    warranty_until: date | None = None


class CaseView(BaseModel):
    """A case as every endpoint returns it, and as the workflow's `state` query answers."""

    id: str
    type: CaseType
    status: CaseStatus
    order: Order
    customer: Customer
    items: list[Item]
    reason: Reason | None = None
    description: str = ""
    evidence: list[str] = []
    exchange_for: list[ExchangeItem] = []
    complaint: Complaint | None = None
    # An exchange whose replacement is out of stock: the customer's choices (issue 11).
    out_of_stock: OutOfStock | None = None
    decision: Decision
    refund: Refund | None = None
    store_credit: StoreCredit | None = None
    shipments: list[Shipment] = []
    repair: Repair | None = None
    deadlines: list[Deadline] = []
    queue: str = "customer_service"
    priority: Priority = Priority.NORMAL
    sla_breached: bool = False
    assignee: str | None = None
    rating: int | None = None
    parent_case_id: str | None = None
    child_case_ids: list[str] = []
    # Marked malicious by an agent (a complaint, DESIGN 3.6): no compensation, kept as evidence.
    malicious: bool = False
    # What the customer can send now (customer_action names), for the status page's forms.
    customer_actions: list[str] = []
    # What an agent can send now (agent action names), for the console's forms.
    agent_actions: list[str] = []
    status_url: str
    # When the case first reached `resolved`: it delivered its outcome (a child case tells its
    # parent so through its result, which carries no timeline).
    resolved_at: datetime | None = None
    # Assembled from the `timeline_event` rows by the API; the workflow holds none (its
    # `state` query answers without it) and the stored `view` JSON carries none.
    timeline: list[TimelineEntry] = []
    created_at: datetime
    updated_at: datetime

    @property
    def returned_items(self) -> list[Item]:
        """The lines that come back: every line but those the decision excluded."""
        excluded = {line.sku for line in self.decision.excluded}
        return [item for item in self.items if item.sku not in excluded]

    @property
    def next_deadline(self) -> Deadline | None:
        """The deadline due first, if any."""
        return min(self.deadlines, key=lambda d: d.due_at, default=None)


class CaseOutcome(BaseModel):
    """How a case ended: its workflow's result. The case itself is in the DB projection (and
    the `state` query), so the result doesn't copy it into the history again."""

    id: str
    status: CaseStatus
    # When the case first reached `resolved`: a complaint's child case tells its parent that
    # it delivered its outcome.
    resolved_at: datetime | None = None


class Acted(BaseModel):
    """What an action's update answers: the projection that holds its outcome. The API answers
    with the case from that row, so the history holds no copy of the case per action."""

    id: str
    status: CaseStatus
    # The case's projection revision once the action's changes were projected (0 from a
    # worker older than this answer: it sent the whole case, which reads as `Acted` too).
    revision: int = 0
