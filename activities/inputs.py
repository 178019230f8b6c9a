"""The single input and output of each activity, shared by workflows and the worker."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from domain.messages import MessageArgs
from domain.models import Address, Channel, Deadline, ExchangeItem, Item, NumberedEntry
from domain.names import Message, status_of_webhook


@dataclass
class WebhookEvent:
    """One storefront webhook event, to be written to the outbox with the projection."""

    # `{event_type}.{n}`, unique within the case (`case.resolved.1`): the event's ID is
    # `{case_id}:{step}`, the same on every attempt, so the storefront can drop a repeat.
    step: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def event_type(self) -> str:
        """The event's type: its step without the counter."""
        return self.step.rpartition(".")[0]

    def event_id(self, case_id: str) -> str:
        """The event's ID, the same on every attempt."""
        return f"{case_id}:{self.step}"

    @property
    def status(self) -> str | None:
        """The status the case was in when the event happened: a status webhook's own
        status; None for other events (the status the projection leaves)."""
        return status_of_webhook(self.event_type)


@dataclass
class ProjectCase:
    """One projection of a case: what changed since the last one, never the whole case."""

    case_id: str
    # Grows with every projection, so a retried older write can't overwrite a newer one.
    # The API's opening row is revision 0.
    revision: int
    # The CaseView fields (as JSON) that changed since the run's last projection, or since
    # the API's opening row; the first projection of a case no API opened (a complaint's
    # child case) or of a continued run carries every field but the timeline. `updated_at`
    # is left out when it is the last new entry's time (the store sets it from the entry).
    changes: dict[str, Any] = field(default_factory=dict)
    # The timeline entries added since the last projection, numbered.
    entries: list[NumberedEntry] = field(default_factory=list)
    # Storefront webhook events, written to the outbox in the projection's transaction.
    webhooks: list[WebhookEvent] = field(default_factory=list)
    # The customer's token, on a run's first projection (a case no API wrote needs it).
    token: str | None = None


@dataclass
class NotifyCustomer:
    """One customer message; the activity reads the case from its record."""

    case_id: str
    message: Message
    # Unique within the case; with the channel it makes the notification's deterministic ID.
    step: str
    # The shop's timezone (the case's policy copy), for times when the customer has none.
    timezone: str
    deadline: Deadline | None = None
    args: MessageArgs = field(default_factory=MessageArgs)
    # The channel it goes by: None for the customer's own (an SMS nudge goes by SMS).
    channel: Channel | None = None


@dataclass
class NotifyOps:
    """One escalation mail to the operations contacts."""

    case_id: str
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
class IssueStoreCredit:
    """Store credit (or a complaint's coupon) for the storefront to issue: `amount` plus the
    policy's `bonus` is what the customer can spend."""

    case_id: str
    customer_id: str
    amount: Decimal
    currency: str
    bonus: Decimal
    reason: str
    idempotency_key: str


@dataclass
class StoreCreditResult:
    credit_id: str
    code: str | None = None


@dataclass
class BookPickup:
    case_id: str
    address: Address | None
    parcels: list[Item]
    idempotency_key: str


@dataclass
class BookDropoff:
    """A convenience-store drop-off of the customer's parcel (DESIGN 7, `POST /dropoffs`)."""

    case_id: str
    # The store chain the customer chose (None: the carrier's own choice).
    chain: str | None
    parcels: list[Item]
    idempotency_key: str


@dataclass
class DropoffBooking:
    """The carrier's drop-off: the code shown at the counter, the chain, its expiry."""

    id: str
    tracking_number: str | None
    code: str
    chain: str
    # When the code stops working; None when the carrier gave no usable time.
    expires_at: datetime | None = None
    label_url: str | None = None


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


@dataclass
class WebhookFailure:
    """The outbox gave up on a webhook event: what the storefront answered (the case's
    `webhook_failed` signal, sent by the worker's outbox drainer)."""

    event_id: str
    event_type: str
    answer: str
