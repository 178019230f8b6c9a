"""Replay every recorded history against today's workflow code (DESIGN 9, docs/versioning.md).

A change to a workflow's command sequence that is not guarded by `workflow.patched` makes
the replay of a history recorded before it fail with a nondeterminism error here.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.api.history.v1 import History, HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from aftersales.worker import workflow_runner
from config.temporal import data_converter
from domain.models import CaseOutcome
from scripts.record_histories import recorder, refund_offer_unanswered, run_return_inspection
from workflows.case import CaseInput
from workflows.complaint import NEGATIVE_REVIEW_CLOCK
from workflows.deadlines import SMS_NUDGE_PATCH
from workflows.exchange import OUT_OF_STOCK_CHOICES
from workflows.registry import WORKFLOWS
from workflows.returns import RECORD_INSPECTION, ReturnWorkflow

HERE = Path(__file__).parent
HISTORIES = sorted(HERE.rglob("*.json"))
# Recorded before `return-record-inspection` (workflows/returns.py): the old command sequence.
BEFORE_PATCH = HERE / "legacy" / "return_complete_before_record_inspection.json"
PATCH_MARKER = "core_patch"


def load(path: Path) -> WorkflowHistory:
    """A recorded history; the workflow ID is the file's name (no workflow reads its ID)."""
    return WorkflowHistory.from_json(path.stem, path.read_text())


def replayer(*workflows: type, strict: bool = False) -> Replayer:
    """A replayer set up as the worker is: same workflows, converter and sandbox (or, with
    `strict`, a sandbox that re-imports and checks the workflow modules too)."""
    return Replayer(
        workflows=list(workflows or WORKFLOWS.values()),
        data_converter=data_converter,
        workflow_runner=workflow_runner(strict=strict),
    )


def patch_ids(history: WorkflowHistory | History) -> list[str]:
    """The IDs of the `workflow.patched` markers a history recorded."""
    converter = pydantic_data_converter.payload_converter
    return [
        converter.from_payload(
            e.marker_recorded_event_attributes.details["patch-data"].payloads[0]
        )["id"]
        for e in history.events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == PATCH_MARKER
    ]


def steps(history: WorkflowHistory) -> list[str]:
    """The activities a history scheduled and the patches it marked, in order."""
    return [step for e in history.events if (step := _step(e))]


def _step(event: HistoryEvent) -> str | None:
    if event.HasField("marker_recorded_event_attributes"):
        return f"patch:{patch_ids(History(events=[event]))[0]}"
    if event.HasField("activity_task_scheduled_event_attributes"):
        summary: Any = pydantic_data_converter.payload_converter.from_payload(
            event.user_metadata.summary, str
        )
        return str(summary)
    return None


def test_every_case_type_has_a_complete_history_and_one_is_mid_flight() -> None:
    names = {path.stem for path in HISTORIES}
    for case_type in ("return", "exchange", "refund", "repair", "complaint"):
        assert f"{case_type}_complete" in names
    assert "complaint_child_return_complete" in names
    assert "return_awaiting_shipment" in names
    mid = load(HERE / "return_awaiting_shipment.json")
    assert not mid.events[-1].HasField("workflow_execution_completed_event_attributes")


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: str(p.relative_to(HERE)))
async def test_history_replays_without_nondeterminism(path: Path) -> None:
    history = load(path)
    result = await replayer().replay_workflow(history)  # raises on nondeterminism
    assert result.replay_failure is None


async def test_all_histories_replay_together() -> None:
    async def histories() -> AsyncIterator[WorkflowHistory]:
        for path in HISTORIES:
            yield load(path)

    results = await replayer().replay_workflows(histories(), raise_on_replay_failure=False)
    assert results.replay_failures == {}


async def test_all_histories_replay_in_the_strict_sandbox() -> None:
    # The worker passes the workflow modules through the sandbox (aftersales/worker.py), so
    # the sandbox doesn't see what they call; here it re-imports them and checks every call
    # a recorded path makes (a datetime.now() in workflows/ fails this test).
    async def histories() -> AsyncIterator[WorkflowHistory]:
        for path in HISTORIES:
            yield load(path)

    strict = replayer(strict=True)
    results = await strict.replay_workflows(histories(), raise_on_replay_failure=False)
    assert results.replay_failures == {}


# ---- the real patch: recording a return's inspection outcome before notifying -----------


async def test_history_from_before_the_patch_replays_on_the_old_path() -> None:
    old = load(BEFORE_PATCH)
    assert patch_ids(old) == []
    result = await replayer().replay_workflow(old)
    assert result.replay_failure is None


