"""The delivery log's writes (`notification` rows), as one Core statement each.

Every customer message writes its row before and after sending; through ORM objects (a load,
a flush, a commit per write) that bookkeeping cost more worker CPU than rendering the message.

Statuses (`Notification.status`):
  sending           an attempt is under way and nothing has been handed over yet; retried
  in_doubt          the message is being handed over (SMTP DATA sent, SMS posted) and the
                    outcome is not known yet
  sent              the server/gateway accepted it
  sent_unconfirmed  an attempt died while in_doubt; an email is not sent again (the customer
                    may already have it, and must never get two), so it ends here
  failed            permanently refused (5xx recipient, 4xx gateway) or no address
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Executable, bindparam, update
from sqlalchemy.dialects import postgresql, sqlite

from store.tables import Notification, core_table

DELIVERY_SETTLED = frozenset({"sent", "sent_unconfirmed", "failed"})


NOTIFICATION = core_table(Notification)
_N = NOTIFICATION.c


@dataclass(frozen=True)
class Delivery:
    """One message to one recipient: its log row's identity and what the row records."""

    # `{case_id}:{step}:{channel}`: the same on every attempt (and the email's Message-ID).
    notification_id: str
    case_id: str
    channel: str
    message: str
    locale: str
    recipient: str


def _upsert(dialect_name: str) -> Executable:
    insert = postgresql.insert if dialect_name == "postgresql" else sqlite.insert
    statement = insert(NOTIFICATION)
    return statement.on_conflict_do_update(
        index_elements=[_N.id],
        # A retried attempt counts itself, unless the message is settled: then no row comes
        # back, and the caller sends nothing.
        set_={"attempts": _N.attempts + 1, "updated_at": statement.excluded.updated_at},
        where=_N.status.not_in(DELIVERY_SETTLED),
    ).returning(_N.status)


_STARTS = {name: _upsert(name) for name in ("sqlite", "postgresql")}
_FINISH = (
    update(NOTIFICATION)
    .where(_N.id == bindparam("key"))
    .values(status=bindparam("to"), error=bindparam("why"), updated_at=bindparam("now"))
)


def start_delivery(
    conn: Connection, *, delivery: Delivery, now: datetime, status: str = "sending"
) -> str | None:
    """Log an attempt to send, in one statement; answers the status the last attempt left
    (`status` for a first attempt), or None when this notification is already settled."""
    row = conn.execute(
        _STARTS[conn.dialect.name],
        {
            "id": delivery.notification_id,
            "case_id": delivery.case_id,
            "channel": delivery.channel,
            "message": delivery.message,
            "locale": delivery.locale,
            "recipient": delivery.recipient,
            "status": status,
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
        },
    ).one_or_none()
    return None if row is None else str(row.status)


def finish_delivery(
    conn: Connection, *, notification_id: str, status: str, now: datetime, error: str | None = None
) -> None:
    """Log the outcome of a send."""
    conn.execute(_FINISH, {"key": notification_id, "to": status, "why": error, "now": now})
