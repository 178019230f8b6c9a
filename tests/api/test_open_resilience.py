"""Opening a case when things go wrong: racing opens, Temporal down, no worker (issue 9).

The API writes the case before it starts the workflow, so an open answers from what it
wrote: it never waits on the worker, a duplicate is refused atomically, and a key whose
workflow never started finishes that same case when it is sent again.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.client import Client

from aftersales.openings import OpeningSweeper
from api.app import create_app
from config.settings import Settings
from config.temporal import data_converter
from tests.api.conftest import POLICY, Api, assert_problem
from tests.support.factory import request_body
from tests.support.ports import free_port
from tests.support.serving import serving


def _body(**overrides: Any) -> dict[str, Any]:
    return request_body(now=datetime.now(UTC), **overrides)


@asynccontextmanager
async def _other_api(
    api: Api, client: Client, settings: Settings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """The same API on the same database, with another Temporal client or settings."""
    app = create_app(settings or api.settings, client=client, engine=api.engine, policy_=POLICY)
    async with serving(app) as url, httpx.AsyncClient(base_url=url, timeout=60) as http:
        yield http


async def _temporal_down() -> Client:
    """A client for a Temporal server that isn't there: every call fails to connect."""
    return await Client.connect(
        f"127.0.0.1:{free_port()}", lazy=True, data_converter=data_converter
    )


async def test_identical_opens_at_once_give_one_case_and_one_409(api: Api) -> None:
    for _ in range(3):  # a race can go either way: run it a few times
        body = _body()
        first, second = await asyncio.gather(
            api.request("POST", "/v1/cases", "storefront", json=body),
            api.request("POST", "/v1/cases", "storefront", json=body),
        )
        answers = sorted([first, second], key=lambda r: r.status_code)
        assert [r.status_code for r in answers] == [201, 409], [r.text for r in answers]
        case = answers[0].json()
        problem = assert_problem(answers[1], 409, type_suffix="duplicate-case")
        assert problem["case_id"] == case["id"]
        listed = await api.request(
            "GET", "/v1/cases", "agent", params={"order_id": body["order"]["id"]}
        )
        assert [c["id"] for c in listed.json()["items"]] == [case["id"]]


async def test_same_key_at_once_gives_the_same_case(api: Api) -> None:
    key = f"idem-{secrets.token_hex(8)}"
    body = _body()
    answers = await asyncio.gather(
        *(
            api.request(
                "POST", "/v1/cases", "storefront", json=body, headers={"Idempotency-Key": key}
            )
            for _ in range(3)
        )
    )
    assert sorted(r.status_code for r in answers) == [200, 200, 201], [r.text for r in answers]
    assert len({r.json()["id"] for r in answers}) == 1
    listed = await api.request(
        "GET", "/v1/cases", "agent", params={"order_id": body["order"]["id"]}
    )
    assert [c["id"] for c in listed.json()["items"]] == [answers[0].json()["id"]]


async def test_key_whose_start_failed_finishes_the_same_case(api: Api) -> None:
    key = f"idem-{secrets.token_hex(8)}"
    body = _body()
    headers = {"Idempotency-Key": key, **api.auth("storefront")}
    async with _other_api(api, await _temporal_down()) as down:
        # The case is written, its workflow can't start: 503, never a 500.
        failed = await down.post("/v1/cases", json=body, headers=headers)
        problem = assert_problem(failed, 503, type_suffix="temporal-unavailable")
        assert failed.headers.get("retry-after")
        assert "Temporal" in problem["detail"]
        # Still down: the key answers 503 again, never 404.
        again = await down.post("/v1/cases", json=body, headers=headers)
        assert_problem(again, 503, type_suffix="temporal-unavailable")
        # Reads answer from the record meanwhile; actions need Temporal.
        listed = await down.get(
            "/v1/cases", params={"order_id": body["order"]["id"]}, headers=api.auth("agent")
        )
        assert listed.status_code == 200, listed.text
        [written] = listed.json()["items"]
        assert written["status"] == "open"
        case_id = written["id"]
        read = await down.get(f"/v1/cases/{case_id}", headers=api.auth("agent"))
        assert read.status_code == 200 and read.json()["status"] == "open"
        note = await down.post(
            f"/v1/cases/{case_id}/actions",
            json={"action": "note", "message": "hello"},
            headers=api.auth("agent"),
        )
        assert_problem(note, 503, type_suffix="temporal-unavailable")

    # Temporal is back: the same key answers the same case and starts it.
    replay = await api.request(
        "POST", "/v1/cases", "storefront", json=body, headers={"Idempotency-Key": key}
    )
    assert replay.status_code == 200, replay.text
    assert replay.json()["id"] == case_id
    moved = await api.reach(case_id, "awaiting_shipment")
    assert [e["kind"] for e in moved["timeline"]].count("opened") == 1


