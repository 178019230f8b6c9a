"""The single input and output of each activity, shared by workflows and the worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from domain.models import Address, CaseView, Deadline, ExchangeItem, Item


@dataclass
class RecordCase:
    view: CaseView
    token: str
    # Grows with every write, so a retried older write can't overwrite a newer one.
    revision: int


@dataclass
class PublishWebhook:
    view: CaseView
    event_type: str
    event_id: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class NotifyCustomer:
    view: CaseView
    message: str
    # Unique within the case; with the channel it makes the notification's deterministic ID.
    step: str
    timezone: str
    deadline: Deadline | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class NotifyOps:
    view: CaseView
    step: str
    timer: str | None
    reason: str
    timezone: str


@dataclass
class RequestRefund:
    case_id: str
    order_id: str
    amount: Decimal
    currency: str
    payment_method: str
    reason: str
    idempotency_key: str


@dataclass
class RefundResult:
    refund_id: str
    status: str  # succeeded | pending


@dataclass
class BookPickup:
    case_id: str
    address: Address | None
    parcels: list[Item]
    idempotency_key: str


@dataclass
class RequestShipment:
    case_id: str
    address: Address | None
    items: list[ExchangeItem | Item]
    idempotency_key: str


@dataclass
class CarrierBooking:
    id: str
    tracking_number: str | None
    label_url: str | None = None


@dataclass
class RequestInterception:
    case_id: str
    tracking_number: str | None
    idempotency_key: str
