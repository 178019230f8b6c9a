"""The faults. Each scenario takes a running stack (or starts its own), puts cases in flight,
breaks something for real, repairs it, drives every case to its end and answers its figures.
Each is bounded by `within` seconds and leaves every process it started stopped."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.api.postgres import SEARCHED, find_bin_dir
from tests.chaos.checks import Figures, collect, escalations_by_timer
from tests.chaos.load import Driver, Opening, auth, open_all, open_once, plan
from tests.chaos.procs import RestartablePostgres
from tests.chaos.stack import Stack, running_stack

# Answers the API may give while a part of the stack is down: anything but a 500.
DOWN_ANSWERS = frozenset({0, 200, 201, 202, 409, 502, 503, 504})


@dataclass(frozen=True)
class Size:
    """How big a run is: cases per scenario and how long an outage lasts."""

    cases: int
    burst: int
    outage: float
    within: float


FAST = Size(cases=6, burst=12, outage=4.0, within=120.0)
FULL = Size(cases=200, burst=100, outage=20.0, within=600.0)


async def until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Wait until `predicate()` holds; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what} in {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def probe(http: httpx.AsyncClient, case_id: str, answers: Counter[int]) -> None:
    """Read a case and open one (keyed, replayed later), counting the API's answers."""
    for method, path, body in (
        ("GET", f"/v1/cases/{case_id}", None),
        ("GET", "/v1/cases", None),
    ):
        try:
            response = await http.request(method, path, json=body, headers=auth("agent"))
            answers[response.status_code] += 1
        except httpx.HTTPError:
            answers[0] += 1


async def _drive(stack: Stack, http: httpx.AsyncClient, openings: list[Opening], size: Size,
                 figures: Figures, driver: Driver | None = None) -> Driver:
    driver = driver or Driver(http, [o.case_id for o in openings if o.case_id])
    figures.seconds = await driver.run(within=size.within)
    return driver


# -- 1. the worker SIGKILLed with refunds, pickups and mails mid-call --------------------------


