"""Telling people: the customer over their channel and the operations team. (The storefront's
webhook goes through the outbox: activities.outbox.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import errors
from activities.calls import call
from activities.connectors import Connectors
from activities.inputs import NotifyCustomer, NotifyOps
from config.settings import Settings
from domain.models import CaseView, Channel
from notifications.email import DeliveryInDoubt, is_permanent, send_email
from notifications.render import RenderedMessage, render_message
from store import service
from store.db import session_scope

AfterSend = Callable[[str, str], None]


class NotifyActivities:
    """Customer messages and escalations; each reads the case from its record."""

    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        connectors: Connectors,
        after_send: AfterSend | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.connectors = connectors
        # Called with (notification ID, message) once the server accepted a message and
        # before the log says so; tests use it to kill the worker at the worst moment.
        self.after_send = after_send

    def _render(self, message: str, locale: str, context: dict[str, Any]) -> RenderedMessage:
        try:
            return render_message(
                message, locale, context, templates_dir=self.settings.templates_dir
            )
        except (TemplateError, LookupError, ValueError) as err:
            # A missing template or variable renders the same way on every retry: someone has
            # to fix the template, AFTERSALES_TEMPLATES_DIR or the code that passed the context.
            raise errors.misconfigured(f"cannot render {message!r} ({locale}): {err}") from None

    def _case(self, case_id: str) -> CaseView:
        with Session(self.engine) as session:
            row = service.get_case(session, case_id=case_id)
            if row is None:
                # The projection before the message always lands first; a missing record is
                # a wiped or wrong DB, which a retry can't fix.
                raise errors.misconfigured(f"case {case_id} has no record to write to")
            return service.stored_view(row)

    @activity.defn
    async def notify_customer(self, input: NotifyCustomer) -> str:
        """Send one customer message once; answers the delivery status."""

        def prepare() -> tuple[CaseView, RenderedMessage]:
            # The read and the render in one trip to a thread: rendering is CPU work that
            # would hold the worker's event loop.
            view = self._case(input.case_id)
            deadline = input.deadline.model_dump(mode="json") if input.deadline else None
            return view, self._render(
                input.message,
                view.customer.locale.value,
                {
                    "case": view.model_dump(mode="json"),
                    "status_url": view.status_url,
                    "timezone": input.timezone,
                    "deadline": deadline,
                    "extra": input.args.context(),
                },
            )

        view, rendered = await asyncio.to_thread(prepare)
        channel = view.customer.channel
        recipient = (view.customer.phone if channel == Channel.SMS else view.customer.email) or ""
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

        def prepare() -> tuple[CaseView, RenderedMessage]:
            view = self._case(input.case_id)
            return view, self._render(
                "ops_escalation",
                "en",
                {
                    "case": view.model_dump(mode="json"),
                    "status_url": view.status_url,
                    "timezone": input.timezone,
                    "extra": {"timer": input.timer, "reason": input.reason},
                },
            )

        view, rendered = await asyncio.to_thread(prepare)
        return await self._deliver(
            notification_id=f"{view.id}:{input.step}:ops",
            view=view,
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
        def start() -> str | None:
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

        # Statuses: see store.service (sending, in_doubt, sent, sent_unconfirmed, failed).
        previous = await asyncio.to_thread(start)
        if previous is None:
            return "already_sent"
        if not recipient:
            await asyncio.to_thread(finish, "failed", f"the customer has no {channel} address")
            return "failed"
        if previous == "in_doubt" and channel != "sms":
            # An earlier attempt handed the message to the SMTP server and never recorded the
            # answer: the customer may have it already. At most once beats twice.
            await asyncio.to_thread(
                finish,
                "sent_unconfirmed",
                "an earlier attempt ended after handing the message to the SMTP server",
            )
            return "sent_unconfirmed"
        # (An SMS in doubt is simply posted again: the gateway dedupes by Idempotency-Key.)

        handed_over = False

        async def point_of_no_return() -> None:
            nonlocal handed_over
            await asyncio.to_thread(finish, "in_doubt")
            handed_over = True

        try:
            if channel == "sms":
                await point_of_no_return()
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
                    before_data=point_of_no_return,
                )
            else:
                activity.logger.info(
                    "No SMTP configured; %s to %s: %s", message, recipient, rendered.subject
                )
        except DeliveryInDoubt:
            raise  # the row stays in_doubt; the retry records sent_unconfirmed, never resends
        except ApplicationError as err:
            if not err.non_retryable:
                raise  # the gateway is down or slow; the row stays in_doubt and the retry resends
            # The SMS gateway refused the message or its URL can't work: log it for agents,
            # then fail the activity so the workflow escalates the case.
            await asyncio.to_thread(finish, "failed", err.message)
            raise
        except Exception as err:
            if is_permanent(err):
                # A bad address never gets better; log it for agents and let the case go on.
                await asyncio.to_thread(finish, "failed", str(err))
                return "failed"
            if handed_over and channel != "sms":
                # The SMTP server answered DATA with a refusal: nothing was delivered.
                await asyncio.to_thread(finish, "sending", str(err))
            raise
        if self.after_send is not None:
            self.after_send(notification_id, message)
        await asyncio.to_thread(finish, "sent")
        return "sent"
