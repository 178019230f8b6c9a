"""The policy dry run: what would happen to a case before it is opened."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends

from api.cases import check_request, decide
from api.deps import PolicyDep, Principal, SessionDep, require
from domain.models import CaseRequest, Decision

router = APIRouter(prefix="/v1/policy", tags=["policy"])


@router.post("/evaluate", response_model=Decision)
def evaluate_policy(
    request: CaseRequest,
    session: SessionDep,
    policy: PolicyDep,
    _: Annotated[Principal, Depends(require("storefront", "agent"))],
) -> Decision:
    """Eligibility, rules fired, shipping payer, refund estimate and review for a would-be case."""
    # The same checks as opening it: without them a return with no reason reached the rules,
    # which raise on it (a 500).
    check_request(request, policy)
    return decide(session, request=request, policy=policy, now=datetime.now(UTC))
