"""The faults. Each scenario takes a running stack (or starts its own), puts cases in flight,
breaks something for real, repairs it, drives every case to its end and answers its figures.
Each is bounded by `within` seconds and leaves every process it started stopped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.api.postgres import SEARCHED, find_bin_dir
from tests.chaos.checks import Figures, collect, escalations_by_timer, webhooks_landed
from tests.chaos.load import Driver, Opening, auth, open_all, open_once, plan
from tests.chaos.procs import AFTERSALES, ROOT, RestartablePostgres
from tests.chaos.stack import Stack, running_stack
from tests.support.ports import free_port

# Answers the API may give while a part of the stack is down: anything but a 500.
DOWN_ANSWERS = frozenset({0, 200, 201, 202, 409, 502, 503, 504})


@dataclass(frozen=True)
class Size:
    """How big a run is: cases per scenario and how long an outage lasts."""

    cases: int
    burst: int
    outage: float
    within: float
    # Fail the attempts a kill left open (a killed worker's calls, or calls whose completion a
    # killed Temporal server missed) at once, as their start-to-close timeout would 60 s later
    # (the fast subset's floor otherwise); the full set waits the minute out.
    expire_dead_attempts: bool = False


# `within` bounds each wait, with room for a loaded machine; a run takes far less.
FAST = Size(cases=6, burst=12, outage=4.0, within=300.0, expire_dead_attempts=True)


async def until(predicate: Callable[[], bool], *, timeout: float, what: str) -> None:
    """Wait until `predicate()` holds; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"never saw {what} in {timeout:.0f} s")
        await asyncio.sleep(0.05)


async def probe(http: httpx.AsyncClient, case_id: str, answers: Counter[int]) -> None:
    """Read a case and the case list as an agent, counting the API's answers."""
    for path in (f"/v1/cases/{case_id}", "/v1/cases"):
        try:
            response = await http.get(path, headers=auth("agent"))
            answers[response.status_code] += 1
        except httpx.HTTPError:
            answers[0] += 1


async def landed(stack: Stack, driver: Driver, size: Size, figures: Figures) -> None:
    """Wait until every case's last webhook has arrived: recovered means every side effect
    landed. The outbox sends a case's events in order, retried with backoff, and an event
    leased by a killed worker waits out its lease (30 s) before another posts it."""
    arrived = await asyncio.to_thread(
        webhooks_landed, stack.partners.storefront, driver.case_ids, timeout=size.within
    )
    if not arrived:
        figures.violations.append(f"webhooks still missing {size.within:.0f} s after the repair")


async def _drive(
    http: httpx.AsyncClient,
    openings: list[Opening],
    size: Size,
    figures: Figures,
    driver: Driver | None = None,
) -> Driver:
    driver = driver or Driver(http, [o.case_id for o in openings if o.case_id])
    figures.seconds = await driver.run(within=size.within)
    return driver


# -- 1. the worker SIGKILLed with refunds, pickups and mails mid-call --------------------------


async def worker_sigkill(
    stack: Stack, size: Size, repaired: asyncio.Event | None = None
) -> Figures:
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
            lambda: (
                payment.arrivals("/refunds") >= max(1, count // 4)
                and carrier.arrivals("/pickups") >= 1
                and len(stack.mail.messages) >= 1
            ),
            timeout=size.within,
            what="refunds, pickups and mails under way",
        )
        stack.worker.kill()
        killed_at = datetime.now(UTC)
        figures.notes["killed after (s)"] = round(time.monotonic() - started, 1)
        figures.notes["refund calls at the kill"] = payment.arrivals("/refunds")
        await opening  # opens need the API and Temporal only
        await asyncio.sleep(1.0)
        await stack.worker.start()
        restarted = time.monotonic()
        if size.expire_dead_attempts:
            expired = await _expire_dead_attempts(stack, killed_at)
            figures.notes["dead attempts failed at once"] = expired
        if repaired is not None:
            repaired.set()
        driver = await _drive(http, openings, size, figures)
        await landed(stack, driver, size, figures)
        figures.recover_seconds = time.monotonic() - restarted
        figures.seconds = time.monotonic() - started
    return await asyncio.to_thread(collect, figures, stack, openings, driver)


async def _expire_dead_attempts(stack: Stack, killed_at: datetime) -> int:
    """Fail every activity attempt of the stack's running cases (other scenarios' too) that
    started before the kill and is still open, as its start-to-close timeout would once the
    server noticed: the retry then runs under the same idempotency key. Answers how many it
    failed."""
    from temporalio.api.enums.v1 import PendingActivityState
    from temporalio.client import Client
    from temporalio.exceptions import ApplicationError
    from temporalio.service import RPCError

    client = await Client.connect(stack.env["AFTERSALES_TEMPORAL_ADDRESS"])
    failed = 0
    running = [
        execution.id async for execution in client.list_workflows("ExecutionStatus = 'Running'")
    ]
    for case_id in running:
        handle = client.get_workflow_handle(case_id)
        with contextlib.suppress(RPCError):
            pending = (await handle.describe()).raw_description.pending_activities
            for attempt in pending:
                started_at = attempt.last_started_time.ToDatetime(tzinfo=UTC)
                if attempt.state != PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                    continue
                if started_at >= killed_at:
                    continue  # the new worker's own attempt
                dead = client.get_async_activity_handle(
                    workflow_id=case_id, run_id=None, activity_id=attempt.activity_id
                )
                with contextlib.suppress(RPCError):  # finished or timed out meanwhile
                    await dead.fail(ApplicationError("the worker was killed"))
                    failed += 1
    return failed


