"""Telling people: the customer over their channel and the operations team. (The storefront's
webhook goes through the outbox: activities.outbox.)"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateError
from sqlalchemy import Connection, Engine
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
from store import deliveries, projection
from store.deliveries import Delivery
from store.tables import utcnow

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

    def _case(self, conn: Connection, case_id: str) -> CaseView:
        fields = projection.stored_fields(conn, case_id=case_id)
        if fields is None:
            # The projection before the message always lands first; a missing record is
            # a wiped or wrong DB, which a retry can't fix.
            raise errors.misconfigured(f"case {case_id} has no record to write to")
        return CaseView.model_validate(fields)

    def _prepare(
        self,
        case_id: str,
        delivery: Callable[[CaseView], Delivery],
        context: Callable[[CaseView], dict[str, Any]],
    ) -> Prepared:
        """Read the case, render the message and log the attempt: one thread trip and one
        transaction (rendering is CPU work that would hold the worker's event loop)."""
        with self.engine.begin() as conn:
            view = self._case(conn, case_id)
            target = delivery(view)
            rendered = self._render(
                target.message,
                target.locale,
                {"case": view.model_dump(mode="json"), "status_url": view.status_url}
                | context(view),
            )
            # An SMS is posted right after this commits, and a retry posts it again (the
            # gateway dedupes by Idempotency-Key): its attempt starts in doubt. An email
            # goes in doubt only when the SMTP server is about to get it.
            first = "in_doubt" if target.channel == Channel.SMS.value else "sending"
            previous = deliveries.start_delivery(conn, delivery=target, now=utcnow(), status=first)
        return Prepared(target, view.status_url, rendered, previous)

    @activity.defn
    async def notify_customer(self, input: NotifyCustomer) -> str:
        """Send one customer message once; answers the delivery status."""

        def delivery(view: CaseView) -> Delivery:
            customer = view.customer
            channel = input.channel or customer.channel
            return Delivery(
                notification_id=f"{view.id}:{input.step}:{channel.value}",
                case_id=view.id,
                channel=channel.value,
                message=input.message,
                locale=customer.locale.value,
                recipient=(customer.phone if channel == Channel.SMS else customer.email) or "",
            )

        def context(view: CaseView) -> dict[str, Any]:
            deadline = input.deadline.model_dump(mode="json") if input.deadline else None
            return {
                "timezone": input.timezone,
                "deadline": deadline,
                "extra": input.args.context(),
            }

        prepared = await asyncio.to_thread(self._prepare, input.case_id, delivery, context)
        return await self._deliver(prepared)

    @activity.defn
    async def notify_ops(self, input: NotifyOps) -> str:
        """Mail the operations contacts about an escalation."""
        recipient = self.settings.ops_email
        if not recipient:
            return "skipped"

        def delivery(view: CaseView) -> Delivery:
            return Delivery(
                notification_id=f"{view.id}:{input.step}:ops",
                case_id=view.id,
                channel="email",
                message="ops_escalation",
                locale="en",
                recipient=recipient,
            )

        def context(view: CaseView) -> dict[str, Any]:
            return {
                "timezone": input.timezone,
                "extra": {"timer": input.timer, "reason": input.reason},
            }

        prepared = await asyncio.to_thread(self._prepare, input.case_id, delivery, context)
        return await self._deliver(prepared)

    async def _deliver(self, prepared: Prepared) -> str:
        target, rendered = prepared.delivery, prepared.rendered
        notification_id, channel, recipient = (
            target.notification_id,
            target.channel,
            target.recipient,
        )

        def finish(status: str, error: str | None = None) -> None:
            with self.engine.begin() as conn:
                deliveries.finish_delivery(
                    conn, notification_id=notification_id, status=status, error=error, now=utcnow()
                )

        # Statuses: see store.deliveries (sending, in_doubt, sent, sent_unconfirmed, failed).
        previous = prepared.previous
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
                # The row went in doubt when the attempt started (`_prepare`).
                await call(
                    self.connectors.sms,
                    "",
                    {
                        "case_id": target.case_id,
                        "to": recipient,
                        "body": f"{rendered.subject} {prepared.status_url}",
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
                    "No SMTP configured; %s to %s: %s", target.message, recipient, rendered.subject
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
            self.after_send(notification_id, target.message)
        await asyncio.to_thread(finish, "sent")
        return "sent"


@dataclass(frozen=True)
class Prepared:
    """A message ready to send: whom to, what, and the status its last attempt left (None:
    it is settled already)."""

    delivery: Delivery
    status_url: str
    rendered: RenderedMessage
    previous: str | None
