"""The OpenAPI document is a contract: schemathesis fuzzes the running API with every role's key.

Its CLI runs as a subprocess against the real stack (uvicorn, worker, Temporal dev server,
SQLite), once per role: storefront, agent, operator and integration keys and a customer's
case token. Every check runs (`--checks all`): no 5xx, no undocumented status or content
type, every response matching its schema, schema-valid input accepted and schema-invalid
input refused. The stateful phase follows the document's links from an opened case.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from tests.api.conftest import KEYS, POLICY, Api, token_of
from tests.support.serving import serving

ST = str(Path(sys.executable).with_name("st"))
ROOT = Path(__file__).resolve().parents[2]
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
# Test cases per operation and phase: enough to reach every status each operation sends, few
# enough that the five runs stay within ~40 s of wall time on two shared cores.
EXAMPLES = 8
SEED = 12
RUN_TIMEOUT = 120


@dataclass
class Run:
    """What one role's run did."""

    role: str
    operations: int
    requests: int
    server_errors: int
    failures: list[dict[str, Any]]
    output: str


# Each operation is fuzzed in depth (every phase, coverage included) with the key of one role
# that may call it (api.deps.require on each route), so no operation's depth is paid twice; with
# every other key it gets a shallow pass (a few cases: the refusal is documented, nothing
# leaks). The routes that take no bearer key (health, the signed carrier webhook, the status
# page) go with the customer's run.
IN_DEPTH = {
    "storefront": ["POST /v1/cases", "POST /v1/policy/evaluate"],
    "agent": [
        "GET /v1/cases",
        "POST /v1/cases/{case_id}/actions",
        "GET /v1/reports/summary",
        "GET /v1/reports/summary.csv",
    ],
    "operator": ["GET /v1/cases/{case_id}/notifications", "POST /v1/policy/simulate"],
    "integration": ["POST /v1/cases/{case_id}/events"],
    "customer": [
        "GET /v1/cases/{case_id}",
        "POST /v1/cases/{case_id}/customer-actions",
        "GET /status/{token}",
        "GET /status/{token}/dropoff.svg",
        "POST /status/{token}/actions",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
        "POST /v1/webhooks/carrier",
    ],
}
# Rules between values, which a schema can't state, so a schema-valid request may still be
# refused with 422 there (docs/decisions.md, "Issue 12: the OpenAPI contract"): a period's two
# ends in order and at most a year apart (reports, simulator); the items' total at most
# 100000000 (open, dry run); an inspection's result agreeing with its lines, each sku once
# (actions, events). Every other operation takes what its schema admits.
CROSS_FIELD = [
    "GET /v1/reports/summary",
    "GET /v1/reports/summary.csv",
    "POST /v1/policy/simulate",
    "POST /v1/cases",
    "POST /v1/policy/evaluate",
    "POST /v1/cases/{case_id}/actions",
    "POST /v1/cases/{case_id}/events",
]
# A schema-valid customer action is a Temporal update on the pinned case (which mostly refuses
# it, 409): the costliest request of the runs. Their coverage phase sends its schema-invalid
# boundary cases only (each a cheap 422); the valid actions come from the examples and fuzzing
# phases. The page's form takes the customer-actions schema, fuzzed in full there.
LIGHTER = {
    "POST /v1/cases/{case_id}/customer-actions": ['phases.coverage.generation.mode = "negative"'],
    "POST /status/{token}/actions": [
        'phases.coverage.generation.mode = "negative"',
        "generation.max-examples = 6",
    ],
}
POSITIVE = ["2xx", "3xx", "401", "403", "404", "409", "429"]
SHALLOW_EXAMPLES = 2


