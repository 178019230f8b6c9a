"""Telling people: the customer over their channel, the operations team, the storefront."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.calls import call
from activities.connectors import Connectors
from activities.inputs import NotifyCustomer, NotifyOps, PublishWebhook
from aftersales.settings import Settings
from domain.models import CaseView, Channel
from notifications.email import is_permanent, send_email
from notifications.render import RenderedMessage, render_message
from store import service
from store.db import session_scope


class NotifyActivities:
    """Customer messages, escalations and storefront webhooks."""

    def __init__(self, *, engine: Engine, settings: Settings, connectors: Connectors) -> None:
        self.engine = engine
        self.settings = settings
        self.connectors = connectors

    def _render(self, message: str, locale: str, context: dict[str, Any]) -> RenderedMessage:
        return render_message(message, locale, context, templates_dir=self.settings.templates_dir)

    @activity.defn
    async def notify_customer(self, input: NotifyCustomer) -> str:
        """Send one customer message once; answers the delivery status."""
        view = input.view
        channel = view.customer.channel
        recipient = (view.customer.phone if channel == Channel.SMS else view.customer.email) or ""
        rendered = self._render(
            input.message,
            view.customer.locale.value,
            {
                "case": view.model_dump(mode="json"),
                "status_url": view.status_url,
                "timezone": input.timezone,
                "deadline": input.deadline.model_dump(mode="json") if input.deadline else None,
                "extra": input.extra,
            },
        )
        return await self._deliver(
            notification_id=f"{view.id}:{input.step}:{channel.value}",
            view=view,
            channel=channel.value,
            message=input.message,
            locale=view.customer.locale.value,
            recipient=recipient,
            rendered=rendered,
        )

    @activity.defn
    async def notify_ops(self, input: NotifyOps) -> str:
        """Mail the operations contacts about an escalation."""
        if not self.settings.ops_email:
            return "skipped"
        rendered = self._render(
            "ops_escalation",
            "en",
            {
                "case": input.view.model_dump(mode="json"),
                "status_url": input.view.status_url,
                "timezone": input.timezone,
                "extra": {"timer": input.timer, "reason": input.reason},
            },
        )
        return await self._deliver(
            notification_id=f"{input.view.id}:{input.step}:ops",
            view=input.view,
            channel="email",
            message="ops_escalation",
            locale="en",
            recipient=self.settings.ops_email,
            rendered=rendered,
        )

    async def _deliver(
        self,
        *,
        notification_id: str,
        view: CaseView,
        channel: str,
        message: str,
        locale: str,
        recipient: str,
        rendered: RenderedMessage,
    ) -> str:
        def start() -> bool:
            with session_scope(self.engine) as session:
                return service.start_delivery(
                    session,
                    notification_id=notification_id,
                    case_id=view.id,
                    channel=channel,
                    message=message,
                    locale=locale,
                    recipient=recipient,
                )

        def finish(status: str, error: str | None = None) -> None:
            with session_scope(self.engine) as session:
                service.finish_delivery(
                    session, notification_id=notification_id, status=status, error=error
                )

        if not await asyncio.to_thread(start):
            return "already_sent"
        if not recipient:
            await asyncio.to_thread(finish, "failed", f"the customer has no {channel} address")
            return "failed"
        try:
            if channel == "sms":
                await call(
                    self.connectors.sms,
                    "",
                    {
                        "case_id": view.id,
                        "to": recipient,
                        "body": f"{rendered.subject} {view.status_url}",
                    },
                    key=notification_id,
                )
            elif self.settings.smtp_url:
                await send_email(
                    smtp_url=self.settings.smtp_url,
                    mail_from=self.settings.mail_from,
                    to=recipient,
                    message=rendered,
                    message_id=notification_id,
                )
            else:
                activity.logger.info(
                    "No SMTP configured; %s to %s: %s", message, recipient, rendered.subject
                )
        except ApplicationError as err:
            await asyncio.to_thread(finish, "failed", str(err))
            return "failed"
        except Exception as err:
            if is_permanent(err):
                # A bad address never gets better; log it for agents and let the case go on.
                await asyncio.to_thread(finish, "failed", str(err))
                return "failed"
            raise
        await asyncio.to_thread(finish, "sent")
        return "sent"

    @activity.defn
    async def publish_webhook(self, input: PublishWebhook) -> None:
        """Post a case event to the storefront webhook."""
        view = input.view
        await call(
            self.connectors.webhook,
            "",
            {
                "id": input.event_id,
                "type": input.event_type,
                "case_id": view.id,
                "status": view.status.value,
                "occurred_at": datetime.now(UTC).isoformat(),
                "data": {"case": view.model_dump(mode="json"), **input.data},
            },
            key=input.event_id,
        )
