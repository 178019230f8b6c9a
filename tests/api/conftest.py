"""The API on a real stack: Temporal dev server, worker, uvicorn over real HTTP, two databases.

One dev server serves the whole session. The `api` fixture is parametrized by database, so
every API test runs once on SQLite and once on PostgreSQL; each database gets its own
worker (on its own task queue) and its own uvicorn server, reused by all its tests.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from activities.connectors import connectors_from_settings
from aftersales.binaries import find
from aftersales.temporal import search_attribute_keys
from aftersales.worker import build_worker
from api.app import create_app
from config.settings import Settings
from domain.policy import DEFAULT_TIMERS, Policy
from store.db import make_engine, migrate
from tests.api.postgres import SEARCHED, PostgresServer, find_bin_dir
from tests.conftest import stack_settings
from tests.support.factory import request_body
from tests.support.http_peers import Peers
from tests.support.mail import MailSink
from tests.support.ports import free_port
from tests.support.serving import serving

KEYS = {
    "storefront": "sf-test-key",
    "agent": "agent-test-key",
    "integration": "integration-test-key",
    "operator": "operator-test-key",
}
PROBLEM_JSON = "application/problem+json"
# The default policy, except that a seller-booked pickup nobody collects breaches in seconds:
# the one way a test can see a real SLA breach (and an overdue case) in real time. Only
# seller-fault returns book pickups, and only tests that want the breach open those.
# A complaint's follow-up comes seconds after its resolution (not 24 hours), so a test can
# follow a complaint to its close in real time; only complaints use that timer.
# A category and a peak season no other test's items or order dates meet (issue 11: the dry
# run and the opened case read them; tests/api/test_policy_seasons.py).
POLICY = Policy.model_validate(
    {
        "timers": {**DEFAULT_TIMERS, "carrier_pickup": "1s", "complaint_follow_up": "3s"},
        "categories": {"bulky": {"window_days": 10}},
        "peak_seasons": [
            {
                "name": "Test season",
                "orders_from": "2020-01-01",
                "orders_until": "2020-01-31",
                "extra_return_days": 14,
                "timers": {"review": "3bd"},
            }
        ],
    }
)


@pytest.fixture(scope="session")
async def dev_server() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server (the `temporal` CLI), with the case search attributes."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=find("temporal"),
        data_converter=pydantic_data_converter,
        search_attributes=search_attribute_keys(),
        ui=False,
        port=free_port(),
    )
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server of our own in a temp dir; missing binaries fail, never skip."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail(
            f"PostgreSQL is not installed (looked for {SEARCHED}); the API suite runs on it too. "
            "Install it (Debian: apt-get install postgresql; .ci/run does this).",
            pytrace=False,
        )
    with PostgresServer(bin_dir) as server:
        yield server.url


@dataclass
class Api:
    """The API served over real HTTP, with the worker behind it and the peers it talks to."""

    db: str
    http: httpx.AsyncClient
    url: str
    settings: Settings
    engine: Engine
    env: WorkflowEnvironment
    peers: Peers
    mail: MailSink

    @staticmethod
    def auth(who: str | None) -> dict[str, str]:
        """The Authorization header of a role, a raw key or token, or none."""
        if who is None:
            return {}
        return {"Authorization": f"Bearer {KEYS.get(who, who)}"}

    async def request(
        self, method: str, path: str, who: str | None = "agent", **kwargs: Any
    ) -> httpx.Response:
        headers = {**self.auth(who), **kwargs.pop("headers", {})}
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def open(
        self, who: str = "storefront", headers: dict[str, str] | None = None, **overrides: Any
    ) -> dict[str, Any]:
        """Open a case (a fresh return unless overridden) and answer the case; asserts 201."""
        body = request_body(now=datetime.now(UTC), **overrides)
        response = await self.request("POST", "/v1/cases", who, json=body, headers=headers or {})
        assert response.status_code == 201, response.text
        case: dict[str, Any] = response.json()
        return case

    async def case(self, case_id: str, who: str = "agent") -> dict[str, Any]:
        """GET the case; asserts 200."""
        response = await self.request("GET", f"/v1/cases/{case_id}", who)
        assert response.status_code == 200, response.text
        case: dict[str, Any] = response.json()
        return case

    async def reach(
        self, case_id: str, status: str, *, timeout: float = 20, recorded: bool = False
    ) -> dict[str, Any]:
        """Poll GET until the case shows `status` (with `recorded`, until its record does too)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last: Any = None
        while loop.time() < deadline:
            response = await self.request("GET", f"/v1/cases/{case_id}", "agent")
            last = response.json()
            if (
                response.status_code == 200
                and last["status"] == status
                and (not recorded or await self._listed_as(case_id, status))
            ):
                return dict(last)
            await asyncio.sleep(0.05)
        raise AssertionError(f"case {case_id} did not reach {status}; last answer: {last}")

    async def _listed_as(self, case_id: str, status: str) -> bool:
        # The list reads the record the worker writes; it trails the live state a little.
        order = (await self.case(case_id))["order"]["id"]
        response = await self.request("GET", "/v1/cases", "operator", params={"order_id": order})
        return any(c["id"] == case_id and c["status"] == status for c in response.json()["items"])

    async def event(self, case_id: str, type: str, event_id: str | None = None, **data: Any) -> str:
        """Report an integration event; asserts 202 and answers its event_id."""
        event_id = event_id or f"ev-{secrets.token_hex(6)}"
        body = {
            "event_id": event_id,
            "type": type,
            "occurred_at": datetime.now(UTC).isoformat(),
            "data": data,
        }
        response = await self.request(
            "POST", f"/v1/cases/{case_id}/events", "integration", json=body
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": True, "event_id": event_id}
        return event_id


def token_of(case: dict[str, Any]) -> str:
    """The customer's bearer token: the last path segment of the status URL."""
    return str(case["status_url"]).rstrip("/").rsplit("/", 1)[-1]


def assert_problem(
    response: httpx.Response,
    status: int,
    *,
    field: str | None = None,
    type_suffix: str | None = None,
) -> dict[str, Any]:
    """The answer is an RFC 9457 problem with this status (naming `field`, of a type ending so)."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    if type_suffix is not None:
        assert body["type"].endswith(type_suffix), body
    if field is not None:
        fields = [error["field"] for error in body.get("errors", [])]
        assert field in fields, f"expected an error on {field!r}, got {fields}: {body}"
    return body


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def api(
    request: pytest.FixtureRequest,
    dev_server: WorkflowEnvironment,
    http_peers: Peers,
    mail: MailSink,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Api]:
    """The whole stack on one database: worker with real activities, API under uvicorn."""
    db: str = request.param
    tmp = tmp_path_factory.mktemp(f"api-{db}")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    overrides: dict[str, Any] = {
        "task_queue": f"aftersales-api-{db}",
        "api_keys": ",".join(f"{role}:{key}" for role, key in KEYS.items()),
        "public_url": url,
    }
    if db == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    settings = stack_settings(tmp, http_peers, mail, **overrides)
    engine = make_engine(settings.database_url)
    migrate(engine)
    connectors = connectors_from_settings(settings)
    app = create_app(settings, client=dev_server.client, engine=engine, policy_=POLICY)
    with ThreadPoolExecutor(max_workers=16) as executor:
        worker = build_worker(
            dev_server.client,
            settings=settings,
            engine=engine,
            connectors=connectors,
            executor=executor,
        )
        async with (
            worker,
            serving(app, port=port),
            httpx.AsyncClient(base_url=url, timeout=60) as http,
        ):
            yield Api(db, http, url, settings, engine, dev_server, http_peers, mail)
    await connectors.aclose()
    engine.dispose()
