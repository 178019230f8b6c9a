"""`aftersales cases purge`: a customer's data-deletion request, in the projection and Temporal.

The order matters. The customer's open workflows are terminated first, so none of them writes
the projection again; then every row of their cases is deleted, and the audit entry written,
in one transaction. A workflow's history can't be edited: a terminated or closed case's
history (its input, with the customer's details) stays in Temporal until the namespace's
retention period removes it, unless `delete_history` deletes the executions now.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from store import purge

# The reason every terminated workflow carries; it names no customer.
TERMINATE_REASON = "data-deletion request: the customer's data was purged"


@dataclass
class PurgeResult:
    """What a purge did, in the projection and in Temporal."""

    purged: purge.Purged
    terminated: list[str]
    deleted_histories: list[str]


async def _terminate_open(client: Client, case_ids: list[str], actor: str) -> list[str]:
    terminated = []
    for case_id in case_ids:
        handle = client.get_workflow_handle(case_id)
        try:
            described = await handle.describe()
            if described.status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate(reason=f"{TERMINATE_REASON} (by {actor})")
                terminated.append(case_id)
        except RPCError as err:
            # No workflow (never started), or it ended between the two calls: nothing runs.
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    return terminated


async def _delete_histories(client: Client, case_ids: list[str]) -> list[str]:
    deleted = []
    for case_id in case_ids:
        try:
            # The server deletes the execution (history and visibility record) in the
            # background; the latest run of the ID is the one a case has.
            await client.workflow_service.delete_workflow_execution(
                DeleteWorkflowExecutionRequest(
                    namespace=client.namespace,
                    workflow_execution=WorkflowExecution(workflow_id=case_id),
                )
            )
            deleted.append(case_id)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
    return deleted


async def purge_customer(
    client: Client,
    engine: Engine,
    *,
    customer_id: str,
    actor: str,
    reference: str | None = None,
    delete_history: bool = False,
    dry_run: bool = False,
) -> PurgeResult:
    """Terminate the customer's open case workflows, then delete every row of their cases and
    write the audit entry; `dry_run` only finds the cases."""
    with engine.connect() as conn:
        case_ids = purge.customer_cases(conn, customer_id=customer_id)
    if dry_run:
        return PurgeResult(purge.Purged(case_ids=case_ids), [], [])
    terminated = await _terminate_open(client, case_ids, actor)
    with engine.begin() as conn:
        purged = purge.purge_cases(
            conn,
            case_ids=case_ids,
            actor=actor,
            reference=reference,
            workflows_terminated=len(terminated),
        )
    deleted = await _delete_histories(client, case_ids) if delete_history else []
    return PurgeResult(purged, terminated, deleted)
