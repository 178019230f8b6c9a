"""Store credit issued before a case continues as new is never issued again (issue 11)."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import Stack
from tests.workflows.helpers import (
    customer,
    finish,
    reach,
    reach_deadline,
    reach_kind,
    requests_for,
    signal,
)
from tests.workflows.test_continue_as_new import (  # noqa: F401  (its own server per test)
    notes,
    reach_runs,
    stack,
    start,
)
from tests.workflows.test_store_credit import credit_policy, issued


async def test_credit_issued_at_approval_is_carried_across_continue_as_new(
    stack: Stack,  # noqa: F811
) -> None:
    case, handle = await start(
        stack, 150, policy=credit_policy("approval"), resolution="store_credit"
    )
    credit = await issued(stack, case.case_id)
    await reach_kind(handle, "store_credit_issued")
    await notes(handle, [f"note {n}" for n in range(40)])
    found = await reach_runs(stack, handle, 2)
    carried = found[-1].carry
    assert carried is not None and carried.view.store_credit is not None
    assert carried.view.store_credit.code == credit["code"]
    await reach_deadline(handle, "customer_shipment_reminder")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC-SC-CAN")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await reach_deadline(handle, "transit")
    await signal(handle, "warehouse.received")
    await reach_deadline(handle, "inspection")
    await signal(handle, "inspection.completed", result="pass")
    view = await reach(handle, "resolved")
    assert view.store_credit is not None and view.store_credit.status == "issued"
    assert view.store_credit.amount + view.store_credit.bonus == Decimal("1089.00")
    assert view.refund is None
    await customer(handle, "rate", score=5)
    await finish(stack.env, handle, "closed")
    # One call in all: the continued run read the credit from its journal.
    assert len(requests_for(stack.peers, "/store-credits", case.case_id)) == 1
    assert len(stack.peers.store_credits_for(case.case_id)) == 1
