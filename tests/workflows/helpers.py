"""Driving a case workflow from a test: events, actions and waiting for a status."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import TypeAdapter
from temporalio.client import WorkflowHandle

from domain.actions import AgentAction, CustomerAction, EventType, IntegrationEvent
from domain.models import CaseView

_AGENT = TypeAdapter(AgentAction)
_CUSTOMER = TypeAdapter(CustomerAction)


def event(type: str, **data: Any) -> IntegrationEvent:
    """An integration event with a fresh event_id."""
    return IntegrationEvent(
        event_id=f"ev-{secrets.token_hex(6)}",
        type=EventType(type),
        occurred_at=datetime.now(UTC),
        data=data,
    )


async def signal(handle: WorkflowHandle[Any, CaseView], type: str, **data: Any) -> IntegrationEvent:
    """Report an event to the case."""
    ev = event(type, **data)
    await handle.signal("event", ev)
    return ev


async def act(handle: WorkflowHandle[Any, CaseView], action: str, **fields: Any) -> CaseView:
    """An agent action; raises WorkflowUpdateFailedError when the case refuses it."""
    body = _AGENT.validate_python({"action": action, **fields})
    return await handle.execute_update("action", body, result_type=CaseView)


async def customer(handle: WorkflowHandle[Any, CaseView], action: str, **fields: Any) -> CaseView:
    """A customer action."""
    body = _CUSTOMER.validate_python({"action": action, **fields})
    return await handle.execute_update("customer_action", body, result_type=CaseView)


async def state(handle: WorkflowHandle[Any, CaseView]) -> CaseView:
    """The case now."""
    return await handle.query("state", result_type=CaseView)


async def reach(handle: WorkflowHandle[Any, CaseView], status: str, *, timeout: float = 15) -> CaseView:
    """Wait (in real time) until the case is in a status, and answer it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        view = await state(handle)
        if view.status == status:
            return view
        if loop.time() > deadline:
            raise AssertionError(f"case {view.id} stayed {view.status}, expected {status}")
        await asyncio.sleep(0.05)


def kinds(view: CaseView) -> list[str]:
    """The kinds of the case's timeline entries, in order."""
    return [entry.kind for entry in view.timeline]
