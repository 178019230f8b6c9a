"""The SMS nudge: a message awaiting the customer's answer (info needed, a repair quote, an
offer) with no answer within `sms_nudge` (24h) is followed by one short SMS, if the customer
has a phone and the message went by mail (issue 11, "Reaching the customer")."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from domain.models import CaseView
from domain.policy import Policy
from store import service
from store.db import session_scope
from tests.conftest import Stack, until
from tests.support.factory import case_input
from tests.workflows.helpers import (
    act,
    customer,
    deadline_names,
    mail_names,
    mails_arrive,
    reach,
    reach_deadline,
    sleep_past,
    stop,
)
from tests.workflows.test_repair_quote import quoted
from tests.workflows.test_return_review import OPENED_TEE
from workflows.case import CaseInput

PHOTO = ["https://img.example/scratch.jpg"]
PAST_THE_NUDGE = timedelta(hours=24, minutes=5)


def nudges(stack: Stack, case: CaseInput) -> list[str]:
    """The IDs of the SMS nudges the case's delivery log holds (one at most, ever)."""
    with session_scope(stack.engine) as session:
        log = service.deliveries(session, case_id=case.case_id)
    found = [r.id for r in log if r.message == "sms_nudge"]
    assert all(i.endswith(":sms") for i in found), found
    return found


async def nudged(stack: Stack, case: CaseInput) -> str:
    """Wait (in real time) for the case's one nudge; answer its text, checked for the basics."""
    await until(lambda: bool(nudges(stack, case)) and bool(stack.peers.sms_for(case.case_id)))
    assert len(nudges(stack, case)) == 1
    [sms] = stack.peers.sms_for(case.case_id)
    assert sms["to"] == case.request.customer.phone
    body = str(sms["body"])
    # The case, what to do, by when, and the status page to do it on.
    assert case.case_id in body and case.status_url in body and "(Asia/Taipei)" in body
    assert len(body) <= 160, body
    return body


async def offered(
    stack: Stack, policy: Policy | None = None, **customer_fields: Any
) -> tuple[CaseInput, WorkflowHandle[Any, CaseView]]:
    """A refund-only case whose customer was offered 30% back and hasn't answered."""
    case = case_input(
        now=await stack.now(),
        policy=policy,
        type="refund",
        reason="defective",
        evidence=PHOTO,
        customer=customer_fields,
    )
    handle = await stack.start(case, sms_nudge=True)
    await reach(handle, "awaiting_review")
    await act(handle, "propose", resolution="partial_refund", amount="297", message="Sorry")
    await reach_deadline(handle, "offer_response")
    return case, handle


async def test_info_needed_is_nudged_once_then_reminded_by_mail(stack: Stack) -> None:
    case = case_input(now=await stack.now(), items=OPENED_TEE)
    handle = await stack.start(case, sms_nudge=True)
    await reach(handle, "awaiting_review")
    await act(handle, "request_info", question="Could you send a photo of the label?")
    await mails_arrive(stack.mail, case, "info_needed")
    assert stack.peers.sms_for(case.case_id) == []

    await stack.env.sleep(PAST_THE_NUDGE)
    body = await nudged(stack, case)
    assert body.startswith(f"Case {case.case_id}: please answer our question by ")
    # The nudge is ours: the customer's deadlines stay as they were.
    view = await reach(handle, "awaiting_customer")
    assert deadline_names(view) == {"customer_info", "customer_info_reminder"}
    assert nudges(stack, case) == [f"{case.case_id}:sms_nudge.1:sms"]

    # The mail reminder still comes half-way; the nudge never comes twice.
    await sleep_past(stack.env, handle, "customer_info_reminder")
    await mails_arrive(stack.mail, case, "info_reminder")
    assert len(stack.peers.sms_for(case.case_id)) == 1
    assert mail_names(stack.mail, case) == ["case_received", "info_needed", "info_reminder"]
    view = await customer(handle, "reply", message="Here it is")
    assert view.status == "awaiting_review"
    await stop(stack.client, handle)


async def test_a_repair_quote_is_nudged(stack: Stack) -> None:
    case, handle = await quoted(stack, sms_nudge=True)
    await mails_arrive(stack.mail, case, "repair_quote")
    await stack.env.sleep(PAST_THE_NUDGE)
    body = await nudged(stack, case)
    assert "please accept or decline the repair quote by" in body
    view = await reach_deadline(handle, "quote_response")
    assert view.status == "awaiting_customer"
    # The customer still answers the quote itself.
    view = await customer(handle, "accept")
    assert view.status == "repairing"
    assert len(stack.peers.sms_for(case.case_id)) == 1
    await stop(stack.client, handle)


async def test_an_offer_is_nudged_only_when_it_can_and_should_be(stack: Stack) -> None:
    """Five offers side by side; only the one nobody answered, by mail, with a phone, texts."""
    started = await asyncio.gather(
        offered(stack),
        offered(stack),
        offered(stack, phone=None),
        offered(stack, channel="sms"),
        offered(stack, policy=Policy.model_validate({"timers": {"sms_nudge": "0s"}})),
    )
    (slow, _), (answered, answered_handle), (no_phone, _), (by_sms, _), (off, _) = started
    view = await customer(answered_handle, "accept")
    assert view.status != "awaiting_customer"
    # The offer itself went by SMS (after case_received).
    await until(lambda: len(stack.peers.sms_for(by_sms.case_id)) >= 2)
    texted_before = len(stack.peers.sms_for(by_sms.case_id))

    await stack.env.sleep(PAST_THE_NUDGE)
    body = await nudged(stack, slow)
    assert "please accept or decline our refund offer by" in body
    # The others had their chance at the same moment: give their workers a breath more.
    await asyncio.sleep(0.5)
    for quiet in (answered, no_phone, off):
        assert nudges(stack, quiet) == [] and stack.peers.sms_for(quiet.case_id) == []
    assert nudges(stack, by_sms) == []
    assert len(stack.peers.sms_for(by_sms.case_id)) == texted_before
    assert nudges(stack, slow) == [f"{slow.case_id}:sms_nudge.1:sms"]
    for _, handle in started:
        await stop(stack.client, handle)
