"""What people and systems say to a case: agent actions, customer actions, integration events."""

from __future__ import annotations

import builtins
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
)

from domain.models import Amount, ExchangeItem, LongText, Resolution, ShortText

Notes = Annotated[str, Field(max_length=4000)]


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actor: Annotated[str, Field(max_length=200)] | None = None


Payer = Literal["seller", "customer"]


class Approve(_Action):
    action: Literal["approve"]
    notes: Notes = ""
    # A supervisor's changes to the policy's terms (returns and exchanges): the restocking
    # fee charged (0 waives it) and who pays return shipping. None keeps the policy's.
    restocking_fee: Amount | None = None
    shipping_payer: Payer | None = None


class ApproveException(_Action):
    """A supervisor approves a return or exchange the policy or an agent rejected."""

    action: Literal["approve_exception"]
    reason: Annotated[str, Field(min_length=1, max_length=4000)]
    restocking_fee: Amount | None = None
    shipping_payer: Payer | None = None


class Reject(_Action):
    action: Literal["reject"]
    reason: Annotated[str, Field(min_length=1, max_length=4000)]


class RequestInfo(_Action):
    action: Literal["request_info"]
    question: Annotated[str, Field(min_length=1, max_length=4000)]


class Respond(_Action):
    action: Literal["respond"]
    message: Annotated[str, Field(min_length=1, max_length=4000)]


class Propose(_Action):
    action: Literal["propose"]
    resolution: Literal[
        "apology", "coupon", "partial_refund", "refund", "return", "exchange", "repair"
    ]
    amount: Amount | None = None
    message: Notes = ""
    # A coupon on top of the resolution: one proposal combining, say, a partial refund and a
    # coupon for the trouble.
    coupon: Amount | None = None


InspectionResult = Literal["pass", "fail"]


class LineInspection(BaseModel):
    """One line's inspection: a multi-line return passes or fails each line on its own."""

    model_config = ConfigDict(extra="forbid")

    sku: ShortText
    result: InspectionResult
    # What a failed line still refunds (at most the line's own refund); None: nothing.
    refund_amount: Amount | None = None
    # The shop keeps a failed line instead of sending it back.
    keep_item: StrictBool = False
    notes: Notes = ""


InspectedLines = Annotated[list[LineInspection], Field(max_length=100)]


def _each_sku_once(lines: list[LineInspection]) -> list[LineInspection]:
    skus = [line.sku for line in lines]
    repeated = sorted({sku for sku in skus if skus.count(sku) > 1})
    if repeated:
        raise ValueError(f"each line once: {', '.join(repeated)} repeated")
    return lines


def _overall(result: InspectionResult | None, info: ValidationInfo) -> InspectionResult:
    """The inspection's result: as given, or what its lines add up to (every line passed)."""
    if "lines" not in info.data:
        # The lines themselves were refused; that error says it.
        return result or "fail"
    lines: list[LineInspection] = info.data["lines"]
    if not lines:
        if result is None:
            raise ValueError("required unless the lines are inspected one by one")
        return result
    derived: InspectionResult = "pass" if all(line.result == "pass" for line in lines) else "fail"
    if result is not None and result != derived:
        raise ValueError(f"the lines add up to {derived!r}")
    return derived


# _overall's rule as a schema states it: a result, or lines it is read from.
_RESULT_OR_LINES: dict[str, Any] = {
    "anyOf": [
        {"required": ["result"], "properties": {"result": {"not": {"type": "null"}}}},
        {"required": ["lines"], "properties": {"lines": {"minItems": 1}}},
    ]
}


class RecordInspection(_Action):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_RESULT_OR_LINES)

    action: Literal["record_inspection"]
    # Before `result`: the result is read from them when it isn't given.
    lines: InspectedLines = []
    result: Annotated[InspectionResult | None, Field(validate_default=True)] = None
    grade: Annotated[str, Field(max_length=40)] | None = None
    refund_amount: Amount | None = None
    keep_item: StrictBool = False
    notes: Notes = ""

    _lines = field_validator("lines")(_each_sku_once)
    _result = field_validator("result")(_overall)


class RecordDiagnosis(_Action):
    action: Literal["record_diagnosis"]
    repairable: StrictBool
    cost: Amount = Decimal(0)
    parts: list[ShortText] = []
    notes: Notes = ""
    # The policy's diagnosis fee isn't charged if the customer declines the quote.
    waive_diagnosis_fee: StrictBool = False


class Assign(_Action):
    action: Literal["assign"]
    agent: ShortText | None = None
    queue: ShortText | None = None


class Escalate(_Action):
    action: Literal["escalate"]
    reason: Notes = ""


class MarkMalicious(_Action):
    action: Literal["mark_malicious"]
    notes: Annotated[str, Field(min_length=1, max_length=4000)]


class Note(_Action):
    action: Literal["note"]
    message: Annotated[str, Field(min_length=1, max_length=4000)]


class Retry(_Action):
    """Run again the step a partner failed (a refund, a pickup, a shipment, an interception)."""

    action: Literal["retry"]
    notes: Notes = ""


class AgentCancel(_Action):
    action: Literal["cancel"]
    reason: Notes = ""


AgentAction = Annotated[
    Approve
    | Reject
    | RequestInfo
    | Respond
    | Propose
    | RecordInspection
    | RecordDiagnosis
    | Assign
    | Escalate
    | MarkMalicious
    | Note
    | Retry
    | AgentCancel
    | ApproveException,
    Field(discriminator="action"),
]


