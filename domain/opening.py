"""What a new case gets when it opens: its ID, its customer token and its Temporal summary.

Pure: the caller hands in the source of randomness, so the API draws from the system's
(`secrets.SystemRandom()`) and a workflow opening a child case from `workflow.random()`,
which replays to the same ID and token.
"""

from __future__ import annotations

import base64
import random
from datetime import datetime

from domain.models import (
    CASE_ID_PREFIX,
    CaseRequest,
    CaseStatus,
    CaseType,
    CaseView,
    Decision,
    Priority,
    Repair,
)

# Crockford-style: no I, L, O, U, so an ID read over the phone can't be misheard.
ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_LENGTH = 8
TOKEN_BYTES = 24


def new_case_id(case_type: CaseType, rng: random.Random) -> str:
    """A short, human-typable case ID prefixed by its type, e.g. `R-7Q2K9MXA`."""
    return f"{CASE_ID_PREFIX[case_type]}-" + "".join(
        rng.choice(ID_ALPHABET) for _ in range(ID_LENGTH)
    )


def new_token(rng: random.Random) -> str:
    """A customer's per-case bearer token, URL-safe (as `secrets.token_urlsafe(24)`)."""
    return base64.urlsafe_b64encode(rng.randbytes(TOKEN_BYTES)).rstrip(b"=").decode()


def status_url(base: str, token: str) -> str:
    """The customer's status page of a case: `<base>/status/<token>`."""
    return f"{base.rstrip('/')}/status/{token}"


def initial_view(
    *,
    case_id: str,
    request: CaseRequest,
    decision: Decision,
    queue: str,
    priority: Priority,
    status_url: str,
    opened_at: datetime,
    parent_case_id: str | None = None,
) -> CaseView:
    """The case as it stands the moment it opens, before its workflow takes a step.

    The API writes this as the case's first record and answers the open with it; the case
    workflow starts from the same view, so both show the same case until its first step.
    A repair starts with an empty repair record (the repair workflow's first line).
    """
    return CaseView(
        id=case_id,
        type=request.type,
        status=CaseStatus.OPEN,
        order=request.order,
        customer=request.customer,
        items=request.items,
        reason=request.reason,
        description=request.description,
        evidence=request.evidence,
        exchange_for=request.exchange_for,
        complaint=request.complaint,
        decision=decision,
        queue=queue,
        priority=priority,
        parent_case_id=parent_case_id,
        repair=Repair() if request.type == CaseType.REPAIR else None,
        status_url=status_url,
        created_at=opened_at,
        updated_at=opened_at,
    )


def summary(case_id: str, request: CaseRequest, decision: Decision) -> str:
    """The workflow's static summary in the Temporal UI: type, case ID, order, amount."""
    amount = decision.refund_estimate
    return (
        f"{request.type.value} {case_id} — order {request.order.id}, "
        f"customer {request.customer.id}, {amount.currency} {amount.amount}"
    )


def details(
    case_id: str, request: CaseRequest, decision: Decision, *, parent_case_id: str | None = None
) -> str:
    """The workflow's static details (Markdown) in the Temporal UI."""
    amount = decision.refund_estimate
    lines = [
        f"**{request.type.value.title()} case {case_id}**",
        "",
        f"- order: `{request.order.id}`",
        f"- customer: `{request.customer.id}`",
        f"- reason: `{request.reason}`",
        f"- amount: {amount.currency} {amount.amount}",
        f"- items: {', '.join(f'{i.quantity} x {i.sku}' for i in request.items)}",
    ]
    if request.complaint is not None:
        lines.append(f"- complaint: `{request.complaint.category}`")
    if parent_case_id:
        lines.append(f"- opened to carry out the resolution of `{parent_case_id}`")
    return "\n".join(lines)
