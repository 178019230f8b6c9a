"""Slim contracts: a case's history grows linearly with what happens to it, and a returnless
return takes few activities (issue 9, point 2).

On the real worker and activities (the `stack`): every projection carries only what changed,
so an agent's note costs about the same whether it is the 10th or the 200th.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from domain.models import CaseView
from store import service
from store.db import session_scope
from tests.conftest import Stack
from tests.support.factory import case_input, request_body
from tests.workflows.helpers import act, finish, reach_deadline, stop

Handle = WorkflowHandle[Any, CaseView]


async def history_bytes(handle: Handle) -> int:
    """The serialized size of the case's history so far."""
    history = await handle.fetch_history()
    return sum(event.ByteSize() for event in history.events)


@pytest.mark.long
async def test_history_grows_linearly_with_agent_notes(stack: Stack) -> None:
    case = case_input(now=await stack.now())
    handle = await stack.start(case)
    await reach_deadline(handle, "customer_shipment_reminder")
    start = await history_bytes(handle)
    sizes = {}
    for n in range(1, 201):
        await act(handle, "note", message=f"Called the customer, attempt {n}.", actor="agent-li")
        if n in (100, 200):
            sizes[n] = await history_bytes(handle) - start
    # Linear: the second hundred notes cost what the first did (a whole-case input made the
    # second hundred cost about three times the first).
    assert sizes[200] < 2.2 * sizes[100], sizes
    # A note's update (its body, and a small `Acted` as its answer: the API reads the case
    # from its row), one projection (the note and `updated_at`) and their workflow tasks:
    # about 1.3 KB, whatever came before (3.4 KB when the answer was the whole case).
    per_note = sizes[200] / 200
    assert per_note < 2_000, f"{per_note:.0f} bytes of history per note"
    # The DB still has every note, in order, after the stored view's 200 projections.
    with session_scope(stack.engine) as session:
        notes = [e for e in service.timeline(session, case_id=case.case_id) if e.kind == "note"]
        row = service.get_case(session, case_id=case.case_id)
        assert row is not None and "timeline" not in row.view
    assert [e.message for e in notes] == [
        f"Called the customer, attempt {n}." for n in range(1, 201)
    ]
    await stop(stack.client, handle)


async def test_a_returnless_return_takes_at_most_ten_activities(stack: Stack) -> None:
    from domain.policy import Policy

    policy = Policy.model_validate({"timers": {"follow_up": "1s", "survey": "1s"}})
    now = await stack.now()
    item = {**request_body(now=datetime.now(UTC))["items"][0], "unit_price": "150.00"}
    case = case_input(
        now=now, policy=policy, reason="defective", evidence=["https://x/p.jpg"], items=[item]
    )
    assert case.decision.returnless
    handle = await stack.start(case)
    await stack.env.sleep(timedelta(seconds=5))
    await finish(stack.env, handle, "closed")
    history = await handle.fetch_history()
    activities = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    summaries = [
        e.user_metadata.summary.data.decode()
        for e in history.events
        if e.HasField("activity_task_scheduled_event_attributes")
    ]
    assert len(activities) <= 10, "\n".join(summaries)
    # The storefront still hears of every status, each exactly once, from the outbox.
    with session_scope(stack.engine) as session:
        events = service.outbox_events(session, case_id=case.case_id)
    types = [e.event_type for e in events]
    assert types[0] == "case.open" and types[-1] == "case.closed", types
    assert len(set(e.event_id for e in events)) == len(events)
