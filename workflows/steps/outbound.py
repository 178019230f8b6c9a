"""Sending an item to the customer: a replacement, a repaired item or a failed return, until
it is delivered."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inputs import CarrierBooking, RequestShipment
    from domain.actions import EventType, IntegrationEvent, ReplacementShippedData
    from domain.models import CaseStatus, ExchangeItem, Item, Shipment
    from domain.names import Actor, Kind, Message, Timer
    from workflows import calls
    from workflows.case import Case
    from workflows.failures import until_done

DISPATCHED = frozenset({EventType.REPLACEMENT_SHIPPED, EventType.REPLACEMENT_OUT_OF_STOCK})
DELIVERED = frozenset({EventType.CARRIER_DELIVERED})


async def ship_to_customer(
    case: Case, items: Sequence[Item | ExchangeItem], step: str
) -> CarrierBooking | None:
    """Ask the carrier to ship items to the customer; None when the warehouse reported the
    parcel shipped (or out of stock) while a refused booking waited for an agent."""
    view = case.view
    request = RequestShipment(
        case_id=view.id,
        address=view.customer.address,
        items=list(items),
        idempotency_key=f"{view.id}:{step}",
    )
    booking = await until_done(
        case,
        lambda: calls.request_shipment(request, case.journal),
        partner=Actor.CARRIER,
        escalation="The carrier refused the shipment",
        settles=DISPATCHED,
    )
    tracking = booking.tracking_number if booking else None
    view.shipments.append(
        Shipment(direction="outbound", booked_by="seller", tracking_number=tracking)
    )
    if booking is not None:
        case.recorder.add(
            Kind.SHIPMENT_BOOKED, Actor.CARRIER, f"Shipment booked, tracking {tracking}."
        )
    return booking


async def dispatch(
    case: Case, items: Sequence[Item | ExchangeItem], *, step: str
) -> IntegrationEvent | None:
    """Ask the warehouse to ship; answers `replacement.shipped`, or None when out of stock."""
    found = await request_dispatch(case, items, step=step)
    return None if found.type == EventType.REPLACEMENT_OUT_OF_STOCK else found


async def request_dispatch(
    case: Case,
    items: Sequence[Item | ExchangeItem],
    *,
    step: str,
    timer: Timer = Timer.DISPATCH,
    due_at: datetime | None = None,
) -> IntegrationEvent:
    """Ask the warehouse to ship, under `timer` (until `due_at` if given); answers
    `replacement.shipped` (marked shipped) or `replacement.out_of_stock`."""
    # A delivery reported before this shipment was about the parcel coming back.
    case.inbox.discard_events(DELIVERED)
    await ship_to_customer(case, items, step)
    found = await case.deadlines.event(DISPATCHED, timer, due_at)
    if found.type == EventType.REPLACEMENT_SHIPPED:
        await mark_shipped(case, found)
    return found


async def mark_shipped(case: Case, shipped: IntegrationEvent) -> None:
    """Record the outbound tracking number and tell the customer it is on its way."""
    data = shipped.data_as(ReplacementShippedData)
    outbound = [s for s in case.view.shipments if s.direction == "outbound"]
    if outbound:
        outbound[-1].tracking_number = data.tracking_number
    await case.recorder.set_status(
        CaseStatus.REPLACEMENT_SHIPPED,
        Kind.REPLACEMENT_SHIPPED,
        Actor.WAREHOUSE,
        f"Shipped with tracking number {data.tracking_number}.",
    )
    await case.recorder.notify(Message.REPLACEMENT_SHIPPED, tracking_number=data.tracking_number)


async def await_delivery(case: Case) -> None:
    """Wait for the carrier to deliver what was shipped; a long silence escalates."""
    await case.deadlines.event(DELIVERED, Timer.TRANSIT)
    case.recorder.add(Kind.DELIVERED, Actor.CARRIER, "Delivered to the customer.")
