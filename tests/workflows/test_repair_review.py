"""A repair's application stage: review as for a return, and the ways it ends before the item
arrives (DESIGN 3.5 steps 1-2)."""

from __future__ import annotations

from tests.conftest import Stack
from tests.workflows.helpers import (
    act,
    customer,
    deadline_names,
    entry,
    finish,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    reach,
    reach_deadline,
    reach_where,
    sleep_past,
    stop,
)
from tests.workflows.repairs import repair_input


async def test_repair_without_evidence_waits_for_an_agent(stack: Stack) -> None:
    case = repair_input(await stack.now(), evidence=[])
    assert case.decision.review == "manual"
    handle = await stack.start(case)
    view = await reach_deadline(handle, "review")
    assert view.status == "awaiting_review"
    await mails_arrive(stack.mail, case, "case_received")
    received = mail_text(stack.mail, case, "case_received")
    assert "request to repair these items" in received and "free of charge" in received

    view = await act(handle, "approve", notes="Photo not needed for this model.")
    view = await reach_deadline(handle, "carrier_pickup")
    assert view.status == "awaiting_shipment"
    assert entry(view, "approved").actor == "agent"
    assert len(stack.peers.pickups_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_rejected_repair_ends_without_a_pickup(stack: Stack) -> None:
    case = repair_input(await stack.now(), evidence=[])
    handle = await stack.start(case)
    await reach_deadline(handle, "review")
    await act(handle, "reject", reason="Water damage is not covered.")
    result = await finish(stack.env, handle, "rejected")
    assert kinds(result)[-2:] == ["awaiting_review", "rejected"]
    assert stack.peers.pickups_for(case.case_id) == []
    assert "Water damage is not covered." in mail_text(stack.mail, case, "case_rejected")
    assert "repair request" in mail_text(stack.mail, case, "case_rejected")


async def test_customer_cancels_before_the_item_ships(stack: Stack) -> None:
    case = repair_input(await stack.now(), in_warranty=False)
    handle = await stack.start(case)
    view = await reach_deadline(handle, "customer_shipment")
    assert view.status == "awaiting_shipment" and view.repair is not None
    await customer(handle, "cancel")
    result = await finish(stack.env, handle, "cancelled")
    assert result.deadlines == []
    await mails_arrive(stack.mail, case, "case_cancelled")
    assert "We won't collect or repair the item." in mail_text(stack.mail, case, "case_cancelled")


async def test_customer_who_never_ships_expires_the_repair(stack: Stack) -> None:
    case = repair_input(await stack.now(), in_warranty=False)
    handle = await stack.start(case)
    await reach(handle, "awaiting_shipment")
    # The wait lists its deadline, then its reminder's: a look between the two saw the first
    # alone, so the test waits for the wait's settled list.
    waiting = {"customer_shipment", "customer_shipment_reminder"}
    await reach_where(
        handle,
        lambda view: deadline_names(view) == waiting,
        lambda view: f"case {view.id} waits under {deadline_names(view)}, not {waiting}",
    )
    await mails_arrive(stack.mail, case, "case_approved")
    approved = mail_text(stack.mail, case, "case_approved")
    assert "Shipping is at your cost" in approved and "send you a quote" in approved
    await sleep_past(stack.env, handle, "customer_shipment_reminder")
    await mails_arrive(stack.mail, case, "shipment_reminder")
    await sleep_past(stack.env, handle, "customer_shipment")
    result = await finish(stack.env, handle, "expired")
    assert kinds(result)[-2:] == ["awaiting_shipment", "expired"]
    assert mail_names(stack.mail, case)[-2:] == ["shipment_reminder", "case_expired"]
    assert "open a new repair request" in mail_text(stack.mail, case, "case_expired")
