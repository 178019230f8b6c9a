"""An agent marks a complaint malicious (DESIGN 3.6 step 5): no compensation, the review
board's queue, a record kept as evidence, and the case closes."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import Session
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.service import RPCError

from domain.models import CaseView
from store import service
from store.db import session_scope
from tests.conftest import Stack, until
from tests.workflows.complaints import accepted, open_complaint, proposed
from tests.workflows.helpers import (
    act,
    customer,
    entry,
    finish,
    kinds,
    mail_names,
    reach,
    reach_deadline,
    requests_for,
    sleep_past,
    stop,
    webhook_types,
)

EVIDENCE = "Same photo used in 4 complaints on 3 accounts; order never opened (CCTV 14:02)."


async def marked(stack: Stack, handle: WorkflowHandle[Any, CaseView]) -> CaseView:
    """Mark the case malicious and answer it closed."""
    view = await act(handle, "mark_malicious", actor="agent-lee", notes=EVIDENCE)
    assert view.status == "closed"
    result = await finish(stack.env, handle, "closed")
    assert result.malicious and result.queue == "review_board"
    mark = entry(result, "marked_malicious")
    assert (mark.actor, mark.message) == ("agent-lee", EVIDENCE)
    assert kinds(result)[-1] == "closed" and result.deadlines == []
    return result


async def test_marked_before_any_answer_pays_nothing_and_is_kept(stack: Stack) -> None:
    case, handle = await open_complaint(stack)
    calls = stack.peers.refund_calls
    result = await marked(stack, handle)
    assert result.refund is None
    assert stack.peers.refund_calls == calls
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    # No compensation mail, and nothing tells the customer about the review board.
    assert mail_names(stack.mail, case) == ["complaint_acknowledged"]
    # Delivered from the outbox a moment after the projection.
    await until(lambda: webhook_types(stack.peers, case.case_id)[-1:] == ["case.closed"])

    # The record says so, and the store refuses to delete it.
    with Session(stack.engine) as session:
        stored = service.get_case(session, case_id=case.case_id)
        assert stored is not None and stored.queue == "review_board"
        assert service.stored_view(stored).malicious
    with pytest.raises(service.RecordProtected), session_scope(stack.engine) as session:
        service.delete_case(session, case_id=case.case_id)
    with Session(stack.engine) as session:
        assert service.get_case(session, case_id=case.case_id) is not None


async def test_an_ordinary_record_can_be_deleted(stack: Stack) -> None:
    case, handle = await open_complaint(stack)
    await customer(handle, "cancel")
    await finish(stack.env, handle, "cancelled")
    with session_scope(stack.engine) as session:
        assert service.delete_case(session, case_id=case.case_id)
    with Session(stack.engine) as session:
        assert service.get_case(session, case_id=case.case_id) is None


async def test_marked_while_a_refund_is_offered_never_pays(stack: Stack) -> None:
    case, handle = await proposed(stack, "refund")
    calls = stack.peers.refund_calls
    await marked(stack, handle)
    # The case has ended: the customer's late accept reaches nothing.
    with pytest.raises((WorkflowUpdateFailedError, RPCError)):
        await customer(handle, "accept")
    # No payment call at all, for this case or any other.
    assert stack.peers.refund_calls == calls
    assert requests_for(stack.peers, "/refunds", case.case_id) == []
    assert "refund_sent" not in mail_names(stack.mail, case)


async def test_marked_at_the_follow_up_closes_it(stack: Stack) -> None:
    case, handle = await accepted(stack, "apology")
    await reach_deadline(handle, "complaint_follow_up")
    await sleep_past(stack.env, handle, "complaint_follow_up")
    await reach_deadline(handle, "offer_response")
    result = await marked(stack, handle)
    assert "satisfied" not in kinds(result)
    assert "survey" not in mail_names(stack.mail, case)


async def test_marked_while_its_return_runs_leaves_the_return_to_its_agents(
    stack: Stack,
) -> None:
    case, handle = await accepted(stack, "return")
    view = await reach(handle, "awaiting_shipment")
    [child_id] = view.child_case_ids
    result = await marked(stack, handle)
    assert child_id in next(e.message for e in result.timeline if e.kind == "note")
    # ABANDON: the return is a case of its own and goes on, its agents decide on it.
    child = stack.client.get_workflow_handle(child_id, result_type=CaseView)
    mine = await reach_deadline(child, "carrier_pickup")
    assert mine.status == "awaiting_shipment" and mine.parent_case_id == case.case_id
    await stop(stack.client, child)