async def test_keyless_open_whose_start_failed_is_started_by_the_worker(api: Api) -> None:
    body = _body()
    async with _other_api(api, await _temporal_down()) as down:
        failed = await down.post("/v1/cases", json=body, headers=api.auth("storefront"))
        assert_problem(failed, 503, type_suffix="temporal-unavailable")
        listed = await down.get(
            "/v1/cases", params={"order_id": body["order"]["id"]}, headers=api.auth("agent")
        )
        [written] = listed.json()["items"]
        assert written["status"] == "open"
    case_id = written["id"]

    # The storefront never retries. The worker's sweeper leaves a fresh open alone (the API
    # may be starting it right now), and starts it once it is older than its grace.
    sweeper = OpeningSweeper(
        engine=api.engine, client=api.env.client, task_queue=api.settings.task_queue
    )
    assert await sweeper.sweep() == []
    later = datetime.now(UTC) + sweeper.grace + timedelta(seconds=1)
    assert await sweeper.sweep(now=later) == [case_id]
    moved = await api.reach(case_id, "awaiting_shipment")
    assert [e["kind"] for e in moved["timeline"]].count("opened") == 1
    # Recorded by its worker: nothing left to sweep, and the item's claim is the case's.
    assert await sweeper.sweep(now=later) == []
    again = await api.request("POST", "/v1/cases", "storefront", json=body)
    assert_problem(again, 409, type_suffix="duplicate-case")
    assert again.json()["case_id"] == case_id


async def test_open_without_a_worker_answers_at_once_and_refuses_a_duplicate(api: Api) -> None:
    # A task queue no worker polls: the workflow starts and then waits.
    idle = api.settings.model_copy(update={"task_queue": f"no-worker-{secrets.token_hex(4)}"})
    body = _body()
    async with _other_api(api, api.env.client, idle) as http:
        headers = api.auth("storefront")
        opened = await http.post("/v1/cases", json=body, headers=headers)
        assert opened.status_code == 201, opened.text
        case = opened.json()
        assert case["status"] == "open"
        try:
            read = await http.get(f"/v1/cases/{case['id']}", headers=api.auth("agent"))
            assert read.status_code == 200, read.text
            assert read.json()["status"] == "open"
            assert read.json()["status_url"] == case["status_url"]
            # The same request again, no key: the written case holds the item.
            again = await http.post("/v1/cases", json=body, headers=headers)
            problem = assert_problem(again, 409, type_suffix="duplicate-case")
            assert problem["case_id"] == case["id"]
            listed = await http.get(
                "/v1/cases", params={"order_id": body["order"]["id"]}, headers=api.auth("agent")
            )
            assert [c["id"] for c in listed.json()["items"]] == [case["id"]]
            # The workflow runs, waiting for a worker.
            described = await api.env.client.get_workflow_handle(case["id"]).describe()
            assert described.task_queue == idle.task_queue
        finally:
            await api.env.client.get_workflow_handle(case["id"]).terminate("test over")
