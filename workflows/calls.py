"""Every activity a case calls, in one place: its timeout, its retry policy and its summary.

The workflows call activities only through these functions, so a change of an activity's
contract, timeout or retry policy lands here and nowhere else. The calls whose result the
lifecycle goes on with (a refund, a booking) take the case's journal: a continued run answers
them from it instead of calling again (workflows/journal.py).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.carriers import CarrierActivities
    from activities.inputs import (
        BookDropoff,
        BookPickup,
        CarrierBooking,
        DropoffBooking,
        IssueStoreCredit,
        NotifyCustomer,
        NotifyOps,
        ProjectCase,
        RefundResult,
        RequestInterception,
        RequestRefund,
        RequestShipment,
        StoreCreditResult,
    )
    from activities.notify import NotifyActivities
    from activities.payments import PaymentActivities
    from activities.policy import ACTIVITY_TIMEOUT, CONNECTOR_RETRY
    from activities.records import RecordActivities
    from activities.storefront import StorefrontActivities
    from workflows.journal import Journal

__all__ = ["ACTIVITY_TIMEOUT", "CONNECTOR_RETRY"]

T = TypeVar("T")


async def project_case(input: ProjectCase) -> None:
    """Project what changed to the DB, with the webhook events for the outbox (retried until
    the DB takes it)."""
    await workflow.execute_activity_method(
        RecordActivities.project_case,
        input,
        start_to_close_timeout=ACTIVITY_TIMEOUT,
        summary=_projection_summary(input),
    )


def _projection_summary(input: ProjectCase) -> str:
    # Short: it is in every projection's history event (the workflow is the case already).
    status = input.changes.get("status")
    parts = [f"r{input.revision}"]
    if status:
        parts.append(str(status))
    if input.entries:
        parts.append(f"+{len(input.entries)} entries")
    if input.webhooks:
        parts.append(f"+{len(input.webhooks)} webhooks")
    return " ".join(parts)


def _connector_call(method: Any, input: Any, summary: str) -> Awaitable[Any]:
    # Every call to a partner: the same timeout and capped retries (a 4xx or an exhausted
    # retry comes back as an ActivityError the recorder escalates).
    return workflow.execute_activity_method(
        method,
        input,
        start_to_close_timeout=ACTIVITY_TIMEOUT,
        retry_policy=CONNECTOR_RETRY,
        summary=summary,
    )


async def _remembered(
    journal: Journal, result: type[T], what: str, method: Any, input: Any, summary: str
) -> T:
    # A call whose result the lifecycle goes on with: a continued run reads it from the
    # journal instead of calling the partner again.
    return await journal.remember(
        "call", result, lambda: _connector_call(method, input, summary), what=what
    )


async def notify_customer(input: NotifyCustomer) -> str:
    """Send the customer one message over their channel; answers the delivery status
    ("sent", or "failed" for a refusal the activity settled, e.g. a bad address)."""
    status: str = await _connector_call(
        NotifyActivities.notify_customer, input, f"tell the customer: {input.message}"
    )
    return status


async def notify_ops(input: NotifyOps) -> None:
    """Mail the operations contacts about an escalation."""
    await _connector_call(NotifyActivities.notify_ops, input, f"escalate: {input.reason}")


async def request_refund(input: RequestRefund, journal: Journal) -> RefundResult:
    """Ask the payment provider for the refund (idempotent on its key)."""
    summary = f"refund {input.currency} {input.amount} to {input.payment_method}"
    return await _remembered(
        journal, RefundResult, "request_refund", PaymentActivities.request_refund, input, summary
    )


async def book_pickup(input: BookPickup, attempt: int, journal: Journal) -> CarrierBooking:
    """Book a carrier pickup at the customer's address."""
    summary = f"book carrier pickup #{attempt}"
    return await _remembered(
        journal, CarrierBooking, "book_pickup", CarrierActivities.book_pickup, input, summary
    )


async def book_dropoff(input: BookDropoff, journal: Journal) -> DropoffBooking:
    """Book a convenience-store drop-off: the code the customer shows at the counter."""
    summary = f"book {input.chain or 'a'} store drop-off"
    method = CarrierActivities.book_dropoff
    return await _remembered(journal, DropoffBooking, "book_dropoff", method, input, summary)


async def request_shipment(input: RequestShipment, journal: Journal) -> CarrierBooking:
    """Ask the carrier to ship items to the customer."""
    summary = f"ship {len(input.items)} item(s) to the customer"
    method = CarrierActivities.request_shipment
    return await _remembered(journal, CarrierBooking, "request_shipment", method, input, summary)


async def request_interception(input: RequestInterception, journal: Journal) -> CarrierBooking:
    """Ask the carrier to stop a parcel on its way."""
    summary = "ask the carrier to intercept the parcel"
    method = CarrierActivities.request_interception
    return await _remembered(
        journal, CarrierBooking, "request_interception", method, input, summary
    )


async def issue_store_credit(input: IssueStoreCredit, journal: Journal) -> StoreCreditResult:
    """Ask the storefront to issue store credit or a coupon (idempotent on its key)."""
    summary = f"store credit {input.currency} {input.amount + input.bonus}"
    method = StorefrontActivities.issue_store_credit
    return await _remembered(
        journal, StoreCreditResult, "issue_store_credit", method, input, summary
    )
