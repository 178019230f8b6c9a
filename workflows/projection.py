"""The projection: what a case tells the DB (and, through its outbox, the storefront).

The workflow holds no timeline. `Projection.add` queues a numbered timeline entry,
`queue_webhook` a storefront webhook event; `sync` sends them with the view fields changed
since the last projection in ONE `project_case` activity, or nothing when nothing changed.
Projections run one at a time, in order, so each applies on top of the last.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.inputs import ProjectCase, WebhookEvent
    from domain.models import CaseStatus, CaseView, Money, NumberedEntry
    from domain.names import status_webhook
    from workflows import calls, search

_UNSET = object()
# View fields no message template reads (notifications/templates read `case.*` only for the
# others): a change to these alone doesn't need projecting before a message goes out.
NOT_IN_MESSAGES = {"timeline", "deadlines", "updated_at", "customer_actions", "agent_actions"}


class Projection:
    """A case's queued timeline entries and webhook events, and its projection to the DB."""

    def __init__(
        self,
        view: CaseView,
        *,
        token: str,
        opened_by_api: bool,
        refresh: Callable[[], None],
        details: Callable[[], str],
    ) -> None:
        self.view = view
        self.token = token
        # Called under the projection lock before each projection (derived view fields), and
        # for the Temporal UI's current details.
        self.refresh = refresh
        self.details = details
        # The last projection's revision; the API's opening row is revision 0.
        self.revision = 0
        # The sequence number the next timeline entry gets.
        self.seq = 0
        # Step counters: message, webhook and escalation IDs are `{name}.{n}`.
        self.sent: dict[str, int] = {}
        # The status the storefront last heard of (None: not even the opening one yet).
        self.last_status: CaseStatus | None = None
        # What the DB holds before this run's first projection: the API's opening row is this
        # very view (domain.opening); a case a workflow opened has no row yet.
        self.stored: dict[str, Any] | None = (
            view.model_dump(mode="json", exclude={"timeline"}) if opened_by_api else None
        )
        # The view's fields as last projected: the first projection of a case the API opened
        # sends only what differs from its opening row; one with no row (None) sends them all.
        self.projected: dict[str, Any] | None = self.stored
        # Search attribute values as last upserted, by name. A first run starts with these
        # unset, which reads the same as their default: no upsert until one changes. (A
        # continued run upserts them all: it may have inherited other values.)
        self.attributes: dict[str, Any] = dict(search.UNSET_AT_START)
        self.entries: list[NumberedEntry] = []
        self.webhooks: list[WebhookEvent] = []
        self.lock = asyncio.Lock()

    def add(self, kind: str, actor: str, message: str, data: dict[str, Any]) -> None:
        """Queue a numbered timeline entry for the next projection."""
        self.entries.append(
            NumberedEntry(
                seq=self.seq, at=workflow.now(), kind=kind, actor=actor, message=message, data=data
            )
        )
        self.seq += 1
        self.view.updated_at = workflow.now()

    def next_step(self, name: str) -> str:
        """A step ID unique within the case: steps repeat (a second reminder, review)."""
        self.sent[name] = self.sent.get(name, 0) + 1
        return f"{name}.{self.sent[name]}"

    def queue_webhook(self, event_type: str, data: Money | Mapping[str, Any] | None = None) -> None:
        """Queue a storefront webhook event for the next projection's outbox write (a status
        webhook reports its own status: `WebhookEvent.status`)."""
        body = data.model_dump(mode="json") if isinstance(data, Money) else dict(data or {})
        self.webhooks.append(WebhookEvent(step=self.next_step(event_type), data=body))

    async def sync(self) -> None:
        """Project what changed (and queued webhook events) in one activity; none when
        nothing changed since the last projection."""
        async with self.lock:
            self.refresh()
            if self.last_status is None and self.stored is not None:
                # The opening status, as the API wrote it: the storefront hears of it too.
                self.last_status = CaseStatus(self.stored["status"])
                self.queue_webhook(status_webhook(self.last_status))
            if self.view.status != self.last_status:
                self.last_status = self.view.status
                self.queue_webhook(status_webhook(self.view.status))
            fields = self.view.model_dump(mode="json", exclude={"timeline"})
            last = self.projected
            changes = (
                fields
                if last is None
                else {name: value for name, value in fields.items() if last.get(name) != value}
            )
            if not (changes or self.entries or self.webhooks):
                return
            if last is not None and self.entries and self.view.updated_at == self.entries[-1].at:
                # The last new entry's time: the store sets it from the entry.
                changes.pop("updated_at", None)
            self._describe()
            self.revision += 1
            projection = ProjectCase(
                case_id=self.view.id,
                revision=self.revision,
                changes=changes,
                entries=self.entries,
                webhooks=self.webhooks,
                token=self.token if last is None else None,
            )
            self.projected, self.stored = fields, fields
            self.entries, self.webhooks = [], []
            await calls.project_case(projection)

    def unseen_by_messages(self) -> bool:
        """Whether the record differs from the case in a field a message reads (the activity
        renders from the record; deadlines, timeline and `updated_at` are not read)."""
        if self.stored is None:
            return True
        fields = self.view.model_dump(mode="json", exclude=NOT_IN_MESSAGES)
        return any(self.stored.get(name) != value for name, value in fields.items())

    def _describe(self) -> None:
        # Search attributes that changed (an upsert is a history event), and the details the
        # Temporal UI shows.
        changed = [
            update
            for update in search.updates(self.view)
            if self.attributes.get(update.key.name, _UNSET) != update.value
        ]
        if changed:
            workflow.upsert_search_attributes(changed)
            self.attributes.update({update.key.name: update.value for update in changed})
        workflow.set_current_details(self.details())
