"""Which workflow runs which case type."""

from __future__ import annotations

from domain.models import CaseType
from workflows.exchange import ExchangeWorkflow
from workflows.refund import RefundWorkflow
from workflows.returns import ReturnWorkflow

WORKFLOWS: dict[CaseType, type] = {
    CaseType.RETURN: ReturnWorkflow,
    CaseType.EXCHANGE: ExchangeWorkflow,
    CaseType.REFUND: RefundWorkflow,
}


def workflow_for(case_type: CaseType) -> type:
    """The workflow class of a case type; KeyError for a type not built yet."""
    return WORKFLOWS[case_type]
