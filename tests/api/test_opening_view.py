"""The case the API writes at open is the case its workflow starts from (domain.opening)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from domain import opening
from domain.models import CaseType
from tests.support.factory import case_input
from workflows.registry import WORKFLOWS

REQUESTS: dict[CaseType, dict[str, Any]] = {
    CaseType.RETURN: {},
    CaseType.EXCHANGE: {
        "type": "exchange",
        "exchange_for": [{"sku": "TEE-L-BLK", "quantity": 1, "unit_price": "990.00"}],
    },
    CaseType.REFUND: {"type": "refund", "reason": "changed_mind"},
    CaseType.REPAIR: {"type": "repair", "reason": "defective"},
    CaseType.COMPLAINT: {
        "type": "complaint",
        "reason": None,
        "complaint": {"category": "product_quality", "channel": "chat", "severity": "high"},
    },
}


@pytest.mark.parametrize("case_type", list(CaseType), ids=str)
def test_initial_view_is_the_workflows_first_view(case_type: CaseType) -> None:
    now = datetime.now(UTC)
    given = case_input(now=now, **REQUESTS[case_type])
    # The workflow's constructor builds the view its first step records.
    expected = WORKFLOWS[case_type](given).case.view
    written = opening.initial_view(
        case_id=given.case_id,
        request=given.request,
        decision=given.decision,
        queue=given.queue,
        priority=given.priority,
        status_url=given.status_url,
        opened_at=given.opened_at,
        parent_case_id=given.parent_case_id,
    )
    assert written.model_dump(mode="json") == expected.model_dump(mode="json")
    assert written.status == "open" and written.timeline == []
