"""Taking an item back: pickup, customer shipment or store drop-off, transit, receipt and
inspection."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inputs import BookDropoff, BookPickup, CarrierBooking, DropoffBooking
    from domain.actions import (
        CarrierExceptionData,
        EventType,
        InspectionData,
        IntegrationEvent,
        ProvideTracking,
        RecordInspection,
    )
    from domain.inspection import mismatch
    from domain.models import CaseStatus, Deadline, Dropoff, ReturnMethod, Shipment
    from domain.names import Actor, AgentVerb, CustomerVerb, Kind, Message, Timer
    from domain.return_methods import Payer, method_for
    from workflows import calls
    from workflows.case import Case
    from workflows.failures import until_done
    from workflows.inbox import Accepts

FIRST_SCANS = frozenset(
    {EventType.CARRIER_PICKED_UP, EventType.CARRIER_IN_TRANSIT, EventType.WAREHOUSE_RECEIVED}
)
TRACKING = frozenset({CustomerVerb.PROVIDE_TRACKING.value})
ARRIVALS = frozenset({EventType.WAREHOUSE_RECEIVED, EventType.CARRIER_EXCEPTION})
INSPECTION_RESULTS = Accepts(
    agent=frozenset({AgentVerb.RECORD_INSPECTION}),
    events=frozenset({EventType.INSPECTION_COMPLETED}),
)


@dataclass
class Received:
    """How the item came back: inspected (or just received, uninspected), or lost on the way."""

    lost: bool = False
    # The customer never sent it (only when the caller chose not to expire the case).
    never_shipped: bool = False
    inspection: InspectionData | None = None


async def receive_item(
    case: Case,
    on_first_scan: Callable[[], Awaitable[None]] | None = None,
    *,
    expires: bool = True,
    inspect: bool = True,
) -> Received:
    """Bring the item back and inspect it; `on_first_scan` runs when the carrier first has it.

    With `expires` off, a customer who never ships doesn't expire the case: the caller decides.
    With `inspect` off it stops at receipt (no inspection, `Received.inspection` None): a
    repair diagnoses the item instead.
    """
    rec, deadlines = case.recorder, case.deadlines
    # Only a customer who ships the parcel themselves reports a tracking number.
    customer_ships = return_method(case) is ReturnMethod.SHIP
    tracking = TRACKING if customer_ships else frozenset()
    # The customer's deadline is listed with the status; a pickup's starts once it is booked,
    # a drop-off's once the carrier has said how long its code works.
    due_at = deadlines.due(Timer.CUSTOMER_SHIPMENT) if customer_ships else None
    if due_at:
        deadlines.set(Timer.CUSTOMER_SHIPMENT, due_at)
    await rec.set_status(
        CaseStatus.AWAITING_SHIPMENT,
        Kind.AWAITING_SHIPMENT,
        Actor.SYSTEM,
        expect=Accepts(customer=tracking),
    )
    scan = await _handover(case, due_at, expires=expires)
    if scan is None:
        return Received(never_shipped=True)
    if scan.type != EventType.WAREHOUSE_RECEIVED:
        # The transit deadline runs from the pickup: a damage report on the way doesn't move
        # it. It is listed with the status, before anything slower happens.
        transit_due = deadlines.due(Timer.TRANSIT)
        deadlines.set(Timer.TRANSIT, transit_due)
        await rec.set_status(
            CaseStatus.IN_TRANSIT, Kind.IN_TRANSIT, Actor.CARRIER, "The carrier has the parcel."
        )
        await rec.notify(Message.PICKED_UP)
        if on_first_scan is not None:
            await on_first_scan()
        arrived = await deadlines.event(ARRIVALS, Timer.TRANSIT, transit_due)
        if arrived.type == EventType.CARRIER_EXCEPTION:
            if arrived.data_as(CarrierExceptionData).kind == "lost":
                await rec.escalate(
                    reason="The carrier lost the parcel after pickup; file a carrier claim.",
                    actor=Actor.CARRIER,
                )
                return Received(lost=True)
            rec.add(Kind.PARCEL_DAMAGED, Actor.CARRIER, "The carrier reported damage in transit.")
            received = frozenset({EventType.WAREHOUSE_RECEIVED})
            await deadlines.event(received, Timer.TRANSIT, transit_due)
    elif on_first_scan is not None:
        await on_first_scan()
    return Received(inspection=await _inspect(case) if inspect else None)


async def _handover(
    case: Case, due_at: datetime | None, *, expires: bool
) -> IntegrationEvent | None:
    """Get the parcel to the carrier: a seller-booked pickup, the customer's own shipment, or
    a store drop-off."""
    rec, deadlines = case.recorder, case.deadlines
    return_address = case.policy.returns.return_address
    if return_method(case) is ReturnMethod.DROPOFF:
        # Only cases decided with a drop-off come here: the other ways' commands are as before.
        return await _dropoff(case, expires=expires)
    if case.view.decision.shipping_payer == "seller" or due_at is None:
        booking = await book_pickup(case, attempt=1)
        due_at = deadlines.due(Timer.CARRIER_PICKUP)
        deadlines.set(Timer.CARRIER_PICKUP, due_at)
        await rec.notify(
            Message.CASE_APPROVED,
            deadline=Deadline(name=Timer.CARRIER_PICKUP, due_at=due_at),
            pickup=True,
            tracking_number=booking.tracking_number if booking else None,
            return_address=return_address,
        )
        scan = await deadlines.wait_until(Accepts(events=FIRST_SCANS), Timer.CARRIER_PICKUP, due_at)
        if isinstance(scan, IntegrationEvent):
            return scan
        booking = await book_pickup(case, attempt=2)
        if booking is not None:
            await rec.notify(Message.PICKUP_REBOOKED, tracking_number=booking.tracking_number)
        return await deadlines.event(FIRST_SCANS, Timer.CARRIER_PICKUP)
    await rec.notify(
        Message.CASE_APPROVED,
        deadline=Deadline(name=Timer.CUSTOMER_SHIPMENT, due_at=due_at),
        pickup=False,
        tracking_number=None,
        return_address=return_address,
    )
    shipped = await deadlines.wait_reminding(
        Accepts(customer=TRACKING, events=FIRST_SCANS),
        Timer.CUSTOMER_SHIPMENT,
        Timer.CUSTOMER_SHIPMENT_REMINDER,
        Message.SHIPMENT_REMINDER,
        due_at=due_at,
        return_address=return_address,
    )
    match shipped:
        case None:
            if expires:
                raise await deadlines.expire(Timer.CUSTOMER_SHIPMENT)
            return None
        case IntegrationEvent():
            return shipped
        case ProvideTracking():
            inbound = inbound_shipment(case, create=True)
            inbound.carrier, inbound.tracking_number = shipped.carrier, shipped.tracking_number
            rec.add(
                Kind.TRACKING_PROVIDED,
                Actor.CUSTOMER,
                f"Shipped with {shipped.carrier}, {shipped.tracking_number}.",
            )
    # The customer has done their part; a parcel with no scan for this long is likely lost.
    return await deadlines.event(FIRST_SCANS, Timer.TRANSIT)


async def _dropoff(case: Case, *, expires: bool) -> IntegrationEvent | None:
    """Book the drop-off, tell the customer its code, and wait for the store's first scan
    until the code expires (a reminder on the way when there is time for one)."""
    rec, deadlines = case.recorder, case.deadlines
    return_address = case.policy.returns.return_address
    booking = await book_dropoff(case)
    if booking is None:
        # The store scanned the parcel while the refused booking waited for an agent (booked
        # by hand): the scan waits in the inbox.
        return await deadlines.event(FIRST_SCANS, Timer.CUSTOMER_SHIPMENT)
    now = case.journal.now()
    # The code's own expiry is the deadline; a carrier that gave none usable gets the
    # policy's customer_shipment time, so the wait always ends.
    expiry = booking.expires_at
    due_at = expiry if expiry and expiry > now else deadlines.due(Timer.CUSTOMER_SHIPMENT)
    deadline = Deadline(name=Timer.CUSTOMER_SHIPMENT, due_at=due_at)
    await rec.notify(
        Message.CASE_APPROVED,
        deadline=deadline,
        pickup=False,
        tracking_number=booking.tracking_number,
        return_address=return_address,
    )
    scans = Accepts(events=FIRST_SCANS)
    if deadlines.due(Timer.CUSTOMER_SHIPMENT_REMINDER) < due_at:
        shipped = await deadlines.wait_reminding(
            scans,
            Timer.CUSTOMER_SHIPMENT,
            Timer.CUSTOMER_SHIPMENT_REMINDER,
            Message.SHIPMENT_REMINDER,
            due_at=due_at,
            return_address=return_address,
        )
    else:
        shipped = await deadlines.wait_until(scans, Timer.CUSTOMER_SHIPMENT, due_at)
    if isinstance(shipped, IntegrationEvent):
        return shipped
    if expires:
        raise await deadlines.expire(Timer.CUSTOMER_SHIPMENT)
    return None


async def _inspect(case: Case) -> InspectionData:
    await case.recorder.set_status(
        CaseStatus.INSPECTING,
        Kind.RECEIVED,
        Actor.WAREHOUSE,
        "The warehouse has the item.",
        expect=INSPECTION_RESULTS,
    )
    await case.recorder.notify(Message.ITEM_RECEIVED)
    while True:
        found = await case.deadlines.wait_escalating(INSPECTION_RESULTS, Timer.INSPECTION)
        match found:
            case IntegrationEvent():
                reported = found.data_as(InspectionData)
                wrong = mismatch(case.view, reported)
                if wrong is None:
                    return reported
                # The API refuses such lines; one that got here anyway waits for a person.
                await case.recorder.escalate(
                    reason=f"The warehouse's inspection was set aside: {wrong}.",
                    actor=Actor.WAREHOUSE,
                )
            case RecordInspection():
                data = InspectionData(
                    lines=found.lines,
                    result=found.result,
                    grade=found.grade,
                    refund_amount=found.refund_amount,
                    keep_item=found.keep_item,
                    notes=found.notes,
                )
                wrong = mismatch(case.view, data)
                if wrong is not None:
                    case.inbox.refuse_last(f"The inspection's lines don't fit the case: {wrong}.")
                    continue
                # An event leaves its own timeline entry when it arrives; an agent's result
                # needs one too, or the timeline wouldn't say who decided it.
                case.recorder.add(
                    Kind.INSPECTION_RECORDED,
                    found.actor or Actor.AGENT,
                    "Inspection recorded.",
                    data.model_dump(mode="json"),
                )
                return data
            case _:
                case.inbox.refuse_last("Only an inspection result is taken here.")


async def book_pickup(case: Case, attempt: int) -> CarrierBooking | None:
    """Book a carrier pickup at the customer's address; None when the carrier scanned the
    parcel while a refused booking waited for an agent (the scan waits in the inbox)."""
    view = case.view
    request = BookPickup(
        case_id=view.id,
        address=view.customer.address,
        parcels=view.returned_items,
        idempotency_key=f"{view.id}:pickup.{attempt}",
    )
    booking = await until_done(
        case,
        lambda: calls.book_pickup(request, attempt, case.journal),
        partner=Actor.CARRIER,
        escalation="The carrier refused the pickup",
        settles=FIRST_SCANS,
    )
    if booking is None:
        return None
    _booked_by_shop(case, booking.tracking_number, booking.label_url)
    case.recorder.add(
        Kind.PICKUP_BOOKED,
        Actor.CARRIER,
        f"Pickup booked, tracking number {booking.tracking_number}.",
    )
    return booking


async def book_dropoff(case: Case) -> DropoffBooking | None:
    """Book a convenience-store drop-off of the customer's parcel; None when the store scanned
    the parcel while a refused booking waited for an agent (the scan waits in the inbox)."""
    view = case.view
    request = BookDropoff(
        case_id=view.id,
        chain=view.decision.dropoff_chain,
        parcels=view.returned_items,
        idempotency_key=f"{view.id}:dropoff",
    )
    booking = await until_done(
        case,
        lambda: calls.book_dropoff(request, case.journal),
        partner=Actor.CARRIER,
        escalation="The carrier refused the drop-off",
        settles=FIRST_SCANS,
    )
    if booking is None:
        return None
    # The shop booked it, whoever pays the postage at the counter.
    inbound = _booked_by_shop(case, booking.tracking_number, booking.label_url)
    inbound.dropoff = Dropoff(code=booking.code, chain=booking.chain, expires_at=booking.expires_at)
    case.recorder.add(
        Kind.DROPOFF_BOOKED,
        Actor.CARRIER,
        f"{booking.chain} drop-off booked, code {booking.code}.",
        {"code": booking.code, "chain": booking.chain},
    )
    return booking


def _booked_by_shop(case: Case, tracking_number: str | None, label_url: str | None) -> Shipment:
    """The inbound shipment, as the carrier booked it for the shop."""
    inbound = inbound_shipment(case, create=True)
    inbound.booked_by = "seller"
    inbound.tracking_number = tracking_number
    inbound.label_url = label_url
    return inbound


def return_method(case: Case) -> ReturnMethod:
    """How the case's item comes back: its decision's way, or its payer's (a case decided
    before there was a choice, or whose payer a supervisor changed)."""
    decision = case.view.decision
    payer: Payer = "seller" if decision.shipping_payer == "seller" else "customer"
    return method_for(decision.return_method, payer)


def inbound_shipment(case: Case, *, create: bool = False) -> Shipment:
    """The parcel coming back from the customer."""
    for shipment in case.view.shipments:
        if shipment.direction == "inbound":
            return shipment
    shipment = Shipment(direction="inbound")
    if create:
        case.view.shipments.append(shipment)
    return shipment
