"""What a new case gets when it opens: its ID, its customer token and its Temporal summary.

Pure: the caller hands in the source of randomness, so the API draws from the system's
(`secrets.SystemRandom()`) and a workflow opening a child case from `workflow.random()`,
which replays to the same ID and token.
"""

from __future__ import annotations

import base64
import random

from domain.models import CASE_ID_PREFIX, CaseRequest, CaseType, Decision

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