async def worker_sigkill(stack: Stack, size: Size) -> Figures:
    """SIGKILL the worker with every case in flight; restart it; every case finishes once."""
    figures = Figures("worker SIGKILL")
    payment, carrier = stack.partners.payment, stack.partners.carrier
    count = size.cases
    # A few calls held at the partner, so the kill lands mid-call for sure: the provider makes
    # the refund (books the pickup) after the caller is gone, and the retry must not repeat it.
    payment.stall_next("/refunds", 3.0, times=max(1, count // 20))
    carrier.stall_next("/pickups", 3.0, times=max(1, count // 20))
    openings = plan(count)
    started = time.monotonic()
    async with stack.client(connections=32) as http:
        opening = asyncio.create_task(open_all(http, openings, within=size.within))
        await until(
            lambda: payment.arrivals("/refunds") >= max(1, count // 4)
            and carrier.arrivals("/pickups") >= 1
            and len(stack.mail.messages) >= 1,
            timeout=size.within,
            what="refunds, pickups and mails under way",
        )
        stack.worker.kill()
        figures.notes["killed after (s)"] = round(time.monotonic() - started, 1)
        figures.notes["refund calls at the kill"] = payment.arrivals("/refunds")
        await opening  # opens need the API and Temporal only
        await asyncio.sleep(1.0)
        await stack.worker.start()
        restarted = time.monotonic()
        driver = await _drive(stack, http, openings, size, figures)
        figures.recover_seconds = time.monotonic() - restarted
        figures.seconds = time.monotonic() - started
    return collect(figures, stack, openings, driver)


# -- 2. the Temporal server killed with cases in flight and timers pending ---------------------


async def temporal_kill(stack: Stack, size: Size) -> Figures:
    """SIGKILL Temporal with cases in flight and timers pending; the API answers 503 (never
    500) while it is down; restarted on its database, every case resumes and each timer that
    came due fires once."""
    figures = Figures("Temporal server SIGKILL")
    count = size.cases
    openings = plan(count)
    started = time.monotonic()
    async with stack.client(connections=32) as http:
        await open_all(http, openings, within=size.within)
        driver = Driver(http, [o.case_id for o in openings if o.case_id])
        driving = asyncio.create_task(driver.run(within=size.within))
        # Some cases resolved (their survey timers pending), others still on their way.
        await until(
            lambda: sum(s == "resolved" for s in driver.statuses.values()) >= 1,
            timeout=size.within,
            what="a resolved case waiting on its survey timer",
        )
        stack.temporal.kill()
        down_at = time.monotonic()
        # Opens made while Temporal is down: answered 503, replayed under their keys later.
        late = plan(max(2, count // 10))
        answers: Counter[int] = Counter()
        any_case = openings[0].case_id or ""
        while time.monotonic() - down_at < size.outage:
            for opening in late:
                answers[await open_once(http, opening) or 0] += 1
            await probe(http, any_case, answers)
            await asyncio.sleep(0.3)
        figures.notes["answers while down"] = dict(sorted(answers.items()))
        if answers[500]:
            figures.violations.append(f"the API answered 500 {answers[500]} times while down")
        if not answers[503]:
            figures.violations.append(f"the API never answered 503 while down: {answers}")
        await stack.temporal.start()
        restarted = time.monotonic()
        await open_all(http, late, within=size.within)
        driver.case_ids += [o.case_id for o in late if o.case_id]
        await driving
        await driver.run(within=size.within)
        figures.recover_seconds = time.monotonic() - restarted
        figures.seconds = time.monotonic() - started
    return collect(figures, stack, [*openings, *late], driver)


# -- 3. the API killed during a burst of keyed opens -------------------------------------------


async def api_kill(stack: Stack, size: Size) -> Figures:
    """SIGKILL the API during a burst of keyed opens; replay every request with its key: no
    duplicate case, no lost case, no key answering 404."""
    figures = Figures("API SIGKILL during keyed opens")
    openings = plan(size.burst)
    started = time.monotonic()
    async with stack.client(connections=size.burst) as http:
        burst = [asyncio.create_task(open_once(http, o)) for o in openings]
        await until(
            lambda: sum(bool(o.answers) for o in openings) >= max(1, len(openings) // 4),
            timeout=size.within,
            what="the burst's first answers",
        )
        stack.api.kill()
        await asyncio.gather(*burst)
        figures.notes["answered before the kill"] = sum(o.case_id is not None for o in openings)
        await stack.api.start()
        restarted = time.monotonic()
        # Every request again, under its key: each answers its one case.
        await open_all(http, openings, within=size.within)
        for opening in openings:
            if 404 in opening.answers:
                figures.violations.append(f"key {opening.key} answered 404")
        driver = await _drive(stack, http, openings, size, figures)
        figures.recover_seconds = time.monotonic() - restarted
        figures.seconds = time.monotonic() - started
    collect(figures, stack, openings, driver)
    per_order = _cases_per_order(stack, openings)
    doubled = {order: n for order, n in per_order.items() if n != 1}
    if doubled:
        figures.violations.append(f"orders with other than one case: {doubled}")
    return figures


def _cases_per_order(stack: Stack, openings: list[Opening]) -> dict[str, int]:
    from sqlalchemy import text

    from store.db import make_engine

    orders = {o.body["order"]["id"] for o in openings}
    engine = make_engine(stack.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text('SELECT order_id FROM "case"')).all()
    finally:
        engine.dispose()
    found = Counter(row[0] for row in rows if row[0] in orders)
    return {order: found.get(order, 0) for order in orders}


# -- 4. a partner outage -----------------------------------------------------------------------


async def partner_outage(stack: Stack, size: Size, partners: tuple[str, ...]) -> Figures:
    """Take partners down (their port refuses connections) for `size.outage` seconds with
    cases in flight; every side effect lands once after they are back, and the refunds left
    pending when the payment provider went down escalate once (their deadline passed)."""
    figures = Figures(f"partner outage: {', '.join(partners)}")
    servers = stack.partners.all()
    up = dict.fromkeys(servers, True)
    payment = stack.partners.payment
    openings = plan(size.cases)
    before, rest = openings[: len(openings) // 2], openings[len(openings) // 2 :]
    started = time.monotonic()
    if "payment" in partners:
        # The provider answers "pending" and reports the settlement later (the driver plays
        # its report): the case waits under its refund deadline, which the outage outlasts.
        payment.refund_status = "pending"
    try:
        async with stack.client(connections=32) as http:
            driver = Driver(
                http, [], carrier_up=lambda: up["carrier"], payment_up=lambda: up["payment"]
            )
            await open_all(http, before, within=size.within)
            driver.case_ids += [o.case_id for o in before if o.case_id]
            # In flight when the outage starts: refunds answered, pickups booked.
            watcher = Driver(
                http, list(driver.case_ids), carrier_up=lambda: False, payment_up=lambda: False
            )

            async def under_way() -> bool:
                await asyncio.gather(*(watcher.step(c) for c in watcher.case_ids))
                return all(_under_way(watcher.cases.get(o.case_id or "", {}), o) for o in before)

            deadline = time.monotonic() + size.within
            while not await under_way():
                if time.monotonic() > deadline:
                    raise AssertionError(f"cases never under way: {watcher.statuses}")
                await asyncio.sleep(0.2)
            for name in partners:
                up[name] = False
                servers[name].stop()
            down_at = time.monotonic()
            await open_all(http, rest, within=size.within)
            driver.case_ids += [o.case_id for o in rest if o.case_id]
            driving = asyncio.create_task(driver.run(within=size.within + size.outage))
            await asyncio.sleep(max(0.0, size.outage - (time.monotonic() - down_at)))
            for name in partners:
                servers[name].start()
                up[name] = True
            back = time.monotonic()
            await driving
            figures.recover_seconds = time.monotonic() - back
            figures.seconds = time.monotonic() - started
    finally:
        payment.refund_status = "succeeded"
        for server in servers.values():
            server.start()  # (a no-op for a running one)
    collect(figures, stack, openings, driver)
    if "payment" in partners:
        waited = [o.case_id for o in before if o.kind == "refund" and o.case_id]
        breaches = Counter(escalations_by_timer(driver.cases[c])["refund"] for c in waited)
        figures.notes["refund deadline escalations (cases by count)"] = dict(breaches)
        figures.violations += [
            f"{c}: refund deadline escalated {escalations_by_timer(driver.cases[c])['refund']}"
            " times, not once"
            for c in waited
            if escalations_by_timer(driver.cases[c])["refund"] != 1
        ]
    return figures


def _under_way(case: dict[str, Any], opening: Opening) -> bool:
    if opening.kind == "refund":
        return (case.get("refund") or {}).get("status") in ("pending", "succeeded")
    return any(s.get("booked_by") == "seller" for s in case.get("shipments") or [])


# -- 5. PostgreSQL restarted under load --------------------------------------------------------


async def postgres_restart(workdir: Path, size: Size) -> Figures:
    """Crash PostgreSQL (immediate stop) under load and start it again: the API and the worker
    reconnect by themselves, and no case's record is lost or behind its workflow."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise AssertionError(f"PostgreSQL is not installed (looked for {SEARCHED})")
    figures = Figures("PostgreSQL restart under load")
    with RestartablePostgres(bin_dir) as pg:
        async with running_stack(workdir, database_url=pg.url) as stack:
            openings = plan(size.cases)
            late = plan(max(2, size.cases // 10))
            started = time.monotonic()
            async with stack.client(connections=32) as http:
                await open_all(http, openings, within=size.within)
                driver = Driver(http, [o.case_id for o in openings if o.case_id])
                driving = asyncio.create_task(driver.run(within=size.within + size.outage))
                await until(
                    lambda: sum(s == "resolved" for s in driver.statuses.values()) >= 1,
                    timeout=size.within,
                    what="a case resolved",
                )
                await asyncio.to_thread(pg.crash)
                down_at = time.monotonic()
                answers: Counter[int] = Counter()
                while time.monotonic() - down_at < size.outage:
                    for opening in late:
                        answers[await open_once(http, opening) or 0] += 1
                    await asyncio.sleep(0.3)
                figures.notes["open answers while down"] = dict(sorted(answers.items()))
                if answers[500]:
                    figures.violations.append(f"opens answered 500 {answers[500]} times")
                await asyncio.to_thread(pg.restart)
                back = time.monotonic()
                await open_all(http, late, within=size.within)
                driver.case_ids += [o.case_id for o in late if o.case_id]
                await driving
                await driver.run(within=size.within)
                figures.recover_seconds = time.monotonic() - back
                figures.seconds = time.monotonic() - started
                figures.notes["API and worker restarts"] = (
                    stack.api.starts + stack.worker.starts - 2
                )
            collect(figures, stack, [*openings, *late], driver)
    return figures


Scenario = Callable[[Stack, Size], Awaitable[Figures]]
