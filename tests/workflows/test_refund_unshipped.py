"""Refund only before the order ships: cancel fulfilment, refund within the hour (DESIGN 3.4)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import Stack
from tests.support.factory import case_input
from tests.workflows.helpers import (
    deadline,
    deadline_names,
    entry,
    finish,
    kinds,
    mail_names,
    mails_arrive,
    near,
    ops_mails_arrive,
    overdue,
    reach_deadline,
    reach_overdue,
    requests_for,
    signal,
    sleep_past,
    stop,
    webhook_types,
    webhooks_arrive,
)

UNSHIPPED = {"shipped_at": None, "delivered_at": None}


async def test_unshipped_order_cancels_fulfilment_and_refunds_at_once(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="refund", order=UNSHIPPED)
    decision = case.decision
    assert case.case_id.startswith("F-")
    assert decision.eligible and decision.review == "auto"
    assert decision.refund_estimate.amount == 990
    handle = await stack.start(case)
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert kinds(view) == [
        "opened",
        "approved",
        "refund_pending",
        "refund_requested",
        "refund_succeeded",
        "resolved",
    ]
    assert view.refund is not None and view.refund.status == "succeeded"
    [refund] = stack.peers.refunds_for(case.case_id)
    assert (refund["amount"], refund["reason"]) == ("990.00", "not_shipped")
    assert refund["order_id"] == case.request.order.id
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await webhooks_arrive(stack.peers, case.case_id, "case.refund_pending")
    events = stack.peers.webhook_events(case.case_id)
    [cancel] = [e for e in events if e["type"] == "case.cancel_fulfilment"]
    assert cancel["data"]["order_id"] == case.request.order.id
    types = webhook_types(stack.peers, case.case_id)
    # The storefront hears to stop fulfilment before the money goes back.
    assert types.index("case.cancel_fulfilment") < types.index("case.refund_pending")
    await mails_arrive(stack.mail, case, "refund_sent")
    assert mail_names(stack.mail, case) == ["case_received", "fulfilment_cancelled", "refund_sent"]
    assert stack.peers.interceptions_for(case.case_id) == []
    assert stack.peers.pickups_for(case.case_id) == []

    await sleep_past(stack.env, handle, "follow_up")
    await sleep_past(stack.env, handle, "survey")
    result = await finish(stack.env, handle, "closed")
    assert kinds(result)[-2:] == ["survey_expired", "closed"]
    assert len(stack.peers.refunds_for(case.case_id)) == 1


@pytest.mark.usefixtures("pending_refunds")
async def test_unshipped_refund_still_pending_after_an_hour_escalates(stack: Stack) -> None:
    case = case_input(now=await stack.now(), type="refund", order=UNSHIPPED)
    handle = await stack.start(case)
    view = await reach_deadline(handle, "refund_unshipped")
    assert view.status == "refund_pending"
    assert deadline_names(view) == {"refund_unshipped"}
    requested_at = entry(view, "refund_requested").at
    assert near(deadline(view, "refund_unshipped").due_at, requested_at + timedelta(hours=1))
    assert view.refund is not None and view.refund.status == "pending"

    due = await sleep_past(stack.env, handle, "refund_unshipped")
    view = await reach_overdue(handle, due)
    assert view.status == "refund_pending"
    assert view.sla_breached and view.priority == "high"
    assert entry(view, "escalated").data == {"timer": "refund_unshipped"}
    assert overdue(view, "refund_unshipped")
    assert len(await ops_mails_arrive(stack.mail, case.case_id)) == 1
    assert "refund_sent" not in mail_names(stack.mail, case)

    await signal(handle, "refund.settled")
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert view.refund is not None and view.refund.status == "succeeded"
    assert kinds(view).count("escalated") == 1
    assert len(requests_for(stack.peers, "/refunds", case.case_id)) == 1
    await stop(stack.client, handle)
