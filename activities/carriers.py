"""Pickups, drop-offs, shipments and interceptions through the carrier connector."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from temporalio import activity

from activities import errors
from activities.calls import call
from activities.connectors import Connectors
from activities.inputs import (
    BookDropoff,
    BookPickup,
    CarrierBooking,
    DropoffBooking,
    RequestInterception,
    RequestShipment,
)


def _booking(answer: dict[str, Any]) -> CarrierBooking:
    return CarrierBooking(
        id=str(answer.get("id", "")),
        tracking_number=answer.get("tracking_number"),
        label_url=answer.get("label_url"),
    )


def _dropoff(answer: dict[str, Any], chain: str | None) -> DropoffBooking:
    code = answer.get("code")
    if not isinstance(code, str) or not code.strip():
        # Without a code the customer has nothing to show at the counter: like a refusal, an
        # agent has to look at it (retrying the same key gets the same answer).
        raise errors.rejected("carrier answered /dropoffs without a drop-off code")
    answered_chain = answer.get("chain")
    return DropoffBooking(
        id=str(answer.get("id", "")),
        tracking_number=answer.get("tracking_number"),
        code=code.strip(),
        chain=answered_chain if isinstance(answered_chain, str) and answered_chain else chain or "",
        expires_at=_instant(answer.get("expires_at")),
        label_url=answer.get("label_url"),
    )


def _instant(value: Any) -> datetime | None:
    # A time without an offset can't be placed: the workflow falls back to its own deadline.
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


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
    async def book_dropoff(self, input: BookDropoff) -> DropoffBooking:
        """Book a convenience-store drop-off of the customer's parcel: a code, its expiry."""
        payload: dict[str, Any] = {
            "case_id": input.case_id,
            "parcels": [_dump(item) for item in input.parcels],
        }
        if input.chain:
            payload["chain"] = input.chain
        answer = await call(
            self.connectors.carrier, "/dropoffs", payload, key=input.idempotency_key
        )
        return _dropoff(answer, input.chain)

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