def config(role: str, case: dict[str, Any] | None) -> str:
    """The run's schemathesis.toml: the role's own operations in depth, the others shallowly;
    a customer's run pins the case its token opens."""
    # No string the API takes may hold NUL (PostgreSQL can't store it; api.deps refuses it with
    # 422 anywhere in a query or body, extra fields included), as the document says.
    lines = ["generation.allow-x00 = false", ""]
    if case is not None:
        lines += ["[parameters]", f'case_id = "{case["id"]}"', f'token = "{token_of(case)}"', ""]
    # One [[operations]] entry per operation, with every setting it takes.
    settings: dict[str, list[str]] = {}
    for name in CROSS_FIELD:
        statuses = [*POSITIVE, "422"]
        settings.setdefault(name, []).append(
            f"checks.positive_data_acceptance.expected-statuses = {statuses}"
        )
    for name in set(IN_DEPTH[role]) & set(LIGHTER):
        settings.setdefault(name, []).extend(LIGHTER[name])
    for name in {n for names in IN_DEPTH.values() for n in names} - set(IN_DEPTH[role]):
        settings.setdefault(name, []).extend(
            ["phases.coverage.enabled = false", f"generation.max-examples = {SHALLOW_EXAMPLES}"]
        )
    for name, entries in sorted(settings.items()):
        lines += ["[[operations]]", f'include-name = "{name}"', *entries, ""]
    return "\n".join(lines)


async def run_role(
    api: Api, url: str, role: str, key: str, tmp: Path, case: dict[str, Any] | None
) -> Run:
    """One schemathesis run with this key, its counts read from its JSON and HAR reports."""
    tmp.mkdir()
    env = os.environ | {
        # The hooks sign the carrier webhook's bodies, with this code's signing module.
        "SCHEMATHESIS_HOOKS": str(HOOKS),
        "CONTRACT_CARRIER_SECRET": api.settings.carrier_webhook_secret,
        "PYTHONPATH": str(ROOT),
    }
    cfg = tmp / "schemathesis.toml"
    cfg.write_text(config(role, case))
    report, har = tmp / "report.json", tmp / "requests.har"
    proc = await asyncio.create_subprocess_exec(
        ST,
        "--config-file",
        str(cfg),
        "--no-color",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--header",
        f"Authorization: Bearer {key}",
        "--report",
        "json,har",
        "--report-json-path",
        str(report),
        "--report-har-path",
        str(har),
        "--request-timeout",
        "30",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        # Its crash cache (.schemathesis/) stays in the run's own directory: a run never
        # replays another's failures.
        cwd=tmp,
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
    finally:
        if proc.returncode is None:
            proc.kill()
    output = out.decode(errors="replace")
    (tmp / "output.txt").write_text(output)
    assert report.exists(), output
    summary = json.loads(report.read_text())
    entries = json.loads(har.read_text())["log"]["entries"]
    return Run(
        role=role,
        operations=summary["operations"]["tested"],
        requests=len(entries),
        server_errors=sum(1 for e in entries if e["response"]["status"] >= 500),
        failures=summary["failures"] + summary["errors"],
        output=output,
    )


@pytest.mark.long
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_openapi_contract(api: Api, tmp_path: Path) -> None:
    """Every operation with every role's key: no 5xx, no conformance failure of any kind."""
    case = await api.open()
    roles: dict[str, tuple[str, dict[str, Any] | None]] = {
        role: (key, None) for role, key in KEYS.items()
    }
    roles["customer"] = (token_of(case), case)
    # The fuzzer is one client sending thousands of wrong tokens, what the guess limit stops
    # (a 429, declared on every route that takes a token; tests/api/test_token_guesses.py).
    # Here it is lifted, so each route's own answers are what the runs reach.
    settings = api.settings.model_copy(update={"token_guess_limit": 1_000_000})
    app = create_app(settings, client=api.env.client, engine=api.engine, policy_=POLICY)
    async with serving(app) as url:
        runs = await asyncio.gather(
            *(
                run_role(api, url, role, key, tmp_path / role, pinned)
                for role, (key, pinned) in roles.items()
            )
        )
    for run in runs:
        print(
            f"schemathesis [{run.role}]: {run.operations} operations, {run.requests} requests, "
            f"{run.server_errors} 5xx, {len(run.failures)} failures"
        )
    print(
        f"schemathesis [all roles]: {max(r.operations for r in runs)} operations, "
        f"{sum(r.requests for r in runs)} requests, {sum(r.server_errors for r in runs)} 5xx, "
        f"{sum(len(r.failures) for r in runs)} failures"
    )
    for run in runs:
        assert run.server_errors == 0 and not run.failures, f"[{run.role}]\n{run.output}"
        # Every operation ran, with requests to show for it.
        assert run.operations == 18 and run.requests > run.operations * 5, run.output
