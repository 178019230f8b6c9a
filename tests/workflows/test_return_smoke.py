"""The return's main path, end to end on the time-skipping server."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import customer, finish, kinds, reach, signal


async def test_customer_ships_and_gets_a_fast_refund(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await reach(handle, "awaiting_shipment")
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC123456789")
    await signal(handle, "carrier.picked_up")
    view = await reach(handle, "in_transit")
    await signal(handle, "warehouse.received")
    await reach(handle, "inspecting")
    await signal(handle, "inspection.completed", result="pass")
    view = await reach(handle, "resolved")
    assert view.refund is not None and view.refund.status == "succeeded"
    await stack.env.sleep(timedelta(days=3, minutes=1))
    await customer(handle, "rate", score=5, comment="quick")
    result = await finish(stack.env, handle, "closed")
    assert result.rating == 5
    assert "fast_refund" in kinds(result)
    assert len(stack.peers.refunds_for(case.case_id)) == 1
