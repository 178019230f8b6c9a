"""The rest of the connector fault matrix at the case level (issue 9, point 4), with the real
local HTTP peers: a partner that answers 5xx and recovers, or hangs past the connector's
timeout, costs the case nothing but time. The step is retried with the same Idempotency-Key,
the partner does the work once, and nobody is escalated. A partner that stays down past the
retry cap escalates, and an agent's `retry` finishes the step, still once.

A worker of its own, with a half-second connector timeout, so a hang costs half a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.policy import CONNECTOR_ATTEMPTS
from domain.models import CaseView
from domain.policy import Policy
from tests.conftest import Stack, running_stack, stack_settings, until
from tests.support.factory import case_input
from tests.support.http_peers import Peers
from tests.support.mail import MailSink
from tests.workflows.helpers import (
    act,
    ops_mails,
    reach,
    reach_deadline,
    requests_for,
    send_back,
    signal,
    stop,
)

PHOTO = ["https://img.example/cracked.jpg"]
CHEAP_MUG = [{"sku": "MUG-1", "name": "Mug", "category": "kitchen", "unit_price": "150.00"}]
ON_ITS_WAY = {"delivered_at": None, "tracking_number": "TRK-RECOVER"}
# Longer than the connector's timeout below: the client gives up, the peer still does the work.
HANG_SECONDS = 1.5


@pytest.fixture(scope="module")
async def quick(
    time_skipping: WorkflowEnvironment,
    http_peers: Peers,
    mail: MailSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    """A worker whose connectors give up on a silent partner after half a second."""
    settings = stack_settings(
        tmp_path_factory.mktemp("recovery"),
        http_peers,
        mail,
        task_queue="aftersales-recovery",
        connector_timeout_seconds=0.5,
    )
    async with running_stack(time_skipping, settings, http_peers, mail) as stack:
        yield stack


async def past_backoff(stack: Stack, path: str, case_id: str, failures: int) -> None:
    """Move the server's clock past the retry backoff after each failed call (2 s, 4 s, ...):
    the time-skipping server doesn't skip it on its own while an activity is pending."""
    for failed in range(1, failures + 1):
        await until(lambda n=failed: len(requests_for(stack.peers, path, case_id)) >= n)
        await stack.env.sleep(timedelta(seconds=2**failed + 1))


def statuses(stack: Stack, path: str, case_id: str) -> list[int]:
    """The answers the peer gave to a case's calls on a path, in order."""
    return [r.status for r in requests_for(stack.peers, path, case_id)]


def keys(stack: Stack, path: str, case_id: str) -> set[str | None]:
    """The Idempotency-Keys a case's calls on a path carried."""
    return {r.idempotency_key for r in requests_for(stack.peers, path, case_id)}


async def not_escalated(stack: Stack, handle: WorkflowHandle[Any, CaseView]) -> CaseView:
    """The case as it is, checked never to have been escalated (priority, ops mail)."""
    view = await handle.query("state", result_type=CaseView)
    assert view.priority == "normal" and not view.sla_breached
    assert ops_mails(stack.mail, view.id) == []
    return view


def returnless(now: Any) -> Any:
    """A returnless return: refunded at once, no parcel."""
    return case_input(now=now, reason="defective", evidence=PHOTO, items=CHEAP_MUG)


@pytest.mark.parametrize("fault", ["5xx", "hang"])
async def test_refund_partner_recovers_and_pays_once(quick: Stack, fault: str) -> None:
    case = returnless(await quick.now())
    if fault == "5xx":
        quick.peers.fail_next("/refunds", 503, times=2)
    else:
        quick.peers.stall_next("/refunds", HANG_SECONDS)
    handle = await quick.start(case)
    await past_backoff(quick, "/refunds", case.case_id, 2 if fault == "5xx" else 1)
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert keys(quick, "/refunds", case.case_id) == {f"{case.case_id}:refund"}
    assert len(quick.peers.refunds_for(case.case_id)) == 1
    if fault == "5xx":
        assert statuses(quick, "/refunds", case.case_id) == [503, 503, 200]
    else:
        assert len(requests_for(quick.peers, "/refunds", case.case_id)) >= 2
    await not_escalated(quick, handle)
    await stop(quick.client, handle)


@pytest.mark.parametrize("fault", ["5xx", "hang"])
async def test_pickup_partner_recovers_and_books_once(quick: Stack, fault: str) -> None:
    case = case_input(now=await quick.now(), reason="defective", evidence=PHOTO)
    if fault == "5xx":
        quick.peers.fail_next("/pickups", 502, times=2)
    else:
        quick.peers.stall_next("/pickups", HANG_SECONDS)
    handle = await quick.start(case)
    await past_backoff(quick, "/pickups", case.case_id, 2 if fault == "5xx" else 1)
    view = await reach_deadline(handle, "carrier_pickup")
    assert view.shipments and view.shipments[0].tracking_number
    assert keys(quick, "/pickups", case.case_id) == {f"{case.case_id}:pickup.1"}
    assert len(quick.peers.pickups_for(case.case_id)) == 1
    await not_escalated(quick, handle)
    await stop(quick.client, handle)


