"""A declined repair quote costs the policy's diagnosis fee, charged through the storefront,
unless an agent waived it on the diagnosis (issue 11)."""

from __future__ import annotations

from decimal import Decimal

from domain.policy import Policy
from tests.conftest import Stack
from tests.workflows.helpers import (
    act,
    customer,
    entry,
    kinds,
    mail_text,
    mails_arrive,
    reach_deadline,
    reach_kind,
    sleep_past,
    stop,
    webhooks_arrive,
)
from tests.workflows.repairs import PARTS, diagnose, repair_input, send_in

FEE_POLICY = Policy.model_validate({"repairs": {"diagnosis_fee": "300"}})


def charges(stack: Stack, case_id: str) -> list[dict[str, str]]:
    """The `case.charge_customer` webhooks the storefront got for a case."""
    events = stack.peers.webhook_events(case_id)
    return [
        {key: e["data"][key] for key in ("amount", "currency", "reason")}
        for e in events
        if e["type"] == "case.charge_customer"
    ]


async def test_a_declined_quote_charges_the_diagnosis_fee(stack: Stack) -> None:
    case = repair_input(await stack.now(), in_warranty=False, policy=FEE_POLICY)
    handle = await stack.start(case)
    await send_in(handle)
    await diagnose(handle, cost="1500", parts=PARTS, notes="Burnt-out driver after a drop.")
    view = await reach_deadline(handle, "quote_response")
    assert view.repair is not None and view.repair.diagnosis is not None
    assert view.repair.diagnosis.diagnosis_fee == Decimal("300.00")
    await mails_arrive(stack.mail, case, "repair_quote")
    # The customer knows what declining costs before choosing.
    assert "a diagnosis fee of TWD 300.00 applies" in mail_text(stack.mail, case, "repair_quote")

    view = await customer(handle, "decline")
    assert view.status == "inspecting"
    view = await reach_kind(handle, "diagnosis_fee_charged")
    charged = entry(view, "diagnosis_fee_charged")
    assert charged.data == {"amount": "300.00", "currency": "TWD"}
    assert kinds(view).index("quote_declined") < kinds(view).index("diagnosis_fee_charged")
    await webhooks_arrive(stack.peers, case.case_id, "case.charge_customer")
    assert charges(stack, case.case_id) == [
        {"amount": "300.00", "currency": "TWD", "reason": "diagnosis_fee"}
    ]
    await mails_arrive(stack.mail, case, "repair_declined")
    declined = mail_text(stack.mail, case, "repair_declined")
    assert "A diagnosis fee of TWD 300.00 is charged" in declined
    assert stack.peers.refunds_for(case.case_id) == []
    await stop(stack.client, handle)


async def test_a_waived_diagnosis_fee_charges_nothing(stack: Stack) -> None:
    # The agent waives the fee on the diagnosis; the quote and the decline both say so.
    case = repair_input(
        await stack.now(), in_warranty=False, policy=FEE_POLICY, customer={"locale": "zh-TW"}
    )
    handle = await stack.start(case)
    await send_in(handle)
    await act(
        handle,
        "record_diagnosis",
        actor="agent-lin",
        repairable=True,
        cost="1200",
        parts=PARTS[:1],
        notes="Loose cable.",
        waive_diagnosis_fee=True,
    )
    view = await reach_deadline(handle, "quote_response")
    assert view.repair is not None and view.repair.diagnosis is not None
    diagnosis = view.repair.diagnosis
    assert (diagnosis.diagnosis_fee, diagnosis.diagnosis_fee_waived) == (Decimal(0), True)
    await mails_arrive(stack.mail, case, "repair_quote")
    assert "檢測費已為您免除" in mail_text(stack.mail, case, "repair_quote")

    await customer(handle, "decline")
    view = await reach_kind(handle, "diagnosis_fee_waived")
    assert "diagnosis_fee_charged" not in kinds(view)
    await mails_arrive(stack.mail, case, "repair_declined")
    declined = mail_text(stack.mail, case, "repair_declined")
    assert "檢測費已為您免除" in declined and "TWD" not in declined
    await reach_deadline(handle, "dispatch")
    assert charges(stack, case.case_id) == []
    await stop(stack.client, handle)


async def test_a_lapsed_quote_charges_the_fee_capped_at_the_quote(stack: Stack) -> None:
    case = repair_input(await stack.now(), in_warranty=False, policy=FEE_POLICY)
    handle = await stack.start(case)
    await send_in(handle)
    # A 200 repair: the 300 fee is capped at what the repair itself would have cost.
    await diagnose(handle, cost="200")
    await sleep_past(stack.env, handle, "quote_response")
    view = await reach_kind(handle, "diagnosis_fee_charged")
    assert view.repair is not None and view.repair.quote_status == "expired"
    await webhooks_arrive(stack.peers, case.case_id, "case.charge_customer")
    assert charges(stack, case.case_id) == [
        {"amount": "200.00", "currency": "TWD", "reason": "diagnosis_fee"}
    ]
    await mails_arrive(stack.mail, case, "repair_declined")
    declined = mail_text(stack.mail, case, "repair_declined")
    assert "We didn't hear from you" in declined and "fee of TWD 200.00" in declined
    await stop(stack.client, handle)
