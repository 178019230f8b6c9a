"""Store credit instead of a refund, issued once through the storefront (issue 11).

The customer chooses it at open (`resolution: store_credit`) or takes a refund offer as credit;
the policy's bonus comes on top, and the policy says when it is issued. A complaint's coupon
goes through the same connector.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from domain.policy import Policy
from domain.rules import STORE_CREDIT
from tests.conftest import Stack, until
from tests.support.factory import case_input
from tests.workflows.complaints import accepted
from tests.workflows.helpers import (
    act,
    customer,
    entry,
    in_order,
    kinds,
    mail_names,
    mail_text,
    mails_arrive,
    reach,
    reach_deadline,
    reach_kind,
    requests_for,
    send_back,
    signal,
    stop,
    webhook_types,
)
from tests.workflows.test_refund_offer import kept_with_a_fault

CREDITS = "/store-credits"


def credit_policy(moment: str) -> Policy:
    """The default policy with a 10% bonus on store credit, issued at `moment`."""
    return Policy.model_validate(
        {"returns": {"store_credit_bonus_percent": 10, "store_credit_at": moment}}
    )


def credits(stack: Stack, case_id: str) -> list[dict[str, Any]]:
    """The distinct store credits the storefront issued for a case."""
    return stack.peers.store_credits_for(case_id)


async def issued(stack: Stack, case_id: str) -> dict[str, Any]:
    """Wait (in real time) for the case's one store credit, and answer it."""
    await until(lambda: len(credits(stack, case_id)) == 1)
    [credit] = credits(stack, case_id)
    return credit


@pytest.mark.parametrize(
    ("moment", "when"),
    [
        ("approval", "as soon as the return is approved"),
        ("first_scan", "when the carrier first scans the parcel"),
        ("inspection", "once the item passes inspection"),
    ],
)
async def test_credit_chosen_at_open_is_issued_once_with_its_bonus_at_the_policys_moment(
    stack: Stack, moment: str, when: str
) -> None:
    case = case_input(
        now=await stack.now(), policy=credit_policy(moment), resolution="store_credit"
    )
    terms = case.decision.store_credit
    assert terms is not None and terms.issue_at == moment
    assert (terms.amount.amount, terms.bonus.amount, terms.total) == (
        Decimal("990.00"),
        Decimal("99.00"),
        Decimal("1089.00"),
    )
    rule = next(rule for rule in case.decision.rules if rule.id == STORE_CREDIT)
    assert rule.message == (
        "Store credit instead of a refund: TWD 990.00 plus a 10% bonus of TWD 99.00, "
        f"TWD 1,089.00 in all, issued {when}."
    )
    assert not case.decision.fast_refund  # the credit's moment replaces the fast refund
    handle = await stack.start(case)

    await reach_deadline(handle, "customer_shipment_reminder")
    if moment == "approval":
        await issued(stack, case.case_id)
    else:
        assert credits(stack, case.case_id) == []
    await customer(handle, "provide_tracking", carrier="Black Cat", tracking_number="BC7070")
    await signal(handle, "carrier.picked_up")
    await reach(handle, "in_transit")
    await reach_deadline(handle, "transit")
    if moment == "first_scan":
        await issued(stack, case.case_id)
    elif moment == "inspection":
        assert credits(stack, case.case_id) == []
    await signal(handle, "warehouse.received")
    await reach_deadline(handle, "inspection")
    await signal(handle, "inspection.completed", result="pass")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"

    credit = await issued(stack, case.case_id)
    assert (credit["amount"], credit["bonus"], credit["currency"]) == ("990.00", "99.00", "TWD")
    assert credit["customer_id"] == case.request.customer.id
    assert credit["idempotency_key"] == f"{case.case_id}:store_credit"
    assert [r.status for r in requests_for(stack.peers, CREDITS, case.case_id)] == [200]
    stored = view.store_credit
    assert stored is not None and stored.status == "issued"
    assert (stored.amount, stored.bonus, stored.kind) == (
        Decimal("990.00"),
        Decimal("99.00"),
        "store_credit",
    )
    assert (stored.credit_id, stored.code) == (credit["credit_id"], credit["code"])
    # No refund besides the credit.
    assert view.refund is None and requests_for(stack.peers, "/refunds", case.case_id) == []
    assert kinds(view).count("store_credit_issued") == 1
    await mails_arrive(stack.mail, case, "store_credit_issued")
    text = mail_text(stack.mail, case, "store_credit_issued")
    assert "TWD 1,089.00" in text and "TWD 99.00" in text and credit["code"] in text
    assert "refund_sent" not in mail_names(stack.mail, case)
    if moment == "inspection":
        assert in_order(view, "inspection_passed", "store_credit_issued", "resolved")
    else:
        assert in_order(view, "store_credit_issued", "inspection_passed")
    await stop(stack.client, handle)


