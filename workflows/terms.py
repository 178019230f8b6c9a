"""The terms an approval leaves a case on: a supervisor's exception, fee and shipping payer.

Shared by the action validator (which refuses terms a case can't take, before anything is
written) and the review step (which applies them), so the two never disagree.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.actions import Approve, ApproveException
    from domain.models import CaseRequest, Decision
    from domain.names import Actor
    from domain.policy import Policy
    from domain.rules import adjusted, excepted


def approved_terms(
    action: Approve | ApproveException,
    *,
    request: CaseRequest,
    decision: Decision,
    policy: Policy,
    opened_at: datetime,
) -> Decision:
    """The decision an approval leaves; raises `domain.rules.TermsRefused` when the case
    can't take the exception or the change of terms."""
    by = action.actor or Actor.AGENT
    if isinstance(action, ApproveException):
        decision = excepted(
            request, policy=policy, opened_at=opened_at, by=by, reason=action.reason
        )
    return adjusted(
        decision,
        request,
        policy=policy,
        fee=action.restocking_fee,
        payer=action.shipping_payer,
        by=by,
    )
