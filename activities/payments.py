"""Refunds through the payment connector."""

from __future__ import annotations

from temporalio import activity

from activities.calls import call
from activities.connectors import Connectors
from activities.inputs import RefundResult, RequestRefund


class PaymentActivities:
    """Calls to the payment provider."""

    def __init__(self, connectors: Connectors) -> None:
        self.connectors = connectors

    @activity.defn
    async def request_refund(self, input: RequestRefund) -> RefundResult:
        """Ask the provider for a refund; the key makes every retry the same refund."""
        answer = await call(
            self.connectors.payment,
            "/refunds",
            {
                "case_id": input.case_id,
                "order_id": input.order_id,
                "amount": input.amount,
                "currency": input.currency,
                "payment_method": input.payment_method,
                "reason": input.reason,
            },
            key=input.idempotency_key,
        )
        return RefundResult(
            refund_id=str(answer.get("refund_id", "")), status=str(answer.get("status", "pending"))
        )
