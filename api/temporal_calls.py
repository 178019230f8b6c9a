"""Every call the API makes to Temporal, and what each failure answers.

Temporal unreachable (down, restarting, the network gone) is a 503 `temporal-unavailable`
on every route that needs it, never a 500: the client may retry, and for an open with an
Idempotency-Key the retry finishes the same case. Reads never come here: they answer from
the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, TypeAdapter
from temporalio.client import (
    Client,
    RPCTimeoutOrCancelledError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ACTION_NOT_ALLOWED, TEMPORAL_UNAVAILABLE, Problem
from domain.models import Acted, CaseType
from domain.names import Handler
from store.tables import CaseOpening
from workflows.case import CaseInput
from workflows.registry import WORKFLOWS

# The stored restart input of a case: written at open (api.cases), read back to start it.
CASE_INPUT = TypeAdapter(CaseInput)

# Handler names of the case workflows, defined once in domain.names.
UPDATE_ACTION = Handler.ACTION.value
UPDATE_CUSTOMER_ACTION = Handler.CUSTOMER_ACTION.value
SIGNAL_EVENT = Handler.EVENT.value

# How long a start may take before the open answers 503. A server that is down refuses the
# connection at once; this bounds a server that is up but slow. At 10 s, a burst of 50 opens
# on a 2-core machine at load average 13 got 20 503s (start p99 17 s) where a bare
# start_workflow, which has no deadline, waited; the client does not retry a timed-out start.
START_RPC_TIMEOUT = timedelta(seconds=30)
# An update that reaches a run as it continues as new is refused as "already completed": it
# is sent again, with the same ID, to the latest run, a few times before a case that really
# ended answers 409.
CLOSED_RUN_TRIES = 3
CLOSED_RUN_PAUSE = 0.05
# Statuses that mean "Temporal is not answering", not "Temporal said no".
_UNREACHABLE = frozenset(
    {
        RPCStatusCode.UNAVAILABLE,
        RPCStatusCode.DEADLINE_EXCEEDED,
        RPCStatusCode.CANCELLED,
        RPCStatusCode.RESOURCE_EXHAUSTED,
        RPCStatusCode.ABORTED,
    }
)
# What a client that never reached its server raises (a lazy client's first call).
_CONNECT_FAILED = "Failed client connect"
RETRY_AFTER = {"Retry-After": "5"}


def unavailable(detail: str) -> Problem:
    """A 503: Temporal can't be reached now; retry later."""
    return Problem(
        503,
        TEMPORAL_UNAVAILABLE,
        "The workflow service is unavailable; try again shortly.",
        detail,
        headers=RETRY_AFTER,
    )


def is_unreachable(err: BaseException) -> bool:
    """Whether an error from the Temporal client means it could not reach the server."""
    if isinstance(err, RPCTimeoutOrCancelledError):
        return True
    if isinstance(err, RPCError):
        return err.status in _UNREACHABLE
    return isinstance(err, RuntimeError) and str(err).startswith(_CONNECT_FAILED)


@contextmanager
def reaching_temporal() -> Iterator[None]:
    """Turn "Temporal can't be reached" into a 503 problem; other errors pass through."""
    try:
        yield
    except (RPCError, RPCTimeoutOrCancelledError, RuntimeError) as err:
        if is_unreachable(err):
            raise unavailable(f"Temporal did not answer: {_short(err)}") from err
        raise


def _short(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= 300 else text[:297] + "..."


@dataclass(frozen=True)
class Start:
    """What starting one case's workflow takes."""

    case_type: CaseType
    input: CaseInput
    summary: str
    details: str

    @classmethod
    def from_opening(cls, stored: CaseOpening) -> Start:
        """The start the API stored with the case when it opened it."""
        return cls(
            case_type=CaseType(stored.workflow),
            input=CASE_INPUT.validate_python(stored.input),
            summary=stored.summary,
            details=stored.details,
        )


async def start_case(client: Client, start: Start, *, task_queue: str) -> None:
    """Start the case's workflow under the case ID; a running (or finished) one is left be."""
    with reaching_temporal(), contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            WORKFLOWS[start.case_type].run,  # type: ignore[attr-defined]
            start.input,
            id=start.input.case_id,
            task_queue=task_queue,
            # One workflow per case ID, ever: a restart after a lost answer never opens
            # a second run of a case that has already finished.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=start.summary,
            static_details=start.details,
            rpc_timeout=START_RPC_TIMEOUT,
        )


async def update(client: Client, case_id: str, name: str, body: BaseModel) -> Acted:
    """Send an update; its answer names the projection that holds the case it left.

    409 `action-not-allowed` when the case refuses it (its validator, or it has ended):
    the workflow's own error type for that, `action_not_allowed`, is mapped here to the
    API's kebab-case slug.
    """
    handle = client.get_workflow_handle(case_id)
    with reaching_temporal():
        try:
            return await update_latest_run(handle, name, body)
        except WorkflowUpdateFailedError as err:
            cause = err.cause
            message = cause.message if isinstance(cause, ApplicationError) else str(cause)
            raise Problem(
                409, ACTION_NOT_ALLOWED, "The case can't take this action now.", message
            ) from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise Problem(409, ACTION_NOT_ALLOWED, "The case has ended.", err.message) from err
            raise


async def update_latest_run(handle: WorkflowHandle[Any, Any], name: str, body: Any) -> Acted:
    """Send an update to the case's latest run, again if the run closed before it took it.

    Every try carries the same update ID: a run that applied it but whose answer was lost as
    it continued as new has handed the ID to the next run, which answers without applying it
    again (workflows.case.Case.once)."""
    update_id = uuid.uuid4().hex
    for attempt in range(1, CLOSED_RUN_TRIES + 1):
        try:
            acted: Acted = await handle.execute_update(name, body, id=update_id, result_type=Acted)
            return acted
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND or attempt == CLOSED_RUN_TRIES:
                raise
            # The run closed under the update: it may have continued as new (a long case).
            # The new run applies the update, or answers it if the old run had applied it.
            await asyncio.sleep(CLOSED_RUN_PAUSE * attempt)
    raise AssertionError("unreachable")


async def signal(client: Client, case_id: str, name: str, arg: Any) -> bool:
    """Send a signal; False when the case's workflow has finished (or never ran)."""
    with reaching_temporal():
        try:
            await client.get_workflow_handle(case_id).signal(name, arg)
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
    return True


def install(app: FastAPI) -> None:
    """Answer a Temporal call that a route left unguarded: unreachable is a 503, not a 500."""

    async def _temporal(_: Request, exc: Exception) -> JSONResponse:
        if is_unreachable(exc):
            return unavailable(f"Temporal did not answer: {_short(exc)}").response()
        raise exc

    for error in (RPCError, RPCTimeoutOrCancelledError):
        app.add_exception_handler(error, _temporal)
