"""Sending an item to the customer: a replacement or a repaired item, until it is delivered."""

from __future__ import annotations

from collections.abc import Sequence

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import EventType, IntegrationEvent, ReplacementShippedData
    from domain.models import CaseStatus, ExchangeItem, Item
    from workflows.case import Accepts, CaseWorkflow


class OutboundCase(CaseWorkflow):
    """A case that ships something to the customer and waits for its delivery."""

    async def dispatch(
        self, items: Sequence[Item | ExchangeItem], *, step: str
    ) -> IntegrationEvent | None:
        """Ask the warehouse to ship; answers `replacement.shipped`, or None when out of stock."""
        # A delivery reported before this shipment was about the parcel coming back.
        self.discard_events(frozenset({EventType.CARRIER_DELIVERED}))
        await self.ship_to_customer(items, step)
        shipped = await self.wait_escalating(
            Accepts(
                events=frozenset(
                    {EventType.REPLACEMENT_SHIPPED, EventType.REPLACEMENT_OUT_OF_STOCK}
                )
            ),
            "dispatch",
        )
        assert isinstance(shipped, IntegrationEvent)
        if shipped.type == EventType.REPLACEMENT_OUT_OF_STOCK:
            return None
        await self.mark_shipped(shipped)
        return shipped

    async def mark_shipped(self, shipped: IntegrationEvent) -> None:
        """Record the outbound tracking number and tell the customer it is on its way."""
        data = shipped.parsed()
        assert isinstance(data, ReplacementShippedData)
        outbound = [s for s in self.view.shipments if s.direction == "outbound"]
        if outbound:
            outbound[-1].tracking_number = data.tracking_number
        await self.set_status(
            CaseStatus.REPLACEMENT_SHIPPED,
            "replacement_shipped",
            "warehouse",
            f"Shipped with tracking number {data.tracking_number}.",
        )
        await self.notify("replacement_shipped", tracking_number=data.tracking_number)

    async def await_delivery(self) -> None:
        """Wait for the carrier to deliver what was shipped; a long silence escalates."""
        await self.wait_escalating(
            Accepts(events=frozenset({EventType.CARRIER_DELIVERED})), "transit"
        )
        self.add_timeline("delivered", "carrier", "Delivered to the customer.")
