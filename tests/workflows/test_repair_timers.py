"""A repair's own deadlines: diagnosis (escalates and tells the customer), repair and dispatch
(escalate); each keeps waiting, listed overdue, until the work is reported (DESIGN 4)."""

from __future__ import annotations

from tests.conftest import Stack
from tests.workflows.helpers import (
    entry,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    ops_mails_arrive,
    overdue,
    reach_deadline,
    reach_overdue,
    shipment_keys,
    signal,
    sleep_past,
    stop,
    webhooks_arrive,
)
from tests.workflows.repairs import complete, diagnose, repair_input, send_in


async def test_late_diagnosis_escalates_and_tells_the_customer(stack: Stack) -> None:
    case = repair_input(await stack.now())
    handle = await stack.start(case)
    await send_in(handle)

    due = await sleep_past(stack.env, handle, "diagnosis")
    view = await reach_overdue(handle, due)
    assert view.status == "inspecting"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "diagnosis"}
    assert overdue(view, "diagnosis")
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "diagnosis overdue" in str(ops["Subject"])
    await webhooks_arrive(stack.peers, case.case_id, "case.escalated")
    # The customer hears of the delay once, with no new promise.
    got = await mails_arrive(stack.mail, case, "diagnosis_delayed")
    assert got.count("diagnosis_delayed") == 1
    assert "taking longer than we planned" in mail_text(stack.mail, case, "diagnosis_delayed")

    # Still waiting: a late diagnosis moves the case on, with no second escalation.
    await diagnose(handle)
    view = await reach_deadline(handle, "repair")
    assert view.status == "repairing" and kinds(view).count("escalated") == 1
    assert "diagnosis" not in {d.name for d in view.deadlines}
    assert mail_names(stack.mail, case).count("diagnosis_delayed") == 1
    await stop(stack.client, handle)


async def test_late_repair_escalates_and_keeps_waiting(stack: Stack) -> None:
    case = repair_input(await stack.now())
    handle = await stack.start(case)
    await send_in(handle)
    await diagnose(handle)
    await reach_deadline(handle, "repair")

    due = await sleep_past(stack.env, handle, "repair")
    view = await reach_overdue(handle, due)
    assert view.status == "repairing"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "repair"}
    assert overdue(view, "repair")
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "repair overdue" in str(ops["Subject"])
    assert "diagnosis_delayed" not in mail_names(stack.mail, case)  # only diagnosis tells

    await complete(handle)
    view = await reach_deadline(handle, "dispatch")
    assert view.status == "repairing" and kinds(view).count("escalated") == 1
    assert len(stack.peers.shipments_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_late_dispatch_of_the_repaired_item_escalates(stack: Stack) -> None:
    case = repair_input(await stack.now())
    handle = await stack.start(case)
    await send_in(handle)
    await diagnose(handle)
    await reach_deadline(handle, "repair")
    await complete(handle)
    await reach_deadline(handle, "dispatch")

    due = await sleep_past(stack.env, handle, "dispatch")
    view = await reach_overdue(handle, due)
    assert view.status == "repairing"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "dispatch"}
    assert overdue(view, "dispatch")
    [ops] = await ops_mails_arrive(stack.mail, case.case_id)
    assert "dispatch overdue" in str(ops["Subject"])

    await signal(handle, "replacement.shipped", tracking_number="TRK-LATE")
    view = await reach_deadline(handle, "transit")
    assert view.status == "replacement_shipped" and kinds(view).count("escalated") == 1
    assert len(stack.peers.shipments_for(case.case_id)) == 1  # no second request
    await stop(stack.client, handle)


async def test_own_item_reported_out_of_stock_escalates_and_is_requested_again(
    stack: Stack,
) -> None:
    case = repair_input(await stack.now())
    handle = await stack.start(case)
    await send_in(handle)
    await diagnose(handle)
    await reach_deadline(handle, "repair")
    await complete(handle)
    await reach_deadline(handle, "dispatch")

    await signal(handle, "replacement.out_of_stock")
    await ops_mails_arrive(stack.mail, case.case_id)
    view = await reach_deadline(handle, "dispatch")
    assert view.status == "repairing" and not view.sla_breached
    assert kinds(view).count("shipment_booked") == 2
    assert shipment_keys(stack.peers, case.case_id) == [
        f"{case.case_id}:return_repaired.{n}" for n in (1, 2)
    ]
    await stop(stack.client, handle)