# -- 2. the Temporal server killed with cases in flight and timers pending ---------------------


async def temporal_kill(stack: Stack, size: Size, repaired: asyncio.Event | None = None) -> Figures:
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
        # Their follow-up timers (1 s) come due while the server is down: each must fire once
        # after the restart (one survey each, checked with every other message).
        waiting = [c for c, status in driver.statuses.items() if status == "resolved"]
        stack.temporal.kill()
        down_at, killed_at = time.monotonic(), datetime.now(UTC)
        figures.notes["timers due while down"] = len(waiting)
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
        if size.expire_dead_attempts:
            # Calls the worker finished while the server was down: their completions are lost,
            # so the server would wait out their start-to-close timeout.
            expired = await _expire_dead_attempts(stack, killed_at)
            figures.notes["lost completions failed at once"] = expired
        if repaired is not None:
            repaired.set()
        await open_all(http, late, within=size.within)
        driver.case_ids += [o.case_id for o in late if o.case_id]
        await driving
        await driver.run(within=size.within)
        await landed(stack, driver, size, figures)
        figures.recover_seconds = time.monotonic() - restarted
        figures.seconds = time.monotonic() - started
    return await asyncio.to_thread(collect, figures, stack, [*openings, *late], driver)


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
        driver = await _drive(http, openings, size, figures)
        await landed(stack, driver, size, figures)
        figures.recover_seconds = time.monotonic() - restarted
        figures.seconds = time.monotonic() - started
    await asyncio.to_thread(collect, figures, stack, openings, driver)
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
            await landed(stack, driver, size, figures)
            figures.recover_seconds = time.monotonic() - back
            figures.seconds = time.monotonic() - started
    finally:
        payment.refund_status = "succeeded"
        for server in servers.values():
            server.start()  # (a no-op for a running one)
    await asyncio.to_thread(collect, figures, stack, openings, driver)
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
                await landed(stack, driver, size, figures)
                figures.recover_seconds = time.monotonic() - back
                figures.seconds = time.monotonic() - started
                figures.notes["API and worker restarts"] = (
                    stack.api.starts + stack.worker.starts - 2
                )
            await asyncio.to_thread(collect, figures, stack, [*openings, *late], driver)
    return figures


# -- 6. a read-only or full disk under the SQLite data dir (dev) -------------------------------


@contextlib.contextmanager
def own_disk(path: Path, size: str = "32m") -> Iterator[str]:
    """A small filesystem of its own at `path` (a tmpfs, as root) to fill up or make read-only;
    without the right to mount, the directory itself (read-only by its mode; no disk full)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
            capture_output=True,
            check=False,
        )
        mounted = done.returncode == 0
    try:
        yield "tmpfs" if mounted else "mode"
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)
        else:
            _chmod_tree(path, writable=True)


def _chmod_tree(path: Path, *, writable: bool) -> None:
    for item in [path, *path.rglob("*")]:
        mode = item.stat().st_mode
        item.chmod(mode | 0o200 if writable else mode & ~0o222)


def read_only(path: Path, disk: str, on: bool) -> None:
    """Make the data dir's filesystem read-only (or writable again)."""
    if disk == "tmpfs":
        flag = "ro" if on else "rw"
        subprocess.run(["mount", "-o", f"remount,{flag}", str(path)], check=True)
    else:
        _chmod_tree(path, writable=not on)


def fill(path: Path) -> Path:
    """Fill the filesystem at `path` to the last byte; answers the file to delete."""
    filler = path / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        # Unbuffered writes, big then small, until not one byte more fits.
        for block in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * block):
                    pass
    finally:
        os.close(fd)
    return filler


async def _attempt_during(
    http: httpx.AsyncClient, openings: list[Opening], rounds: int
) -> tuple[Counter[int], list[str]]:
    answers: Counter[int] = Counter()
    details: list[str] = []
    for _ in range(rounds):
        for opening in openings:
            try:
                response = await http.post(
                    "/v1/cases",
                    json=opening.body,
                    headers={**auth("storefront"), "Idempotency-Key": opening.key},
                )
            except httpx.HTTPError:
                answers[0] += 1
                continue
            answers[response.status_code] += 1
            if response.status_code >= 400:
                details.append(response.json().get("detail", ""))
        await asyncio.sleep(0.2)
    return answers, details


