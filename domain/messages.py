"""The arguments a customer message carries besides the case: typed, defined once.

Templates read them as `extra.<name>` (notifications/templates). The workflow passes them as
keyword arguments (`Recorder.notify(message, amount=..., note=...)`, checked against
`MessageFields`); the `notify_customer` activity carries them as `MessageArgs`, which keeps
only the arguments given, so a message that needs one the workflow left out still fails to
render with a clear error (notifications.render.REQUIRED_EXTRA).
"""

from __future__ import annotations

from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer

from domain.models import Address, Money


class InspectedLine(BaseModel):
    """One line of a return inspected line by line, as the customer's message shows it."""

    sku: str
    name: str = ""
    passed: bool
    # What the line pays back (None: nothing).
    refund: Money | None = None
    keep_item: bool = False
    notes: str = ""


class OfferFields(TypedDict, total=False):
    """The keyword arguments of a message but `timer` (which waits taking these name their
    own deadline by)."""

    # Money: a price difference, an offer, a coupon, a repair's cost, a charge.
    amount: Money | None
    # A partial refund after a failed inspection.
    refund_amount: Money | None
    # The store credit (bonus included) a refund offer may be taken as instead.
    credit: Money | None
    # A coupon a complaint's proposal gives on top of its resolution.
    coupon: Money | None
    tracking_number: str | None
    # The policy's return address (lines), or an address.
    return_address: str | Address | None
    # True when the seller booked a pickup (the customer doesn't ship it themselves).
    pickup: bool
    question: str | None
    # An inspection's or a diagnosis's findings.
    notes: str | None
    # The agent's words with an offer or proposal.
    note: str | None
    # An agent's reason for a rejection (None when the policy rejected at open).
    reason: str | None
    resolution: str | None
    child_case_id: str | None
    parts: list[str]
    lost: bool
    # The agent's answer to a complaint.
    response: str | None
    keep_item: bool
    # A return inspected line by line: each line's outcome.
    lines: list[InspectedLine]


class MessageFields(OfferFields, total=False):
    """The keyword arguments of a message, as the workflow passes them."""

    # The timer that ran out.
    timer: str | None
    # The message still waiting for the customer's answer (an SMS nudge's subject).
    awaiting: str | None


class MessageArgs(BaseModel):
    """The arguments of one message as the activity carries them: only those given."""

    model_config = ConfigDict(extra="forbid")

    amount: Money | None = None
    refund_amount: Money | None = None
    credit: Money | None = None
    coupon: Money | None = None
    tracking_number: str | None = None
    return_address: str | Address | None = None
    pickup: bool | None = None
    question: str | None = None
    notes: str | None = None
    note: str | None = None
    reason: str | None = None
    resolution: str | None = None
    child_case_id: str | None = None
    parts: list[str] | None = None
    lost: bool | None = None
    response: str | None = None
    timer: str | None = None
    keep_item: bool | None = None
    awaiting: str | None = None
    lines: list[InspectedLine] | None = None

    @model_serializer(mode="wrap")
    def _given_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # An argument passed as None ("no reason") differs from one never passed; the history
        # and the template see only those given. Every default is None, so a given argument
        # the handler left out (the payload converter drops defaults) is a given None.
        data: dict[str, Any] = handler(self)
        return {
            name: data.get(name)
            for name in type(self).model_fields
            if name in self.model_fields_set
        }

    def __eq__(self, other: object) -> bool:
        # Equal when the same arguments were given, with the same values: `reason=None` is an
        # argument, so it never equals no arguments (and the payload converter, which leaves
        # out a field equal to its default, keeps it).
        if not isinstance(other, MessageArgs):
            return NotImplemented
        return self.model_fields_set == other.model_fields_set and super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def context(self) -> dict[str, Any]:
        """The `extra` mapping the templates read."""
        return self.model_dump(mode="json")
