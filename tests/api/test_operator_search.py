"""Operators find cases with the real `temporal` CLI by their search attributes (DESIGN 9)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from aftersales.binaries import find
from tests.api.conftest import Api

# Visibility on the dev server trails the workflow a little: poll for this long.
VISIBLE_WITHIN = 30.0


def _iso(moment: datetime) -> str:
    """A UTC time as the visibility query language takes it."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _address(env: WorkflowEnvironment) -> str:
    """The dev server's gRPC address."""
    return env.client.service_client.config.target_host


async def _run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run a command without blocking the loop the worker and API share."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def _listed(env: WorkflowEnvironment, query: str) -> set[str]:
    """The workflow IDs `temporal workflow list --query` answers, as an operator runs it."""
    code, out, err = await _run(
        find("temporal"),
        "workflow",
        "list",
        "--address",
        _address(env),
        "--namespace",
        env.client.namespace,
        "--query",
        query,
        "-o",
        "json",
    )
    assert code == 0, f"temporal workflow list --query {query!r} failed: {err}"
    rows: list[dict[str, Any]] = json.loads(out or "[]")
    return {row["execution"]["workflowId"] for row in rows}


async def _finds(env: WorkflowEnvironment, query: str, *case_ids: str) -> None:
    """Poll until the query lists every one of `case_ids`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + VISIBLE_WITHIN
    while True:
        found = await _listed(env, query)
        if set(case_ids) <= found:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{query!r} lists {sorted(found)}, not all of {case_ids}")
        await asyncio.sleep(0.3)


async def _breached(api: Api, case_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll until the case shows a missed deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        case = await api.case(case_id)
        if case["sla_breached"]:
            return case
        assert loop.time() < deadline, f"{case_id} never breached: {case}"
        await asyncio.sleep(0.1)


async def _open_every_type(api: Api) -> dict[str, dict[str, Any]]:
    """One case of each type, each on its own order."""
    delivered = datetime.now(UTC) - timedelta(days=400)
    return {
        # Seller's fault with a photo, above the returnless limit: the shop books a pickup
        # nobody collects, which under the test policy (carrier_pickup 1s) breaches the SLA.
        "return": await api.open(
            reason="defective",
            evidence=["https://shop.example/crack.jpg"],
            items=[{"sku": "LAMP", "category": "home", "unit_price": "1500.00"}],
        ),
        "exchange": await api.open(
            type="exchange",
            exchange_for=[{"sku": "TEE-L-BLK", "quantity": 1, "unit_price": "990.00"}],
        ),
        "refund": await api.open(
            type="refund", reason="defective", evidence=["https://x.test/1.jpg"]
        ),
        "repair": await api.open(
            type="repair",
            reason="defective",
            evidence=["https://cdn.example.com/evidence/hinge.jpg"],
            order={"delivered_at": delivered.isoformat(), "placed_at": delivered.isoformat()},
        ),
        "complaint": await api.open(
            type="complaint",
            reason=None,
            description="The seam came apart after one wash.",
            complaint={"category": "product_quality", "channel": "chat", "severity": "high"},
        ),
    }


# One database is enough: the search attributes live in Temporal, not in the case record.
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_every_case_type_is_found_by_its_search_attributes(api: Api) -> None:
    env = api.env
    cases = await _open_every_type(api)
    breached = await _breached(api, cases["return"]["id"])
    assert breached["status"] == "awaiting_shipment"

    for case_type, opened in cases.items():
        case_id, order = opened["id"], opened["order"]["id"]
        await _finds(env, f'CaseType="{case_type}" AND OrderId="{order}"', case_id)
        # The status moves on its own; ask for the one the case shows now until both agree.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + VISIBLE_WITHIN
        while True:
            status = (await api.case(case_id))["status"]
            query = f'CaseStatus="{status}" AND OrderId="{order}" AND ExecutionStatus="Running"'
            if case_id in await _listed(env, query):
                break
            assert loop.time() < deadline, f"{case_id} never listed as {status}"
            await asyncio.sleep(0.3)
    await _finds(env, 'CaseType="return"', cases["return"]["id"])
    await _finds(
        env,
        'CaseType IN ("exchange", "refund", "repair", "complaint")',
        *(cases[t]["id"] for t in ("exchange", "refund", "repair", "complaint")),
    )

    # The breached return is found by SlaBreached, and by its missed deadline still pending.
    return_id, return_order = breached["id"], breached["order"]["id"]
    await _finds(env, "SlaBreached=true", return_id)
    await _finds(env, f'SlaBreached=true AND OrderId="{return_order}"', return_id)
    now = datetime.now(UTC)
    await _finds(env, f'NextDeadline < "{_iso(now)}" AND ExecutionStatus="Running"', return_id)
    fresh = {t: c["id"] for t, c in cases.items() if t != "return"}
    assert not set(fresh.values()) & await _listed(env, "SlaBreached=true")

    # Every case waiting on a deadline is found by a window that ends after it.
    waiting = {
        case["id"]: case["deadlines"]
        for case in [await api.case(c["id"]) for c in cases.values()]
        if case["deadlines"]
    }
    assert set(fresh.values()) & waiting.keys(), "no fresh case waits on a deadline"
    latest = max(datetime.fromisoformat(d["due_at"]) for ds in waiting.values() for d in ds)
    await _finds(env, f'NextDeadline < "{_iso(latest + timedelta(minutes=1))}"', *waiting)


async def test_temporal_setup_is_idempotent(dev_server: WorkflowEnvironment) -> None:
    cli = str(Path(sys.executable).parent / "aftersales")
    env = {
        **os.environ,
        "AFTERSALES_TEMPORAL_ADDRESS": _address(dev_server),
        "AFTERSALES_TEMPORAL_NAMESPACE": dev_server.client.namespace,
    }
    first = await _run(cli, "temporal-setup", env=env)
    second = await _run(cli, "temporal-setup", env=env)
    assert first[0] == 0, first
    assert second[0] == 0, second
    # The session's dev server was started with the attributes, so both find them there.
    assert "search attributes already registered" in second[1], second
    assert "search attributes already registered" in first[1] or "added:" in first[1], first
