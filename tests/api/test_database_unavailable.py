"""A database that is down answers 503 `database-unavailable` with Retry-After, never a 500.

Found by the chaos suite (tests/chaos): with PostgreSQL restarting, opens answered 500 with a
traceback in the log. Here the app's database is a real PostgreSQL URL on a port where nothing
listens, so every connection is refused, as while the server restarts.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config.settings import Settings
from store.db import make_engine
from tests.api.conftest import KEYS, POLICY, assert_problem
from tests.support.factory import request_body
from tests.support.ports import free_port
from tests.support.serving import serving


async def test_a_refused_database_answers_503_not_500(dev_server: WorkflowEnvironment) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/aftersales"
    settings = Settings(
        database_url=url,
        api_keys=",".join(f"{role}:{key}" for role, key in KEYS.items()),
        task_queue="aftersales-db-down",
        dev_mode=True,
    )
    engine = make_engine(url)
    app = create_app(settings, client=dev_server.client, engine=engine, policy_=POLICY)
    headers = {"Authorization": f"Bearer {KEYS['storefront']}", "Idempotency-Key": "db-down-1"}
    try:
        async with serving(app) as base, httpx.AsyncClient(base_url=base, timeout=30) as http:
            opened = await http.post(
                "/v1/cases", json=request_body(now=datetime.now(UTC)), headers=headers
            )
            body = assert_problem(opened, 503, type_suffix="database-unavailable")
            assert "refused" in body["detail"].lower(), body
            assert opened.headers["retry-after"] == "5"
            listed = await http.get(
                "/v1/cases", headers={"Authorization": f"Bearer {KEYS['operator']}"}
            )
            assert_problem(listed, 503, type_suffix="database-unavailable")
    finally:
        engine.dispose()