@pytest.mark.parametrize("fault", ["5xx", "hang"])
async def test_shipment_partner_recovers_and_ships_once(quick: Stack, fault: str) -> None:
    # No fast refund: a failed inspection after one would escalate (a loss to review).
    no_fast_refund = Policy.model_validate({"returns": {"fast_refund": False}})
    case = case_input(now=await quick.now(), policy=no_fast_refund)
    handle = await quick.start(case)
    await send_back(handle)
    if fault == "5xx":
        quick.peers.fail_next("/shipments", 500, times=2)
    else:
        quick.peers.stall_next("/shipments", HANG_SECONDS)
    await signal(handle, "inspection.completed", result="fail", notes="Worn")
    await past_backoff(quick, "/shipments", case.case_id, 2 if fault == "5xx" else 1)
    view = await reach_deadline(handle, "follow_up")
    assert view.status == "resolved"
    assert keys(quick, "/shipments", case.case_id) == {f"{case.case_id}:ship_back"}
    assert len(quick.peers.shipments_for(case.case_id)) == 1
    await not_escalated(quick, handle)
    await stop(quick.client, handle)


@pytest.mark.parametrize("fault", ["5xx", "hang"])
async def test_interception_partner_recovers_and_intercepts_once(quick: Stack, fault: str) -> None:
    order = {**ON_ITS_WAY, "tracking_number": f"TRK-RECOVER-{fault}"}
    case = case_input(now=await quick.now(), type="refund", order=order)
    if fault == "5xx":
        quick.peers.fail_next("/interceptions", 503, times=2)
    else:
        quick.peers.stall_next("/interceptions", HANG_SECONDS)
    handle = await quick.start(case)
    await past_backoff(quick, "/interceptions", case.case_id, 2 if fault == "5xx" else 1)
    await reach_deadline(handle, "interception")
    assert keys(quick, "/interceptions", case.case_id) == {f"{case.case_id}:interception"}
    assert len(quick.peers.interceptions_for(case.case_id)) == 1
    await not_escalated(quick, handle)
    await stop(quick.client, handle)


@pytest.mark.parametrize("fault", ["5xx", "hang"])
async def test_sms_gateway_recovers_and_texts_once(quick: Stack, fault: str) -> None:
    case = case_input(now=await quick.now(), customer={"channel": "sms"})
    if fault == "5xx":
        quick.peers.fail_next("/sms", 503, times=2)
    else:
        quick.peers.stall_next("/sms", HANG_SECONDS)
    handle = await quick.start(case)
    await past_backoff(quick, "/sms", case.case_id, 2 if fault == "5xx" else 1)
    await reach(handle, "awaiting_shipment")
    # The first text (case received) went through in the end, and only once.
    await until(lambda: len(quick.peers.sms_for(case.case_id)) >= 2)
    bodies = [text["body"] for text in quick.peers.sms_for(case.case_id)]
    assert len(bodies) == len(set(bodies))
    await not_escalated(quick, handle)
    await stop(quick.client, handle)


@pytest.mark.parametrize("fault", ["5xx", "hang"])
async def test_storefront_webhook_recovers_and_is_told_once(quick: Stack, fault: str) -> None:
    case = case_input(now=await quick.now())
    if fault == "5xx":
        quick.peers.fail_next("/webhook", 503, times=2)
    else:
        quick.peers.stall_next("/webhook", HANG_SECONDS)
    handle = await quick.start(case)
    await reach(handle, "awaiting_shipment")
    await until(
        lambda: (
            "case.awaiting_shipment"
            in [e["type"] for e in quick.peers.webhook_events(case.case_id)]
        )
    )
    ids = [e["id"] for e in quick.peers.webhook_events(case.case_id)]
    assert len(ids) == len(set(ids)), "each change is told once"
    await not_escalated(quick, handle)
    await stop(quick.client, handle)


async def test_a_partner_down_past_the_retry_cap_escalates_then_retry_pays_once(
    quick: Stack,
) -> None:
    case = returnless(await quick.now())
    quick.peers.fail_next("/refunds", 503, times=CONNECTOR_ATTEMPTS)
    handle = await quick.start(case)
    await reach(handle, "refund_pending")
    # The retries back off to 5 minutes between attempts: about 45 minutes on the server's
    # clock, skipped here until the attempts are used up.
    for _ in range(12):
        if ops_mails(quick.mail, case.case_id):
            break
        await quick.env.sleep(timedelta(minutes=10))
        await asyncio.sleep(0.2)
    await until(lambda: len(ops_mails(quick.mail, case.case_id)) >= 1)
    view = await handle.query("state", result_type=CaseView)
    assert view.refund is not None and view.refund.status == "failed"
    assert view.priority != "normal"
    assert statuses(quick, "/refunds", case.case_id) == [503] * CONNECTOR_ATTEMPTS
    # The partner is back: the agent runs the step again, under the same key.
    await act(handle, "retry")
    view = await reach_deadline(handle, "follow_up")
    assert view.refund is not None and view.refund.status == "succeeded"
    assert keys(quick, "/refunds", case.case_id) == {f"{case.case_id}:refund"}
    assert len(quick.peers.refunds_for(case.case_id)) == 1
    await stop(quick.client, handle)
