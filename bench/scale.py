"""The scale benchmark: the same load through one worker process, then two; a worker's memory
with 10k open cases waiting on timers; throughput as the stored cases grow from 1k to 100k.

`python -m bench.scale` runs on PostgreSQL (the service's database, started from Debian's
binaries as the API tests do) and one Temporal dev server. The API and each worker are separate
processes (`aftersales api`, `aftersales worker`), as a scaled deployment runs them. The load is
returns opened through `POST /v1/cases` at 50 in flight: each is approved by the policy, mails
the customer twice and comes to rest in `awaiting_shipment`, waiting on its
`customer_shipment` timer. A round ends when its last case is recorded there, so its figure
is cases carried from the request to their first wait per second, with every activity on the
way done.

The figures go to docs/benchmarks.md under "Scale". Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.api import (
    SCALE_MARKER,
    _env,
    _free_port,
    _root,
    _script,
    _until_ready,
    api_opens,
    cpu_seconds,
    dev_server,
    family,
    process,
    seed,
    until_quiet,
)

MARKER = SCALE_MARKER
ROUND_CASES = 300
IN_FLIGHT = 50
STORED = (1_000, 10_000, 100_000)
OPEN_CASES = 10_000
# A round whose cases don't all reach their first wait by then is reported as it stands.
ROUND_LIMIT_SECONDS = 600.0
WAITING = "awaiting_shipment"


@dataclass
class Round:
    """One round of the load: how many cases, through how many workers, with how many stored."""

    workers: int
    stored: int
    cases: int
    seconds: float = 0.0
    reached: int = 0
    errors: int = 0
    # CPU seconds per process group over the round: "api", "worker", "temporal".
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        """Cases carried to their first wait per second of wall time."""
        return self.reached / self.seconds if self.seconds else 0.0

    def cpu_per_case(self, group: str) -> float:
        """CPU milliseconds a process group spent per case."""
        return 1000 * self.cpu.get(group, 0.0) / self.reached if self.reached else 0.0


@dataclass
class Memory:
    """A worker's memory with this many open cases waiting on their timers."""

    open_cases: int
    rss_mib: float
    peak_mib: float
    temporal_rss_mib: float


@dataclass
class ScaleBench:
    """Everything one run measured."""

    rounds: list[Round] = field(default_factory=list)
    memory: Memory | None = None
    history_bytes: float = 0.0
    activities: float = 0.0
    load: list[tuple[float, float, float]] = field(default_factory=list)
    seconds: float = 0.0


