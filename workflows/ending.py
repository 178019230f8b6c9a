"""How a step ends its case early."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.models import CaseStatus
    from domain.names import Kind


class CaseEnded(Exception):
    """Raised inside a case's steps to end it early (cancelled, expired, rejected)."""

    def __init__(
        self, status: CaseStatus, kind: Kind, message: str, actor: str, *, recorded: bool = False
    ) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.actor = status, kind, message, actor
        # The step already moved the case to `status` and said why (a rejected case that
        # waited for an exception): nothing more goes on the timeline.
        self.recorded = recorded
