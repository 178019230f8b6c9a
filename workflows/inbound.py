"""Taking an item back: pickup or customer shipment, transit, receipt and inspection."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import (
        CarrierExceptionData,
        EventType,
        InspectionData,
        IntegrationEvent,
        ProvideTracking,
        RecordInspection,
    )
    from domain.models import CaseStatus, Deadline
    from workflows.case import Accepts, CaseWorkflow

FIRST_SCANS = frozenset(
    {EventType.CARRIER_PICKED_UP, EventType.CARRIER_IN_TRANSIT, EventType.WAREHOUSE_RECEIVED}
)


@dataclass
class Received:
    """How the item came back: inspected (or just received, uninspected), or lost on the way."""

    lost: bool = False
    # The customer never sent it (only when the caller chose not to expire the case).
    never_shipped: bool = False
    inspection: InspectionData | None = None


class InboundCase(CaseWorkflow):
    """A case that takes the customer's item back before deciding the outcome."""

    async def receive_item(
        self,
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
        # Only a customer who ships the parcel themselves reports a tracking number.
        seller_ships = self.view.decision.shipping_payer == "seller"
        tracking = frozenset() if seller_ships else frozenset({"provide_tracking"})
        # The customer's deadline is listed with the status; a pickup's starts once it is booked.
        due_at = None if seller_ships else self.due("customer_shipment")
        if due_at:
            self.set_deadline("customer_shipment", due_at)
        await self.set_status(
            CaseStatus.AWAITING_SHIPMENT,
            "awaiting_shipment",
            "system",
            expect=Accepts(customer=tracking),
        )
        scan = await self._await_handover(due_at, expires=expires)
        if scan is None:
            return Received(never_shipped=True)
        if scan.type != EventType.WAREHOUSE_RECEIVED:
            # The transit deadline runs from the pickup: a damage report on the way doesn't move
            # it. It is listed with the status, before anything slower happens.
            transit_due = self.due("transit")
            self.set_deadline("transit", transit_due)
            await self.set_status(
                CaseStatus.IN_TRANSIT, "in_transit", "carrier", "The carrier has the parcel."
            )
            await self.notify("picked_up")
            if on_first_scan is not None:
                await on_first_scan()
            arrived = await self.wait_escalating(
                Accepts(
                    events=frozenset({EventType.WAREHOUSE_RECEIVED, EventType.CARRIER_EXCEPTION})
                ),
                "transit",
                transit_due,
            )
            assert isinstance(arrived, IntegrationEvent)
            if arrived.type == EventType.CARRIER_EXCEPTION:
                data = arrived.parsed()
                assert isinstance(data, CarrierExceptionData)
                if data.kind == "lost":
                    await self.escalate(
                        reason="The carrier lost the parcel after pickup; file a carrier claim.",
                        actor="carrier",
                    )
                    return Received(lost=True)
                self.add_timeline(
                    "parcel_damaged", "carrier", "The carrier reported damage in transit."
                )
                received = Accepts(events=frozenset({EventType.WAREHOUSE_RECEIVED}))
                await self.wait_escalating(received, "transit", transit_due)
        elif on_first_scan is not None:
            await on_first_scan()
        return Received(inspection=await self._inspect() if inspect else None)

    async def _await_handover(
        self, due_at: datetime | None, *, expires: bool
    ) -> IntegrationEvent | None:
        """Get the parcel to the carrier: a seller-booked pickup, or the customer's own shipment."""
        scans = Accepts(events=FIRST_SCANS)
        if self.view.decision.shipping_payer == "seller":
            booking = await self.book_pickup(attempt=1)
            due_at = self.due("carrier_pickup")
            self.set_deadline("carrier_pickup", due_at)
            await self.notify(
                "case_approved",
                deadline=Deadline(name="carrier_pickup", due_at=due_at),
                pickup=True,
                tracking_number=booking.tracking_number,
                return_address=self.policy.returns.return_address,
            )
            scan = await self.wait_until(scans, "carrier_pickup", due_at)
            if scan is None:
                booking = await self.book_pickup(attempt=2)
                await self.notify("pickup_rebooked", tracking_number=booking.tracking_number)
                scan = await self.wait_escalating(scans, "carrier_pickup")
            assert isinstance(scan, IntegrationEvent)
            return scan
        await self.notify(
            "case_approved",
            deadline=Deadline(name="customer_shipment", due_at=due_at),
            pickup=False,
            tracking_number=None,
            return_address=self.policy.returns.return_address,
        )
        shipped = await self.wait_reminding(
            Accepts(customer=frozenset({"provide_tracking"}), events=FIRST_SCANS),
            "customer_shipment",
            "shipment_reminder",
            due_at=due_at,
            return_address=self.policy.returns.return_address,
        )
        if shipped is None:
            if expires:
                await self.expire("customer_shipment")
            return None
        if isinstance(shipped, IntegrationEvent):
            return shipped
        assert isinstance(shipped, ProvideTracking)
        inbound = self.inbound_shipment(create=True)
        inbound.carrier, inbound.tracking_number = shipped.carrier, shipped.tracking_number
        self.add_timeline(
            "tracking_provided",
            "customer",
            f"Shipped with {shipped.carrier}, {shipped.tracking_number}.",
        )
        # The customer has done their part; a parcel with no scan for this long is likely lost.
        scan = await self.wait_escalating(scans, "transit")
        assert isinstance(scan, IntegrationEvent)
        return scan

    async def _inspect(self) -> InspectionData:
        results = Accepts(
            agent=frozenset({"record_inspection"}),
            events=frozenset({EventType.INSPECTION_COMPLETED}),
        )
        await self.set_status(
            CaseStatus.INSPECTING,
            "received",
            "warehouse",
            "The warehouse has the item.",
            expect=results,
        )
        await self.notify("item_received")
        found = await self.wait_escalating(results, "inspection")
        if isinstance(found, IntegrationEvent):
            data = found.parsed()
            assert isinstance(data, InspectionData)
            return data
        assert isinstance(found, RecordInspection)
        data = InspectionData(
            result=found.result,
            grade=found.grade,
            refund_amount=found.refund_amount,
            keep_item=found.keep_item,
            notes=found.notes,
        )
        # An event leaves its own timeline entry when it arrives; an agent's result needs one
        # too, or the timeline wouldn't say who decided it.
        actor = found.actor or "agent"
        self.add_timeline(
            "inspection_recorded", actor, "Inspection recorded.", data.model_dump(mode="json")
        )
        return data

    def start_refund(self, amount: Decimal, reason: str) -> asyncio.Task[None]:
        """Refund alongside the steps that follow (fast refund)."""
        return asyncio.create_task(self.refund(amount, reason=reason))

    async def refund_now(self, amount: Decimal, reason: str) -> None:
        """Refund and wait in `refund_pending` until it settles."""
        await self.set_status(CaseStatus.REFUND_PENDING, "refund_pending", "system")
        await self.refund(amount, reason=reason)