@workflow.defn(name="ReturnWorkflow", sandboxed=False)
class UnguardedReturn(ReturnWorkflow):
    """The same change without `workflow.patched`: what the guard protects against."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the return to its end."""
        return await self.case.run(self.lifecycle)

    async def record_inspection(self) -> None:
        """Record the inspection's outcome, unguarded."""
        await self.case.recorder.sync()


async def test_the_same_change_unguarded_breaks_the_old_history() -> None:
    with pytest.raises(NondeterminismError):
        await replayer(UnguardedReturn).replay_workflow(load(BEFORE_PATCH))


async def test_a_new_return_records_its_inspection_before_notifying(tmp_path: Path) -> None:
    async with recorder(tmp_path) as rec:
        handle = await run_return_inspection(rec)
        history = await handle.fetch_history()
    assert patch_ids(history) == [RECORD_INSPECTION]
    new = steps(history)
    at = new.index(f"patch:{RECORD_INSPECTION}")
    # The projection's summary: "r<revision> ... +<n> entries".
    assert re.match(r"r\d+ .*\+\d+ entries", new[at + 1]), new[at + 1]
    assert new[at + 2] == "tell the customer: inspection_passed"
    # The old run has no marker: it went from the event to the notification without it.
    old = steps(load(BEFORE_PATCH))
    assert f"patch:{RECORD_INSPECTION}" not in old
    assert "tell the customer: inspection_passed" in old
    # And the new history replays, taking the new path again.
    result = await replayer().replay_workflow(history)
    assert result.replay_failure is None


# ---- the SMS nudge: an offer's wait split around a nudge (workflows/deadlines.py) -----------

# An offer left to its deadline, recorded with the `sms-nudge` patch disabled: one timer.
BEFORE_NUDGE = HERE / "legacy" / "refund_offer_unanswered_before_sms_nudge.json"


async def test_an_offer_waited_out_before_the_nudge_replays_on_the_old_path() -> None:
    old = load(BEFORE_NUDGE)
    assert patch_ids(old) == []
    assert "tell the customer: sms_nudge" not in steps(old)
    assert "tell the customer: refund_offer" in steps(old)
    result = await replayer().replay_workflow(old)
    assert result.replay_failure is None


async def test_the_nudge_unguarded_breaks_the_old_offer(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every patch "on": what the workflow would do without its guard.
    monkeypatch.setattr(workflow, "patched", lambda patch_id: True)
    with pytest.raises(NondeterminismError):
        await replayer().replay_workflow(load(BEFORE_NUDGE))


async def test_a_new_offer_waited_out_is_nudged_behind_the_marker(tmp_path: Path) -> None:
    async with recorder(tmp_path) as rec:
        handle = await refund_offer_unanswered(rec)
        history = await handle.fetch_history()
    assert patch_ids(history) == [SMS_NUDGE_PATCH]
    new = steps(history)
    offered = new.index("tell the customer: refund_offer")
    nudged = new.index("tell the customer: sms_nudge")
    assert offered < new.index(f"patch:{SMS_NUDGE_PATCH}") < nudged
    assert new.count("tell the customer: sms_nudge") == 1
    result = await replayer().replay_workflow(history)
    assert result.replay_failure is None


# ---- issue 11: the out-of-stock wait and the negative-review clock, each behind a patch ----

# Recorded with the code before each patch (legacy/), and again with today's code.
BEFORE_ISSUE_11 = {
    OUT_OF_STOCK_CHOICES: ("exchange_out_of_stock_wait", "waiting_for_stock"),
    NEGATIVE_REVIEW_CLOCK: ("complaint_negative_review_sunday", "within 2 hours"),
}


@pytest.mark.parametrize("patch", sorted(BEFORE_ISSUE_11))
async def test_issue_11_histories_before_the_patch_keep_the_old_path(patch: str) -> None:
    name, new_step = BEFORE_ISSUE_11[patch]
    old = load(HERE / "legacy" / f"{name}_before_issue11.json")
    new = load(HERE / f"{name}.json")
    assert patch_ids(old) == [] and patch in patch_ids(new)
    # What the patch added: the wait's message, or the 2-hour clock's escalation (the old run
    # was answered after 2 hours but within its business hour, so it never escalated).
    assert any(new_step in step for step in steps(new))
    assert not any(new_step in step for step in steps(old))
    for history in (old, new):
        result = await replayer().replay_workflow(history)
        assert result.replay_failure is None
