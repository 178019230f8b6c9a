"""Pickups, shipments and interceptions through the carrier connector."""

from __future__ import annotations

from typing import Any

from temporalio import activity

from activities.calls import call
from activities.connectors import Connectors
from activities.inputs import BookPickup, CarrierBooking, RequestInterception, RequestShipment


def _booking(answer: dict[str, Any]) -> CarrierBooking:
    return CarrierBooking(
        id=str(answer.get("id", "")),
        tracking_number=answer.get("tracking_number"),
        label_url=answer.get("label_url"),
    )


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json") if model is not None else None


class CarrierActivities:
    """Calls to the carrier."""

    def __init__(self, connectors: Connectors) -> None:
        self.connectors = connectors

    @activity.defn
    async def book_pickup(self, input: BookPickup) -> CarrierBooking:
        """Book a pickup of the customer's parcel."""
        payload = {
            "case_id": input.case_id,
            "address": _dump(input.address),
            "parcels": [_dump(item) for item in input.parcels],
        }
        return _booking(
            await call(self.connectors.carrier, "/pickups", payload, key=input.idempotency_key)
        )

    @activity.defn
    async def request_shipment(self, input: RequestShipment) -> CarrierBooking:
        """Ship items to the customer."""
        payload = {
            "case_id": input.case_id,
            "address": _dump(input.address),
            "items": [_dump(item) for item in input.items],
        }
        return _booking(
            await call(self.connectors.carrier, "/shipments", payload, key=input.idempotency_key)
        )

    @activity.defn
    async def request_interception(self, input: RequestInterception) -> CarrierBooking:
        """Ask the carrier to stop a parcel on its way and send it back."""
        payload = {"case_id": input.case_id, "tracking_number": input.tracking_number}
        return _booking(
            await call(
                self.connectors.carrier, "/interceptions", payload, key=input.idempotency_key
            )
        )
