"""The bench's baselines: workflows with no service code around the Temporal work of a case.

`BareWorkflow` runs a case's count of activities as no-ops, with its timers; `SameWorkflow`
runs the service's own activities with the inputs one case sent them, in the same order,
with the same timers (bench/scripts.py).

A module of its own, as small as a minimal SDK app's: the default sandbox imports a
workflow's module afresh for every run, so the baseline must not pay for the bench's own
code (`bench/run.py` cost the bare worker about 16% of its CPU this way).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    # `from bench.scripts import`, not `from bench import scripts`: a submodule named in a
    # fromlist is imported past the sandbox's import hook, as a fresh (empty) copy.
    from bench.scripts import SCRIPTS

ACTIVITY_TIMEOUT = timedelta(seconds=60)


@activity.defn(name="bench_noop")
async def noop(step: int) -> int:
    """Do nothing, so the activity costs only what Temporal charges for one."""
    return step


@dataclass
class Shape:
    """The Temporal work in one workflow run: what the bare workflow repeats."""

    activities: int
    timers: int


def _chunks(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` sizes that differ by at most one."""
    size, extra = divmod(total, parts)
    return [size + (1 if i < extra else 0) for i in range(parts)]


@workflow.defn(name="BenchBareWorkflow")
class BareWorkflow:
    """A case's count of activities and timers, with no service code around them."""

    @workflow.run
    async def run(self, shape: Shape) -> int:
        """Run the no-op activities one by one, with the 1 s timers spread between them."""
        done = 0
        for chunk, size in enumerate(_chunks(shape.activities, shape.timers + 1)):
            for _ in range(size):
                await workflow.execute_activity(noop, done, start_to_close_timeout=ACTIVITY_TIMEOUT)
                done += 1
            if chunk < shape.timers:
                await asyncio.sleep(1)
        return done


@workflow.defn(name="BenchSameWorkflow")
class SameWorkflow:
    """One case's activity calls (its inputs passed through unconverted) and timers."""

    @workflow.run
    async def run(self, key: str) -> int:
        """Replay the case's steps in order; answers how many activities ran."""
        done = 0
        for name, payload in SCRIPTS[key]:
            if payload is None:  # a timer
                await asyncio.sleep(1)
                continue
            await workflow.execute_activity(
                name, args=[RawValue(payload)], start_to_close_timeout=ACTIVITY_TIMEOUT
            )
            done += 1
        return done
