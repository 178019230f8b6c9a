"""The figures of a chaos scenario, and the guarantees every scenario keeps.

The guarantees: every case finishes (`closed`), each with exactly one refund (and a pickup case
with one pickup), one copy of each message (Message-ID) and the closing webhook; no timer
escalates a case twice; and the database record of every case shows where its workflow is.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from store.db import make_engine
from tests.chaos.load import FINISHED, Driver, Opening
from tests.chaos.stack import Stack
from tests.support.http_peers import Peers


@dataclass
class Figures:
    """What one scenario run did and saw."""

    scenario: str
    started: int = 0
    finished: int = 0
    # How many cases got n distinct refunds from the provider: {1: 200} is the goal.
    refunds_per_case: Counter[int] = field(default_factory=Counter)
    # Distinct refunds the provider made under one key (it dedupes: never above 1), and the
    # most calls that reached it under one key (retries and replays after a crash).
    refunds_per_key: int = 0
    refund_calls_per_key: int = 0
    pickups_per_case: Counter[int] = field(default_factory=Counter)
    # How many Message-IDs arrived n times: {1: all} is the goal.
    copies_per_message_id: Counter[int] = field(default_factory=Counter)
    messages: int = 0
    escalations: int = 0
    # Seconds from the end of the fault (the restart, the partner back) to every case closed.
    recover_seconds: float | None = None
    seconds: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One printable block."""
        parts = [
            f"[chaos] {self.scenario}: started {self.started}, finished {self.finished}",
            f"refunds per case {dict(self.refunds_per_case)}",
            f"refunds per key {self.refunds_per_key} (calls per key max "
            f"{self.refund_calls_per_key})",
            f"pickups per case {dict(self.pickups_per_case)}",
            f"messages {self.messages}, copies per Message-ID {dict(self.copies_per_message_id)}",
            f"escalations {self.escalations}",
            "recovered in "
            + (f"{self.recover_seconds:.1f} s" if self.recover_seconds is not None else "-"),
            f"took {self.seconds:.1f} s",
        ]
        parts += [f"{k} {v}" for k, v in self.notes.items()]
        if self.violations:
            parts.append(f"VIOLATIONS ({len(self.violations)}): {self.violations[:8]}")
        return "\n    ".join(parts)

    def row(self) -> str:
        """A Markdown table row for docs/reliability.md."""
        recover = f"{self.recover_seconds:.1f}" if self.recover_seconds is not None else "-"
        copies = ", ".join(
            f"{n} {'copy' if n == 1 else 'copies'}: {k}"
            for n, k in sorted(self.copies_per_message_id.items())
        )
        refunds = ", ".join(f"{n}: {k}" for n, k in sorted(self.refunds_per_case.items()))
        notes = "; ".join(f"{k} {v}" for k, v in self.notes.items())
        return (
            f"| {self.scenario} | {self.started} | {self.finished} | {refunds} | "
            f"{self.refunds_per_key} ({self.refund_calls_per_key}) | {copies} | "
            f"{self.escalations} | {recover} | {self.seconds:.0f} | {notes} |"
        )


TABLE_HEADER = (
    "| Scenario | Cases started | Finished | Cases by refunds | Refunds per key (calls) "
    "| Copies per Message-ID (IDs) | Escalations | Recovered (s) | Took (s) | Notes |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def escalations_by_timer(case: dict[str, Any]) -> Counter[str]:
    """A case's escalations on its timeline, by timer (`""` for a partner's)."""
    return Counter(
        str(entry["data"].get("timer") or "")
        for entry in case.get("timeline", [])
        if entry["kind"] == "escalated"
    )


def webhooks_landed(storefront: Peers, case_ids: list[str], *, timeout: float) -> bool:
    """Wait until every case's `case.closed` webhook has arrived; answers whether they did."""
    deadline = time.monotonic() + timeout
    while True:
        left = [
            c
            for c in case_ids
            if "case.closed" not in {e["type"] for e in storefront.webhook_events(c)}
        ]
        if not left:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def projected_statuses(database_url: str, case_ids: list[str]) -> dict[str, str]:
    """Each case's status as its database record has it."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text('SELECT id, status FROM "case"')).all()
    finally:
        engine.dispose()
    wanted = set(case_ids)
    return {row[0]: row[1] for row in rows if row[0] in wanted}


def delivery_rows(database_url: str, case_ids: list[str]) -> dict[tuple[str, str], str]:
    """Each (case, message) email's delivery-log row, as `status/attempts error`: what the
    worker thought happened to a message that didn't arrive once."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT case_id, message, status, attempts, error FROM notification"
                    " WHERE channel = 'email'"
                )
            ).all()
    finally:
        engine.dispose()
    wanted = set(case_ids)
    return {
        (row[0], row[1]): f"{row[2]}/{row[3]} {row[4] or ''}".strip()
        for row in rows
        if row[0] in wanted
    }


