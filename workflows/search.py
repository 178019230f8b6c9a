"""The search attributes operators find cases by in the Temporal UI and CLI (DESIGN 9)."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

from domain.models import CaseView

CASE_TYPE = SearchAttributeKey.for_keyword("CaseType")
CASE_STATUS = SearchAttributeKey.for_keyword("CaseStatus")
CASE_REASON = SearchAttributeKey.for_keyword("CaseReason")
ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
CUSTOMER_ID = SearchAttributeKey.for_keyword("CustomerId")
CASE_QUEUE = SearchAttributeKey.for_keyword("CaseQueue")
CASE_PRIORITY = SearchAttributeKey.for_keyword("CasePriority")
SLA_BREACHED = SearchAttributeKey.for_bool("SlaBreached")
NEXT_DEADLINE = SearchAttributeKey.for_datetime("NextDeadline")

ALL = (
    CASE_TYPE,
    CASE_STATUS,
    CASE_REASON,
    ORDER_ID,
    CUSTOMER_ID,
    CASE_QUEUE,
    CASE_PRIORITY,
    SLA_BREACHED,
    NEXT_DEADLINE,
)

# A new workflow has no search attributes: an unset value reads as these (no case is
# breached, has a deadline or a reason until the workflow says so).
UNSET_AT_START: dict[str, Any] = {
    SLA_BREACHED.name: False,
    NEXT_DEADLINE.name: None,
    CASE_REASON.name: None,
}


def updates(view: CaseView) -> list[SearchAttributeUpdate[Any]]:
    """The search attribute values that describe the case now."""
    deadline = view.next_deadline
    return [
        CASE_TYPE.value_set(view.type.value),
        CASE_STATUS.value_set(view.status.value),
        CASE_REASON.value_set(view.reason.value) if view.reason else CASE_REASON.value_unset(),
        ORDER_ID.value_set(view.order.id),
        CUSTOMER_ID.value_set(view.customer.id),
        CASE_QUEUE.value_set(view.queue),
        CASE_PRIORITY.value_set(view.priority.value),
        SLA_BREACHED.value_set(view.sla_breached),
        NEXT_DEADLINE.value_set(deadline.due_at) if deadline else NEXT_DEADLINE.value_unset(),
    ]
