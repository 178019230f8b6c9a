"""`make chaos`: the full chaos suite, each scenario on a fresh stack, with full counts.

Prints each scenario's figures as it ends, then the Markdown table; `--record FILE` also writes
the table into FILE between the chaos markers (docs/reliability.md, "## Chaos"). Exits 1 if a
scenario broke a guarantee or failed.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from tests.chaos import scenarios
from tests.chaos.checks import TABLE_HEADER, Figures
from tests.chaos.scenarios import Size
from tests.chaos.stack import Stack, running_stack

BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"
# The counts: 200 cases under a worker kill, 100 under a Temporal kill, a burst of 100
# keyed opens under an API kill; partners down for 20 s each (the retry policy's backoff,
# 2-4-8-16 s, reaches past it), PostgreSQL down for 10 s.
WORKER = Size(cases=200, burst=0, outage=0.0, within=900.0)
TEMPORAL = Size(cases=100, burst=0, outage=20.0, within=900.0)
API = Size(cases=0, burst=100, outage=0.0, within=600.0)
PARTNER = Size(cases=60, burst=0, outage=20.0, within=600.0)
POSTGRES = Size(cases=100, burst=0, outage=10.0, within=600.0)
DATA_DIR = Size(cases=30, burst=0, outage=6.0, within=600.0)

Run = Callable[[Path], Awaitable[Figures]]


def on_stack(scenario: Callable[[Stack], Awaitable[Figures]]) -> Run:
    """A scenario that runs on a fresh stack of its own."""

    async def run(workdir: Path) -> Figures:
        async with running_stack(workdir) as stack:
            return await scenario(stack)

    return run


SCENARIOS: list[tuple[str, Run]] = [
    ("worker", on_stack(lambda s: scenarios.worker_sigkill(s, WORKER))),
    ("temporal", on_stack(lambda s: scenarios.temporal_kill(s, TEMPORAL))),
    ("api", on_stack(lambda s: scenarios.api_kill(s, API))),
    ("payment", on_stack(lambda s: scenarios.partner_outage(s, PARTNER, ("payment",)))),
    ("carrier", on_stack(lambda s: scenarios.partner_outage(s, PARTNER, ("carrier",)))),
    ("webhook", on_stack(lambda s: scenarios.partner_outage(s, PARTNER, ("webhook",)))),
    ("postgres", lambda w: scenarios.postgres_restart(w, POSTGRES)),
    ("data-dir", lambda w: scenarios.data_dir_faults(w, DATA_DIR)),
]


def record(path: Path, heading: str, rows: list[str]) -> None:
    """Put the table between the chaos markers of `path`: these rows, and the rows of
    scenarios not run this time as they were."""
    text = path.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    fresh = {_scenario(row): row for row in rows}
    kept = [
        row
        for row in text[start:end].splitlines()
        if row.startswith("| ") and not row.startswith("| Scenario") and _scenario(row) not in fresh
    ]
    order = [name for name, _ in SCENARIOS]
    table = sorted([*kept, *rows], key=lambda row: _rank(_scenario(row), order))
    body = "\n".join([heading, "", TABLE_HEADER, *table])
    path.write_text(f"{text[:start]}\n{body}\n{text[end:]}")


def _scenario(row: str) -> str:
    return row.split("|")[1].strip()


def _rank(scenario: str, order: list[str]) -> int:
    # Rows keep the order of SCENARIOS (a row's scenario names its run, e.g. "partner outage:
    # payment" for "payment").
    for i, name in enumerate(order):
        if name in scenario.lower() or scenario.lower().startswith(name):
            return i
    return len(order)


async def main(names: list[str], record_to: Path | None) -> int:
    """Run the scenarios named (all by default); answers the exit code."""
    chosen = [(n, run) for n, run in SCENARIOS if not names or n in names]
    results: list[Figures] = []
    failed: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="aftersales-chaos-") as tmp:
        for name, run in chosen:
            print(f"[chaos] {name} ...", flush=True)
            try:
                figures = await run(Path(tmp) / name)
            except Exception:
                traceback.print_exc()
                failed.append(name)
                continue
            print(figures.summary(), flush=True)
            results.append(figures)
            if figures.violations:
                failed.append(name)
    took = time.monotonic() - started
    heading = (
        f"Last run {datetime.now(UTC):%Y-%m-%d} ({', '.join(n for n, _ in chosen)}), "
        f"{took / 60:.0f} min, on {platform.machine()} with {_cores()} cores; "
        f"failed: {', '.join(failed) or 'none'}."
    )
    rows = [f.row() for f in results]
    print("\n".join([heading, "", TABLE_HEADER, *rows]))
    if record_to is not None:
        record(record_to, heading, rows)
    return 1 if failed else 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument("scenario", nargs="*", help=f"of {', '.join(n for n, _ in SCENARIOS)}")
    parser.add_argument("--record", type=Path, help="write the table into this Markdown file")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.scenario, args.record)))