class Reply(_Action):
    action: Literal["reply"]
    message: Annotated[str, Field(min_length=1, max_length=4000)]
    evidence: Annotated[list[Annotated[str, Field(max_length=2000)]], Field(max_length=20)] = []


class ProvideTracking(_Action):
    action: Literal["provide_tracking"]
    carrier: ShortText
    tracking_number: Annotated[str, Field(min_length=3, max_length=64)]


class Accept(_Action):
    action: Literal["accept"]
    # A refund offer may be taken as store credit with the policy's bonus instead.
    resolution: Resolution = "refund"


class Decline(_Action):
    action: Literal["decline"]


class Rate(_Action):
    action: Literal["rate"]
    score: Annotated[int, Field(ge=1, le=5)]
    comment: LongText = ""


class CustomerCancel(_Action):
    action: Literal["cancel"]


class SwitchVariant(_Action):
    """Swap an out-of-stock replacement for one of the variants the warehouse offered."""

    action: Literal["switch_variant"]
    # One of the offered alternatives: the customer picks, the warehouse's list prices it.
    sku: ShortText


CustomerAction = Annotated[
    Reply | ProvideTracking | Accept | Decline | Rate | CustomerCancel | SwitchVariant,
    Field(discriminator="action"),
]


class EventType(StrEnum):
    CARRIER_PICKED_UP = "carrier.picked_up"
    CARRIER_IN_TRANSIT = "carrier.in_transit"
    CARRIER_DELIVERED = "carrier.delivered"
    CARRIER_INTERCEPTED = "carrier.intercepted"
    CARRIER_EXCEPTION = "carrier.exception"
    WAREHOUSE_RECEIVED = "warehouse.received"
    INSPECTION_COMPLETED = "inspection.completed"
    REFUND_SETTLED = "refund.settled"
    REFUND_FAILED = "refund.failed"
    REPLACEMENT_SHIPPED = "replacement.shipped"
    REPLACEMENT_OUT_OF_STOCK = "replacement.out_of_stock"
    REPAIR_DIAGNOSED = "repair.diagnosed"
    REPAIR_COMPLETED = "repair.completed"
    CUSTOMER_PAID_DIFFERENCE = "customer.paid_difference"


class _EventData(BaseModel):
    model_config = ConfigDict(extra="allow")


class CarrierExceptionData(_EventData):
    kind: Literal["lost", "damaged"]


class InspectionData(_EventData):
    model_config = ConfigDict(extra="allow", json_schema_extra=_RESULT_OR_LINES)

    # Each line's own result and amount (returns of several lines); `result` then follows.
    lines: InspectedLines = []
    result: Annotated[InspectionResult | None, Field(validate_default=True)] = None
    grade: Annotated[str, Field(max_length=40)] | None = None
    refund_amount: Amount | None = None
    keep_item: StrictBool = False
    notes: Notes = ""

    _lines = field_validator("lines")(_each_sku_once)
    _result = field_validator("result")(_overall)


class RefundEventData(_EventData):
    refund_id: Annotated[str, Field(max_length=200)] | None = None
    reason: Notes = ""


class ReplacementShippedData(_EventData):
    tracking_number: Annotated[str, Field(min_length=3, max_length=64)]


class OutOfStockData(_EventData):
    """`replacement.out_of_stock`: what the warehouse knows of the stock (all optional)."""

    # The replacement line out of stock; none names the whole replacement.
    sku: ShortText | None = None
    # The restock date the warehouse expects (a shop date, e.g. "2026-12-20").
    expected_at: date | None = None
    # Variants in stock the customer may switch to, each with its quantity and price.
    alternatives: Annotated[list[ExchangeItem], Field(max_length=20)] = []


class DiagnosisData(_EventData):
    repairable: StrictBool
    parts: list[ShortText] = []
    cost: Amount = Decimal(0)
    notes: Notes = ""
    waive_diagnosis_fee: StrictBool = False


class RepairReportData(_EventData):
    parts_replaced: list[ShortText] = []
    work_done: Notes = ""
    qc_passed: StrictBool = True


EVENT_DATA: dict[EventType, type[BaseModel]] = {
    EventType.CARRIER_EXCEPTION: CarrierExceptionData,
    EventType.INSPECTION_COMPLETED: InspectionData,
    EventType.REFUND_SETTLED: RefundEventData,
    EventType.REFUND_FAILED: RefundEventData,
    EventType.REPLACEMENT_SHIPPED: ReplacementShippedData,
    EventType.REPLACEMENT_OUT_OF_STOCK: OutOfStockData,
    EventType.REPAIR_DIAGNOSED: DiagnosisData,
    EventType.REPAIR_COMPLETED: RepairReportData,
}


_Data = TypeVar("_Data", bound=BaseModel)


class IntegrationEvent(BaseModel):
    """An event a carrier, warehouse or payment provider reports about a case."""

    model_config = ConfigDict(extra="forbid")

    event_id: Annotated[str, Field(min_length=1, max_length=200)]
    type: EventType
    occurred_at: datetime
    data: dict[str, Any] = {}

    def parsed(self) -> BaseModel | None:
        """The event's data validated against its type's model, if the type has one."""
        model = EVENT_DATA.get(self.type)
        return model.model_validate(self.data) if model else None

    def data_as(self, model: builtins.type[_Data]) -> _Data:
        """The event's data validated as `model` (the step that waited for it knows which)."""
        return model.model_validate(self.data)
