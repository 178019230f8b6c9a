"""Which workflow runs which case type (the worker registers them all).

Nothing in workflows/ imports this module: a complaint starts its child case by the
workflow's type name (`domain.names.WORKFLOW_NAMES`), so there is no import cycle.
"""

from __future__ import annotations

from domain.models import CaseType
from workflows.complaint import ComplaintWorkflow
from workflows.exchange import ExchangeWorkflow
from workflows.refund import RefundWorkflow
from workflows.repair import RepairWorkflow
from workflows.returns import ReturnWorkflow

WORKFLOWS: dict[CaseType, type] = {
    CaseType.RETURN: ReturnWorkflow,
    CaseType.EXCHANGE: ExchangeWorkflow,
    CaseType.REFUND: RefundWorkflow,
    CaseType.REPAIR: RepairWorkflow,
    CaseType.COMPLAINT: ComplaintWorkflow,
}


def workflow_for(case_type: CaseType) -> type:
    """The workflow class of a case type; KeyError for a type not built yet."""
    return WORKFLOWS[case_type]
