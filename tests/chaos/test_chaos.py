"""The chaos suite's fast subset: one scenario of each kind, a few cases each (`make chaos` runs
the full set with hundreds). Each fails if a guarantee breaks: every case finishes, with one
refund per key and case, one copy of each message, no timer escalating twice, and its record
level with its workflow (tests/chaos/checks.py).

A SIGKILLed worker's leased webhook events wait out their lease (about 35 s) before another
worker posts them, so that scenario takes most of a minute whatever its size (the calls a kill
left open are failed at once: FAST.expire_dead_attempts): the other faults run meanwhile, the
process kills and the partner outage on the same stack (each on cases of its own), PostgreSQL
and the SQLite data dir on stacks of their own.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.chaos.checks import Figures
from tests.chaos.scenarios import (
    FAST,
    api_kill,
    data_dir_faults,
    partner_outage,
    postgres_restart,
    temporal_kill,
    worker_sigkill,
)
from tests.chaos.stack import log_tails, running_stack

pytestmark = pytest.mark.long


async def _repaired(task: asyncio.Task[Figures], repaired: asyncio.Event) -> None:
    """Wait until the scenario repaired its fault, or ended (failing) before it did."""
    waiting = asyncio.create_task(repaired.wait())
    await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if task.done():
        task.result()


def _kept(figures: list[Figures]) -> None:
    for each in figures:
        print(each.summary())
    broken = [f"{f.scenario}: {f.violations[:6]}" for f in figures if f.violations]
    assert not broken, "\n".join(broken)


async def _kills_and_outage(workdir: Path) -> list[Figures]:
    async with running_stack(workdir) as stack:
        try:
            worker_back, temporal_back = asyncio.Event(), asyncio.Event()
            worker = asyncio.create_task(worker_sigkill(stack, FAST, repaired=worker_back))
            await _repaired(worker, worker_back)
            temporal = asyncio.create_task(temporal_kill(stack, FAST, repaired=temporal_back))
            await _repaired(temporal, temporal_back)
            api = await api_kill(stack, FAST)
            partners = await partner_outage(stack, FAST, ("payment", "carrier", "webhook"))
            return [await worker, await temporal, api, partners]
        except BaseException:
            print(log_tails(stack))
            raise


async def test_every_kind_of_fault_keeps_every_guarantee(tmp_path: Path) -> None:
    # Three stacks at once: their minutes are mostly waits (the worker kill's above all), so
    # together they take little longer than the longest alone.
    results = await asyncio.gather(
        _kills_and_outage(tmp_path / "stack"),
        postgres_restart(tmp_path / "postgres", FAST),
        data_dir_faults(tmp_path / "sqlite", FAST),
        return_exceptions=True,
    )
    figures: list[Figures] = []
    for result in results:
        if isinstance(result, BaseException):
            for other in results:
                if isinstance(other, list | Figures):
                    print(other)
            raise result
        figures += result if isinstance(result, list) else [result]
    _kept(figures)