def collect(
    figures: Figures,
    stack: Stack,
    openings: list[Opening],
    driver: Driver,
    *,
    settle_seconds: float = 15.0,
) -> Figures:
    """Fill in the figures of finished cases and every guarantee they break."""
    case_ids = [o.case_id for o in openings if o.case_id]
    figures.started = len(openings)
    figures.finished = sum(driver.statuses.get(c) in FINISHED for c in case_ids)
    bad = figures.violations
    if len(case_ids) != len(openings):
        bad.append(f"{len(openings) - len(case_ids)} opens never answered with a case")
    if len(set(case_ids)) != len(case_ids):
        bad.append("two keys answered with the same case")
    for case_id in case_ids:
        if driver.statuses.get(case_id) not in FINISHED:
            bad.append(f"{case_id} ended {driver.statuses.get(case_id)}, not closed")

    payment, carrier, storefront = (
        stack.partners.payment,
        stack.partners.carrier,
        stack.partners.storefront,
    )
    ours = set(case_ids)
    refund_keys = Counter(
        r.idempotency_key for r in payment.requests if r.path == "/refunds" and r.status < 300
    )
    mine = {k: n for k, n in refund_keys.items() if k and k.split(":")[0] in ours}
    figures.refund_calls_per_key = max(mine.values(), default=0)
    refunds = payment.refunds
    by_key = Counter(key for key, payload in refunds.items() if payload.get("case_id") in ours)
    figures.refunds_per_key = max(by_key.values(), default=0)
    refunds_by_case = Counter(p.get("case_id") for p in refunds.values())
    for case_id in case_ids:
        n = refunds_by_case.get(case_id, 0)
        figures.refunds_per_case[n] += 1
        if n != 1:
            bad.append(f"{case_id}: {n} refunds")
    # A pickup nobody collected by its deadline is booked again (a second key): each booking
    # the case made is one pickup at the carrier, and no pickup is made the case didn't book.
    pickups_by_case = Counter(p.get("case_id") for p in carrier.pickups.values())
    for opening in openings:
        if opening.kind == "pickup" and opening.case_id:
            n = pickups_by_case.get(opening.case_id, 0)
            timeline = driver.cases.get(opening.case_id, {}).get("timeline", [])
            booked = sum(entry["kind"] == "pickup_booked" for entry in timeline)
            figures.pickups_per_case[n] += 1
            if n != booked or n == 0:
                bad.append(f"{opening.case_id}: {n} pickups for {booked} bookings")

    # Messages: mails arrive a moment after the case moves on; wait for the survey mails.
    deadline = time.monotonic() + settle_seconds
    while True:
        ids = [
            str(m["Message-ID"])
            for m in stack.mail.messages
            if str(m["Message-ID"]).lstrip("<").split(".")[0] in ours
        ]
        surveys = {i.lstrip("<").split(".")[0] for i in ids if ".survey." in i}
        if len(surveys) >= figures.finished or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    copies = Counter(ids)
    figures.messages = len(ids)
    figures.copies_per_message_id = Counter(copies.values())
    bad += [f"{mid} arrived {n} times" for mid, n in copies.items() if n != 1]
    per_case_message = Counter(
        (i.lstrip("<").split(".")[0], i.lstrip("<").split(".")[1]) for i in copies
    )
    amiss = [
        (case_id, message)
        for case_id in case_ids
        for message in ("case_received", "refund_sent", "survey")
        if per_case_message.get((case_id, message), 0) != 1
    ]
    logged = delivery_rows(stack.database_url, case_ids)
    # Attempts a kill cut while in doubt end `sent_unconfirmed`, never sent twice.
    figures.notes["delivery log"] = dict(Counter(row.split("/")[0] for row in logged.values()))
    for case_id, message in amiss:
        # With the delivery log's row, the figures say where the message was lost.
        row = logged.get((case_id, message), "no row")
        bad.append(f"{case_id}: {per_case_message.get((case_id, message), 0)} {message} ({row})")

    # Webhooks go out through the outbox, in order per case, retried with backoff: after an
    # outage of the storefront the last ones land up to one backoff step later.
    webhooks_landed(storefront, case_ids, timeout=settle_seconds)
    for case_id in case_ids:
        types = [e["type"] for e in storefront.webhook_events(case_id)]
        if "case.closed" not in types:
            bad.append(f"{case_id}: no case.closed webhook ({types[-3:]})")
        doubled = [t for t, n in Counter(types).items() if n > 1 and t != "case.escalated"]
        if doubled:
            bad.append(f"{case_id}: webhook events {doubled} under two IDs")

    for case_id in case_ids:
        timers = escalations_by_timer(driver.cases.get(case_id, {}))
        figures.escalations += sum(timers.values())
        twice = [t for t, n in timers.items() if t and n > 1]
        if twice:
            bad.append(f"{case_id}: timers {twice} escalated more than once")

    # The record follows the workflow's last step by a moment.
    deadline = time.monotonic() + settle_seconds
    while True:
        records = projected_statuses(stack.database_url, case_ids)
        behind = [c for c in case_ids if records.get(c) != driver.statuses.get(c)]
        if not behind or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    figures.notes.setdefault("records behind", len(behind))
    bad += [f"{c}: record {records.get(c)} but workflow {driver.statuses.get(c)}" for c in behind]
    return figures
