"""Store credit and complaint coupons through the storefront's API (DESIGN 7)."""

from __future__ import annotations

from temporalio import activity

from activities.calls import call
from activities.connectors import Connectors
from activities.inputs import IssueStoreCredit, StoreCreditResult

STORE_CREDITS = "/store-credits"


class StorefrontActivities:
    """Calls to the storefront's own API."""

    def __init__(self, connectors: Connectors) -> None:
        self.connectors = connectors

    @activity.defn
    async def issue_store_credit(self, input: IssueStoreCredit) -> StoreCreditResult:
        """Ask the storefront for store credit; the key makes every retry the same credit."""
        answer = await call(
            self.connectors.storefront,
            STORE_CREDITS,
            {
                "case_id": input.case_id,
                "customer_id": input.customer_id,
                "amount": input.amount,
                "currency": input.currency,
                "bonus": input.bonus,
                "reason": input.reason,
            },
            key=input.idempotency_key,
        )
        code = answer.get("code")
        return StoreCreditResult(
            credit_id=str(answer.get("credit_id", "")), code=str(code) if code else None
        )
