"""Sample cases for tests: a realistic return request, built relative to a given time."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from domain.calendar import case_holidays
from domain.models import CASE_ID_PREFIX, CaseRequest
from domain.opening import initial_view
from domain.policy import Policy
from domain.rules import evaluate
from store import service
from store.db import session_scope
from workflows.case import CaseInput


def request_body(*, now: datetime, **overrides: Any) -> dict[str, Any]:
    """The JSON body of a return a storefront would send, delivered three days before `now`."""
    customer_id = overrides.pop("customer_id", f"C-{secrets.token_hex(4)}")
    body: dict[str, Any] = {
        "type": "return",
        "order": {
            "id": f"SO-{secrets.token_hex(4)}",
            "placed_at": (now - timedelta(days=6)).isoformat(),
            "shipped_at": (now - timedelta(days=5)).isoformat(),
            "delivered_at": (now - timedelta(days=3)).isoformat(),
            "currency": "TWD",
            "payment_method": "card",
        },
        "customer": {
            "id": customer_id,
            "email": f"{customer_id.lower()}@example.com",
            "phone": "+886912345678",
            "locale": "en",
            "channel": "email",
            "address": {"name": "Amy", "line1": "1 Main St", "city": "Taipei", "country": "TW"},
        },
        "items": [
            {
                "sku": "TEE-M-BLK",
                "name": "T-shirt",
                "category": "apparel",
                "quantity": 1,
                "unit_price": "990.00",
                "opened": False,
                "warranty_months": 12,
            }
        ],
        "reason": "size_fit",
        "description": "Too small",
        "evidence": [],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(body.get(key), dict):
            body[key] = {**body[key], **value}
        else:
            body[key] = value
    return body


def case_input(
    *,
    now: datetime,
    policy: Policy | None = None,
    prior_cases: int = 0,
    **overrides: Any,
) -> CaseInput:
    """A workflow input for a sample case, with the decision the policy gives it."""
    policy = policy or Policy()
    request = CaseRequest.model_validate(request_body(now=now, **overrides))
    prefix = CASE_ID_PREFIX[request.type]
    case_id = f"{prefix}-{secrets.token_hex(4).upper()}"
    token = secrets.token_urlsafe(16)
    return CaseInput(
        case_id=case_id,
        request=request,
        decision=evaluate(request, policy=policy, now=now, prior_cases=prior_cases),
        # As the API opens a case: the copy it carries has its order's peak season applied.
        policy=policy.for_order(request.order),
        token=token,
        status_url=f"http://localhost:8000/status/{token}",
        opened_at=now,
        holidays=case_holidays(policy, now),
    )


def money(value: str) -> Decimal:
    """A decimal amount."""
    return Decimal(value)


def record_opening(engine: Engine, case: CaseInput) -> None:
    """Write the case's opening row as the API does (store.service.insert_opened_case)."""
    view = initial_view(
        case_id=case.case_id,
        request=case.request,
        decision=case.decision,
        queue=case.queue,
        priority=case.priority,
        status_url=case.status_url,
        opened_at=case.opened_at,
        parent_case_id=case.parent_case_id,
    )
    with session_scope(engine) as session:
        service.insert_opened_case(session, view=view, token=case.token)
