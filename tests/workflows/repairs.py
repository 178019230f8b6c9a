"""Repair cases for the workflow tests: a pair of headphones in or out of warranty (DESIGN 3.5)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio.client import WorkflowHandle

from domain.models import CaseView
from tests.support.factory import case_input
from tests.workflows.helpers import (
    send_back,
    signal,
)
from workflows.case import CaseInput

HEADPHONES = {
    "sku": "HP-200-BLK",
    "name": "Wireless headphones",
    "category": "electronics",
    "quantity": 1,
    "unit_price": "2490.00",
    "opened": True,
    "warranty_months": 12,
}
EVIDENCE = ["https://cdn.example.com/evidence/left-earcup.jpg"]
PARTS = ["Left driver unit", "Ear cushion"]


def repair_input(now: datetime, *, in_warranty: bool = True, **overrides: Any) -> CaseInput:
    """A repair of headphones delivered 3 days ago (in warranty) or 400 days ago (not).

    With evidence attached and a total under the auto-approve limit it is approved at once.
    """
    delivered = now - timedelta(days=3 if in_warranty else 400)
    values: dict[str, Any] = {
        "type": "repair",
        "reason": "defective",
        "description": "No sound from the left earcup.",
        "evidence": EVIDENCE,
        "items": [HEADPHONES],
        "order": {
            "placed_at": (delivered - timedelta(days=3)).isoformat(),
            "shipped_at": (delivered - timedelta(days=2)).isoformat(),
            "delivered_at": delivered.isoformat(),
        },
        **overrides,
    }
    case = case_input(now=now, **values)
    assert case.decision.in_warranty is in_warranty
    return case


async def send_in(
    handle: WorkflowHandle[Any, CaseView],
    *,
    tracking_number: str = "BC-REPAIR",
    timeout: float = 15,
) -> CaseView:
    """Bring the item to the repair centre and answer the case waiting for its diagnosis."""
    return await send_back(
        handle, tracking_number=tracking_number, timeout=timeout, then="diagnosis"
    )


async def diagnose(
    handle: WorkflowHandle[Any, CaseView],
    *,
    repairable: bool = True,
    cost: str = "0",
    parts: list[str] | None = None,
    notes: str = "A loose solder joint on the left driver.",
) -> None:
    """The repair centre reports its diagnosis."""
    await signal(
        handle,
        "repair.diagnosed",
        repairable=repairable,
        cost=cost,
        parts=PARTS[:1] if parts is None else parts,
        notes=notes,
    )


async def complete(handle: WorkflowHandle[Any, CaseView], *, qc_passed: bool = True) -> None:
    """The repair centre reports the repair done."""
    await signal(
        handle,
        "repair.completed",
        parts_replaced=PARTS[:1],
        work_done="Replaced the left driver and resoldered its cable.",
        qc_passed=qc_passed,
    )
