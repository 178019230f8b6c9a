"""The complaint coupon's move to the storefront's store-credit API is guarded by
`workflow.patched` (docs/versioning.md): a coupon complaint recorded before it replays on the
old path, the same change unguarded would break it, and a new one marks the patch."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.workflow import NondeterminismError

with workflow.unsafe.imports_passed_through():
    from domain.actions import Propose
    from domain.models import CaseOutcome
    from domain.names import Actor, Kind, Webhook, WorkflowName
    from scripts.record_histories import Recorder, idle, recorder
    from tests.replay.test_replay import patch_ids, replayer, steps
    from tests.workflows.complaints import complaint_input
    from tests.workflows.helpers import act, customer, reach_deadline
    from workflows.case import CaseInput
    from workflows.complaint import COUPON_THROUGH_STOREFRONT, ComplaintWorkflow
    from workflows.registry import WORKFLOWS
    from workflows.steps.credit import issue_credit


@workflow.defn(name=WorkflowName.COMPLAINT.value, sandboxed=False)
class ComplaintBeforeCouponConnector(ComplaintWorkflow):
    """The complaint as it ran before the patch: a coupon only announced by webhook."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the complaint to its end."""
        return await self.case.run(self.lifecycle)

    async def carry_out(self, proposal: Propose, amount: Decimal | None) -> bool:
        """The old coupon path; the rest as today."""
        if proposal.resolution != "coupon" or amount is None:
            return await super().carry_out(proposal, amount)
        rec = self.case.recorder
        await rec.publish(Webhook.COUPON_ISSUED, rec.money(amount))
        rec.add(Kind.COUPON_ISSUED, Actor.SYSTEM, "Coupon issued through the storefront.")
        return True


@workflow.defn(name=WorkflowName.COMPLAINT.value, sandboxed=False)
class UnguardedCoupon(ComplaintWorkflow):
    """The same change without `workflow.patched`: what the guard protects against."""

    @workflow.run
    async def run(self, input: CaseInput) -> CaseOutcome:
        """Run the complaint to its end."""
        return await self.case.run(self.lifecycle)

    async def carry_out(self, proposal: Propose, amount: Decimal | None) -> bool:
        """The coupon through the storefront, unguarded."""
        if proposal.resolution == "coupon" and amount is not None:
            await issue_credit(self.case, amount, reason="complaint_coupon", kind="coupon")
        return await ComplaintBeforeCouponConnector.carry_out(self, proposal, amount)  # type: ignore[arg-type]


async def coupon_complaint(rec: Recorder) -> WorkflowHistory:
    """A complaint resolved by a coupon, up to its follow-up."""
    handle = await rec.start(complaint_input(now=await rec.now()))
    await reach_deadline(handle, "first_response")
    await act(handle, "respond", actor="agent-mei", message="We're so sorry; we're on it.")
    await reach_deadline(handle, "review")
    await act(handle, "propose", actor="agent-mei", resolution="coupon", amount="150")
    await reach_deadline(handle, "offer_response")
    await customer(handle, "accept")
    await reach_deadline(handle, "complaint_follow_up")
    await idle(rec.client, handle)
    history = await handle.fetch_history()
    await handle.terminate("recorded")
    return history


async def test_a_coupon_complaint_from_before_the_patch_replays_and_a_new_one_marks_it(
    tmp_path: Path,
) -> None:
    others = [w for w in WORKFLOWS.values() if w is not ComplaintWorkflow]
    async with recorder(tmp_path, [ComplaintBeforeCouponConnector, *others]) as rec:
        old = await coupon_complaint(rec)
    # Other patches (the SMS nudge of the offer's wait) mark it too; not this one.
    assert COUPON_THROUGH_STOREFRONT not in patch_ids(old)
    assert not any("store credit" in step for step in steps(old))
    result = await replayer().replay_workflow(old)
    assert result.replay_failure is None
    with pytest.raises(NondeterminismError):
        await replayer(UnguardedCoupon, *others).replay_workflow(old)

    async with recorder(tmp_path) as rec:
        new = await coupon_complaint(rec)
    assert COUPON_THROUGH_STOREFRONT in patch_ids(new)
    assert "store credit TWD 150.00" in steps(new)
    result = await replayer().replay_workflow(new)
    assert result.replay_failure is None