async def test_a_refused_credit_escalates_and_an_agents_retry_issues_it_once(
    stack: Stack,
) -> None:
    case = case_input(
        now=await stack.now(), policy=credit_policy("approval"), resolution="store_credit"
    )
    stack.peers.fail_next(CREDITS, 422, detail="customer account closed", case_id=case.case_id)
    handle = await stack.start(case)
    view = await reach_kind(handle, "escalated")
    assert view.store_credit is not None and view.store_credit.status == "failed"
    escalated = entry(view, "escalated")
    assert escalated.actor == "storefront" and "customer account closed" in escalated.message
    assert "retry" in view.agent_actions
    assert credits(stack, case.case_id) == []
    # The case lives on: the customer can still send the item back meanwhile.
    assert view.status == "awaiting_shipment"

    await act(handle, "retry", actor="agent-mei", notes="Account reopened.")
    credit = await issued(stack, case.case_id)
    view = await reach_kind(handle, "store_credit_issued")
    assert view.store_credit is not None and view.store_credit.status == "issued"
    assert view.store_credit.code == credit["code"]
    calls = requests_for(stack.peers, CREDITS, case.case_id)
    assert [c.status for c in calls] == [422, 200]
    assert {c.idempotency_key for c in calls} == {f"{case.case_id}:store_credit"}
    await mails_arrive(stack.mail, case, "store_credit_issued")
    await stop(stack.client, handle)


async def test_a_refund_offer_taken_as_store_credit_gets_the_bonus(stack: Stack) -> None:
    case, handle = await kept_with_a_fault(stack)
    assert case.policy.returns.store_credit_bonus_percent == 0  # the default: no bonus
    await act(handle, "propose", actor="agent-bo", resolution="partial_refund", amount="297")
    await reach_deadline(handle, "offer_response")
    await mails_arrive(stack.mail, case, "refund_offer")
    # The offer names the credit the customer may take instead (no bonus by default).
    assert "store credit: TWD 297.00" in mail_text(stack.mail, case, "refund_offer")
    await customer(handle, "accept", resolution="store_credit")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    credit = await issued(stack, case.case_id)
    assert (credit["amount"], credit["bonus"], credit["reason"]) == (
        "297.00",
        "0.00",
        "offer_accepted",
    )
    assert view.decision.store_credit is not None
    assert view.decision.store_credit.issue_at == "acceptance"
    assert view.decision.fired(STORE_CREDIT)
    assert view.refund is None and requests_for(stack.peers, "/refunds", case.case_id) == []
    assert in_order(view, "offer_accepted", "store_credit_issued", "resolved")
    await mails_arrive(stack.mail, case, "store_credit_issued")
    await stop(stack.client, handle)


async def test_a_complaints_coupon_is_issued_once_through_the_storefront(stack: Stack) -> None:
    case, handle = await accepted(stack, "coupon", "150")
    view = await reach_deadline(handle, "complaint_follow_up")
    assert in_order(view, "offer_accepted", "store_credit_issued", "coupon_issued", "resolved")
    credit = await issued(stack, case.case_id)
    assert (credit["amount"], credit["bonus"], credit["reason"]) == (
        "150.00",
        "0.00",
        "complaint_coupon",
    )
    assert credit["idempotency_key"] == f"{case.case_id}:coupon"
    assert view.store_credit is not None and view.store_credit.kind == "coupon"
    assert view.store_credit.code == credit["code"]
    # The storefront's webhook still announces it.
    await until(lambda: "case.coupon_issued" in webhook_types(stack.peers, case.case_id))
    await mails_arrive(stack.mail, case, "store_credit_issued", "resolution_done")
    text = mail_text(stack.mail, case, "store_credit_issued")
    assert "coupon" in text and "TWD 150.00" in text and credit["code"] in text
    assert len(requests_for(stack.peers, CREDITS, case.case_id)) == 1
    await stop(stack.client, handle)


async def test_an_exchanges_cheaper_difference_comes_back_as_credit_once_it_ships(
    stack: Stack,
) -> None:
    cheaper = [{"sku": "TEE-S-GRY", "quantity": 1, "unit_price": "690.00"}]
    case = case_input(
        now=await stack.now(),
        policy=credit_policy("approval"),  # an exchange's credit waits for the replacement
        type="exchange",
        exchange_for=cheaper,
        resolution="store_credit",
    )
    terms = case.decision.store_credit
    assert terms is not None and terms.issue_at == "dispatch"
    assert (terms.amount.amount, terms.bonus.amount) == (Decimal("300.00"), Decimal("30.00"))
    handle = await stack.start(case)
    await send_back(handle)
    await signal(handle, "inspection.completed", result="pass")
    await reach_deadline(handle, "dispatch")
    assert credits(stack, case.case_id) == []
    await signal(handle, "replacement.shipped", tracking_number="TRK-OUT-SC")
    credit = await issued(stack, case.case_id)
    assert (credit["amount"], credit["bonus"], credit["reason"]) == (
        "300.00",
        "30.00",
        "exchange_difference",
    )
    view = await reach_kind(handle, "store_credit_issued")
    assert view.refund is None and requests_for(stack.peers, "/refunds", case.case_id) == []
    assert in_order(view, "replacement_shipped", "store_credit_issued")
    await mails_arrive(stack.mail, case, "store_credit_issued")
    assert "TWD 330.00" in mail_text(stack.mail, case, "store_credit_issued")
    await stop(stack.client, handle)