def _status_mib(pid: int, key: str) -> float:
    """A /proc/<pid>/status figure (VmRSS, VmHWM) in MiB; 0 when the process is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) / 1024
    return 0.0


def waiting_since(database_url: str, since: datetime) -> int:
    """How many cases opened since `since` are recorded at their first wait."""
    from sqlalchemy import func, select

    from store.db import make_engine
    from store.tables import Case

    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                select(func.count())
                .select_from(Case)
                .where(Case.created_at >= since, Case.status == WAITING)  # type: ignore[arg-type]
            ).scalar_one()
            return int(found)
    finally:
        engine.dispose()


async def load_round(
    url: str, database_url: str, *, cases: int, groups: dict[str, list[int]], workers: int,
    stored: int,
) -> Round:  # fmt: skip
    """Open `cases` returns and wait until every one is recorded at its first wait."""
    result = Round(workers=workers, stored=stored, cases=cases)
    before = {name: cpu_seconds(pids) for name, pids in groups.items()}
    since = datetime.now(UTC)
    started = time.perf_counter()
    opened = await api_opens(url, cases, IN_FLIGHT)
    result.errors = len(opened.errors)
    expected = cases - result.errors
    deadline = started + ROUND_LIMIT_SECONDS
    while True:
        reached = await asyncio.to_thread(waiting_since, database_url, since)
        if reached >= expected or time.perf_counter() > deadline:
            break
        await asyncio.sleep(0.2)
    result.seconds = time.perf_counter() - started
    result.reached = reached
    result.cpu = {name: cpu_seconds(pids) - before[name] for name, pids in groups.items()}
    await until_quiet(groups["worker"] + groups["temporal"])
    return result


async def _per_case_history(client: Any, database_url: str) -> tuple[float, float]:
    """History bytes and activities of cases at their first wait (a sample of 20)."""
    from sqlalchemy import select

    from store.db import make_engine
    from store.tables import Case

    engine = make_engine(database_url)
    with engine.connect() as conn:
        ids = [
            row[0]
            for row in conn.execute(
                select(Case.id)
                .where(Case.status == WAITING, ~Case.id.startswith("R-B"))  # type: ignore[arg-type, attr-defined]
                .limit(20)
            )
        ]
    engine.dispose()
    sizes: list[int] = []
    activities: list[int] = []
    for case_id in ids:
        history = await client.get_workflow_handle(case_id).fetch_history()
        sizes.append(sum(event.ByteSize() for event in history.events))
        activities.append(
            sum(
                1
                for event in history.events
                if event.HasField("activity_task_scheduled_event_attributes")
            )
        )
    if not sizes:
        return 0.0, 0.0
    return sum(sizes) / len(sizes), sum(activities) / len(activities)


async def run(round_cases: int, stored: tuple[int, ...], open_cases: int) -> ScaleBench:
    """Start Temporal, PostgreSQL, the API and workers, and measure the rounds."""
    from tests.api.postgres import PostgresServer, find_bin_dir

    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("bench.scale needs PostgreSQL's binaries (Debian's postgresql package)")
    bench = ScaleBench()
    began = datetime.now(UTC)
    started = time.perf_counter()
    bench.load.append(os.getloadavg())
    env = await dev_server()
    address = env.client.service_client.config.target_host
    try:
        with (
            tempfile.TemporaryDirectory(prefix="aftersales-bench-scale-") as tmp,
            PostgresServer(bin_dir) as pg,
        ):
            data = Path(tmp)
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            service = _env(
                address=address, database_url=pg.url, data_dir=data, queue="bench-scale", port=port
            )
            script = _script()
            async with (
                process([script, "worker"], service, data / "worker-1.log") as first,
                process([script, "api"], service, data / "api.log") as api,
            ):
                await _until_ready(url)
                await api_opens(url, 20, 4)  # warm-up, and the row seeded cases are cloned from
                own = set(family(os.getpid()))
                groups = {
                    "api": family(api.pid),
                    "worker": family(first.pid),
                    "temporal": sorted(own - {os.getpid()} - set(family(api.pid))
                                       - set(family(first.pid))),
                }  # fmt: skip
                await until_quiet(groups["worker"] + groups["temporal"])

                # One worker, then two, on the same stored cases.
                seed(pg.url, stored[0])
                bench.rounds.append(
                    await load_round(
                        url, pg.url, cases=round_cases, groups=groups, workers=1, stored=stored[0]
                    )
                )
                async with process([script, "worker"], service, data / "worker-2.log") as second:
                    # A round not counted first: the second worker imports, fills its cache
                    # and polls before the measured one starts, as the first did.
                    await api_opens(url, 40, IN_FLIGHT)
                    await until_quiet(groups["worker"] + family(second.pid) + groups["temporal"])
                    both = {**groups, "worker": groups["worker"] + family(second.pid)}
                    bench.rounds.append(
                        await load_round(
                            url, pg.url, cases=round_cases, groups=both, workers=2, stored=stored[0]
                        )
                    )
                bench.history_bytes, bench.activities = await _per_case_history(env.client, pg.url)

                # One worker as the stored cases grow.
                for total in stored[1:]:
                    await asyncio.to_thread(seed, pg.url, total)
                    bench.rounds.append(
                        await load_round(
                            url, pg.url, cases=round_cases, groups=groups, workers=1, stored=total
                        )
                    )

                # Memory: open cases waiting on their timers, up to `open_cases` (the bench's
                # own: the seeded rows are records, no workflow stands behind them).
                waiting = await asyncio.to_thread(waiting_since, pg.url, began)
                more = max(0, open_cases - waiting)
                for _ in range(0, more, 1000):
                    await api_opens(url, min(1000, more), IN_FLIGHT)
                    more -= 1000
                deadline = time.perf_counter() + ROUND_LIMIT_SECONDS
                while time.perf_counter() < deadline:
                    waiting = await asyncio.to_thread(waiting_since, pg.url, began)
                    if waiting >= open_cases:
                        break
                    await asyncio.sleep(1)
                await until_quiet(groups["worker"] + groups["temporal"])
                bench.memory = Memory(
                    open_cases=waiting,
                    rss_mib=_status_mib(first.pid, "VmRSS"),
                    peak_mib=_status_mib(first.pid, "VmHWM"),
                    temporal_rss_mib=sum(_status_mib(pid, "VmRSS") for pid in groups["temporal"]),
                )
    finally:
        await env.shutdown()
        bench.load.append(os.getloadavg())
        bench.seconds = time.perf_counter() - started
    return bench


def render(bench: ScaleBench) -> str:
    """The benchmarks page's "Scale" section."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    one = next((r for r in bench.rounds if r.workers == 1), None)
    two = next((r for r in bench.rounds if r.workers == 2), None)
    lines = [
        MARKER,
        "",
        "## Scale",
        "",
        f"`python -m bench.scale`, run {when} in {bench.seconds / 60:.1f} min; load average "
        + " then ".join(f"{a:.1f}" for a, _, _ in bench.load)
        + ". PostgreSQL for the service, one Temporal dev server; the API and each worker a "
        "process of its own. Each round opens returns through the API at "
        f"{IN_FLIGHT} in flight and ends when its last case is recorded waiting in "
        f"`{WAITING}` (approved, two mails sent, its `customer_shipment` timer running).",
        "",
        "| workers | stored cases | cases | errors | seconds | cases/s | worker CPU ms/case | "
        "Temporal CPU ms/case | API CPU ms/case |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in bench.rounds:
        lines.append(
            f"| {r.workers} | {r.stored:,} | {r.reached:,}/{r.cases:,} | {r.errors} | "
            f"{r.seconds:.1f} | {r.per_second:.1f} | {r.cpu_per_case('worker'):.1f} | "
            f"{r.cpu_per_case('temporal'):.1f} | {r.cpu_per_case('api'):.1f} |"
        )
    lines.append("")
    if one and two and one.per_second:
        lines.append(
            f"- **Two workers against one: {two.per_second / one.per_second:.2f}x** the "
            f"throughput ({two.per_second:.1f} against {one.per_second:.1f} cases/s)."
        )
    by_stored = [r for r in bench.rounds if r.workers == 1]
    if len(by_stored) > 1 and by_stored[0].per_second:
        base = by_stored[0].per_second
        lines.append(
            "- **Throughput as stored cases grow** (one worker): "
            + ", ".join(f"{r.stored:,}: {r.per_second / base:.2f}x" for r in by_stored)
            + f" of the {by_stored[0].stored:,} figure."
        )
    if bench.memory:
        m = bench.memory
        lines.append(
            f"- **Worker memory with {m.open_cases:,} open cases waiting on timers: "
            f"{m.rss_mib:.0f} MiB RSS** (peak {m.peak_mib:.0f} MiB; target under 400 MiB); the "
            f"Temporal dev server beside it {m.temporal_rss_mib:.0f} MiB."
        )
    if bench.history_bytes:
        lines.append(
            f"- Per case at its first wait: {bench.history_bytes / 1024:.1f} KiB of history, "
            f"{bench.activities:.1f} activities."
        )
    lines += [
        "",
        "Both workers and the Temporal server share this machine's two cores with the API, so "
        "a second worker adds no CPU: its figure shows what polling and the sticky cache cost "
        "or save, not what a second machine would add. docs/scaling.md reads these figures.",
        "",
    ]
    return "\n".join(lines)


def write(out: Path, section: str) -> None:
    """Replace the Scale section of the benchmarks page (everything from its marker on)."""
    text = out.read_text(encoding="utf-8") if out.exists() else "# Benchmarks\n"
    head = text.split(MARKER, 1)[0].rstrip("\n")
    out.write_text(f"{head}\n\n{section}", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    """Run the scale benchmark and write its section of docs/benchmarks.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=ROUND_CASES, help="cases per round")
    parser.add_argument(
        "--stored", type=int, nargs="+", default=list(STORED), help="stored cases per round"
    )
    parser.add_argument("--open-cases", type=int, default=OPEN_CASES)
    parser.add_argument("--out", type=Path, default=_root() / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    bench = asyncio.run(run(args.cases, tuple(args.stored), args.open_cases))
    section = render(bench)
    print(section, flush=True)
    write(args.out, section)
    print(f"bench: wrote the Scale section of {args.out}", flush=True)


if __name__ == "__main__":
    main()