async def data_dir_faults(workdir: Path, size: Size) -> Figures:
    """The SQLite data dir fills up with cases in flight, then comes back read-only after a
    crash: opens answer a clear 503 naming the cause, nothing half-written stays behind (each
    refused open, replayed under its key once the disk is back, opens a new case), and every
    case finishes."""
    figures = Figures("SQLite data dir full, then read-only")
    data = workdir / "data"
    with own_disk(data) as disk:
        figures.notes["disk"] = disk
        async with running_stack(workdir, data_dir=data) as stack:
            flowing = plan(size.cases)
            refused_full = plan(max(2, size.cases // 3)) if disk == "tmpfs" else []
            refused_ro = plan(max(2, size.cases // 3))
            started = time.monotonic()
            rounds = max(1, int(size.outage / 2))
            async with stack.client(connections=32) as http:
                await open_all(http, flowing, within=size.within)
                driver = Driver(http, [o.case_id for o in flowing if o.case_id])
                driving = asyncio.create_task(driver.run(within=size.within + 2 * size.outage))
                if refused_full:
                    # Full while cases are in flight: the worker's writes fail and retry too.
                    filler = await asyncio.to_thread(fill, data)
                    try:
                        answers, details = await _attempt_during(http, refused_full, rounds)
                    finally:
                        filler.unlink()
                    figures.notes["disk-full answers"] = dict(answers)
                    figures.notes["disk-full detail"] = details[0] if details else "-"
                    if set(answers) != {503} or not any("full" in d for d in details):
                        figures.violations.append(f"disk full: {dict(answers)} {details[:2]}")
                # Read-only as after a disk error: the kernel remounts it so, the processes
                # holding it crash, and come back to a read-only dir. They refuse to start, in
                # one line naming the dir and the cause; the opens meanwhile find no API.
                stack.api.kill()
                stack.worker.kill()
                killed_at = datetime.now(UTC)
                read_only(data, disk, True)
                try:
                    for service in (stack.api, stack.worker):
                        service.spawn()
                    answers, details = await _attempt_during(http, refused_ro, rounds)
                    # A read-only mount says so; without one, the mode refuses a non-root user.
                    cause = "Read-only file system" if disk == "tmpfs" else "Permission denied"
                    refusals: list[str] = []
                    for service in (stack.api, stack.worker):
                        assert service.process is not None
                        code = await asyncio.to_thread(service.process.wait, 60)
                        said = service.tail(600).rsplit("=== start", 1)[-1]
                        refusals.append(said.strip().splitlines()[-1])
                        if code != 1 or cause not in said or "Traceback" in said:
                            figures.violations.append(f"{service.name} on read-only: {code} {said}")
                    dev = await asyncio.create_subprocess_exec(
                        *AFTERSALES,
                        "dev",
                        "--data-dir",
                        str(data),
                        "--api-port",
                        str(free_port()),
                        "--temporal-port",
                        str(free_port()),
                        "--ui-port",
                        str(free_port()),
                        cwd=ROOT,
                        env=stack.env,
                        stdout=asyncio.subprocess.PIPE,
                        stderr=asyncio.subprocess.STDOUT,
                    )
                    out, _ = await asyncio.wait_for(dev.communicate(), 60)
                    said = out.decode(errors="replace")
                    refusals.append(said.strip().splitlines()[-1] if said.strip() else "")
                    if dev.returncode != 1 or cause not in said or "Traceback" in said:
                        figures.violations.append(f"dev on read-only: {dev.returncode} {said}")
                finally:
                    stack.api.kill()
                    stack.worker.kill()
                    read_only(data, disk, False)
                figures.notes["read-only open answers"] = dict(answers)
                figures.notes["read-only refusals"] = "; ".join(
                    line.replace(str(data.resolve()), "DIR") for line in refusals
                )
                if answers[500]:
                    figures.violations.append(f"read-only: {dict(answers)} {details[:2]}")
                stack.worker.spawn()
                stack.api.spawn()
                await stack.worker.wait_ready()
                await stack.api.wait_ready()
                back = time.monotonic()
                if size.expire_dead_attempts:
                    expired = await _expire_dead_attempts(stack, killed_at)
                    figures.notes["dead attempts failed at once"] = expired
                # Nothing was written for a refused open: its replay opens the case afresh.
                replays = [*refused_full, *refused_ro]
                await open_all(http, replays, within=size.within)
                halves = [o.key for o in replays if o.answers[-1] != 201]
                if halves:
                    figures.violations.append(f"refused opens left a case behind: {halves}")
                driver.case_ids += [o.case_id for o in replays if o.case_id]
                await driving
                await driver.run(within=size.within)
                await landed(stack, driver, size, figures)
                figures.recover_seconds = time.monotonic() - back
                figures.seconds = time.monotonic() - started
            await asyncio.to_thread(collect, figures, stack, [*flowing, *replays], driver)
    return figures


Scenario = Callable[[Stack, Size], Awaitable[Figures]]
