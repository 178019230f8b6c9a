"""The agent console over HTTP: sign-in, CSRF, throttling, the queue, a case's actions, bulk.

Sign-in, cookies and languages don't depend on the database (the store's own tests cover
accounts on both): they run on SQLite. The queue, actions and bulk run on both.

The browser tests (tests/test_console_browser.py) use the pages as a person would; these
check what a browser can't show: cookies' flags, status codes, and refusals.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from domain.names import AgentRole
from store import accounts
from tests.api.conftest import Api
from tests.api.test_actions import OPENED_MUG
from tests.support.simulation_cases import write_case

PASSWORD = "a long enough password"


def add_agent(api: Api, role: AgentRole = AgentRole.AGENT, locale: str = "en") -> str:
    """A new agent's email (their password is PASSWORD)."""
    email = f"console-{secrets.token_hex(4)}@shop.example"
    with Session(api.engine) as session:
        accounts.add_agent(
            session, email=email, name=f"Agent {email[8:16]}", role=role, password=PASSWORD,
            queues=["customer_service"], locale=locale,
        )  # fmt: skip
        session.commit()
    return email


def form_token(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def sign_in(
    browser: httpx.AsyncClient, email: str, password: str = PASSWORD
) -> httpx.Response:
    """Fetch the sign-in form and post it, as a browser would."""
    page = await browser.get("/console/login")
    assert page.status_code == 200
    return await browser.post(
        "/console/login",
        data={"email": email, "password": password, "csrf_token": form_token(page.text)},
    )


@pytest.fixture
async def browser(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
        yield client


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_sign_in_sets_a_safe_cookie_and_sign_out_ends_the_session(
    api: Api, browser: httpx.AsyncClient
) -> None:
    email = add_agent(api)
    # No session: the queue sends the browser to the sign-in form, and back after.
    first = await browser.get("/console")
    assert first.status_code == 303 and first.headers["location"] == "/console/login?next=/console"
    signed_in = await sign_in(browser, email)
    assert signed_in.status_code == 303 and signed_in.headers["location"] == "/console"
    cookie = signed_in.headers["set-cookie"]
    assert "aftersales_console=" in cookie
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie
    queue = await browser.get("/console")
    assert (queue.status_code == 200 and email in queue.text) or "Agent" in queue.text
    assert queue.headers["cache-control"] == "no-store"
    assert "script-src" not in queue.headers["content-security-policy"]  # default-src 'self'
    assert "default-src 'self'" in queue.headers["content-security-policy"]

    # Signing out needs the session's CSRF token.
    refused = await browser.post("/console/logout")
    assert refused.status_code == 403
    out = await browser.post("/console/logout", data={"csrf_token": form_token(queue.text)})
    assert out.status_code == 303 and out.headers["location"] == "/console/login"
    # The old cookie is dead on the server too, not only cleared in this browser.
    async with httpx.AsyncClient(base_url=api.url, cookies=browser.cookies) as replay:
        replay.cookies.set("aftersales_console", signed_in.cookies["aftersales_console"])
        assert (await replay.get("/console")).status_code == 303


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_a_sign_in_without_its_form_token_or_with_a_wrong_password_fails(
    api: Api, browser: httpx.AsyncClient
) -> None:
    email = add_agent(api)
    forged = await browser.post(
        "/console/login", data={"email": email, "password": PASSWORD, "csrf_token": "forged"}
    )
    assert forged.status_code == 403 and "aftersales_console=" not in forged.headers.get(
        "set-cookie", ""
    )
    wrong = await sign_in(browser, email, "not the password")
    assert wrong.status_code == 401 and "Wrong email or password" in wrong.text


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_failed_sign_ins_are_throttled(api: Api, browser: httpx.AsyncClient) -> None:
    email = add_agent(api)
    for _ in range(accounts.FAILURES_ALLOWED):
        assert (await sign_in(browser, email, "guessing")).status_code == 401
    throttled = await sign_in(browser, email)
    assert throttled.status_code == 429 and "Too many failed sign-ins" in throttled.text


async def open_overdue(api: Api, customer_id: str) -> dict[str, Any]:
    """A case escalated for a missed deadline: a seller-booked pickup nobody collects (the
    test policy's carrier_pickup is 1s). Answers it once its record shows the breach."""
    case = await api.open(
        customer_id=customer_id,
        reason="defective",
        evidence=["https://shop.example/crack.jpg"],
        items=[{"sku": "LAMP", "category": "home", "unit_price": "1500.00"}],
    )
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while loop.time() < deadline:
        shown = await api.case(case["id"])
        if shown["sla_breached"]:
            return shown
        await asyncio.sleep(0.1)
    raise AssertionError(f"{case['id']} never breached")


async def test_the_queue_puts_overdue_cases_first_and_acts_as_the_agent(
    api: Api, browser: httpx.AsyncClient
) -> None:
    email = add_agent(api)
    customer = f"C-console-{secrets.token_hex(4)}"
    first = await api.open(customer_id=customer, items=OPENED_MUG)
    await api.reach(first["id"], "awaiting_review", recorded=True)
    late = await open_overdue(api, customer)
    await sign_in(browser, email)
    queue = await browser.get("/console", params={"q": customer})
    assert queue.status_code == 200
    listed = re.findall(r'id="row-([A-Z]-[A-Z0-9]+)"', queue.text)
    # Opened later, but past its deadline: it comes first, marked overdue.
    assert listed == [late["id"], first["id"]]
    assert f'<tr id="row-{late["id"]}" class="overdue breached">' in queue.text

    page = await browser.get(f"/console/cases/{first['id']}")
    assert page.status_code == 200
    assert 'data-action="approve"' in page.text and 'data-action="reject"' in page.text
    token = form_token(page.text)
    # A form without its required field answers the page with the error on that field.
    refused = await browser.post(
        f"/console/cases/{first['id']}/actions",
        data={"csrf_token": token, "action": "reject", "reason": ""},
    )
    assert refused.status_code == 422
    assert re.search(r'class="invalid">Reason \*.*?field-error', refused.text, re.S)
    # No CSRF token: refused before anything reaches the case.
    no_token = await browser.post(
        f"/console/cases/{first['id']}/actions", data={"action": "approve", "actor": "mallory"}
    )
    assert no_token.status_code == 403
    approved = await browser.post(
        f"/console/cases/{first['id']}/actions",
        data={"csrf_token": token, "action": "approve", "notes": "ok", "actor": "mallory"},
    )
    assert approved.status_code == 303
    case = await api.case(first["id"])
    assert case["status"] == "awaiting_shipment"
    assert [e["actor"] for e in case["timeline"] if e["kind"] == "approved"] == [email]
    # An approved case no longer waits on an agent.
    await api.reach(first["id"], "awaiting_shipment", recorded=True)
    listed = await browser.get("/console", params={"q": customer})
    assert re.findall(r'id="row-([A-Z]-[A-Z0-9]+)"', listed.text) == [late["id"]]
    # Choosing its status finds it all the same (as a supervisor finds a rejected case).
    shipping = await browser.get("/console", params={"q": customer, "status": "awaiting_shipment"})
    found = re.findall(r'id="row-([A-Z]-[A-Z0-9]+)"', shipping.text)
    assert first["id"] in found
    assert all(row["status"] == "awaiting_shipment" for row in [await api.case(i) for i in found])


async def test_bulk_assign_reports_each_case(api: Api, browser: httpx.AsyncClient) -> None:
    email = add_agent(api)
    waiting = [await api.open(items=OPENED_MUG) for _ in range(2)]
    for case in waiting:
        await api.reach(case["id"], "awaiting_review", recorded=True)
    await sign_in(browser, email)
    token = form_token((await browser.get("/console")).text)
    answer = await browser.post(
        "/console/bulk",
        data={"csrf_token": token, "action": "approve",
              "case_id": [waiting[0]["id"], "R-NOSUCH00", waiting[1]["id"]]},
    )  # fmt: skip
    assert answer.status_code == 200
    rows = re.findall(r'<tr class="(ok|failed)" data-case="([^"]+)"', answer.text)
    assert rows == [("ok", waiting[0]["id"]), ("failed", "R-NOSUCH00"), ("ok", waiting[1]["id"])]
    for case in waiting:
        assert (await api.case(case["id"]))["status"] == "awaiting_shipment"


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_a_zh_tw_agent_gets_the_console_in_zh_tw(
    api: Api, browser: httpx.AsyncClient
) -> None:
    email = add_agent(api, locale="zh-TW")
    await sign_in(browser, email)
    queue = await browser.get("/console")
    assert '<html lang="zh-TW">' in queue.text and "等待客服處理的案件" in queue.text
    # Before sign-in, the browser's language chooses.
    login = await browser.get("/console/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN">' in login.text and "登录" in login.text


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_no_api_key_or_token_opens_the_console(api: Api) -> None:
    # The console takes its session cookie only: a bearer key (even the agent role's, or an
    # agent's own token) never stands in for it, so no script can drive it without a login.
    for key in ("agent", "operator"):
        page = await api.request("GET", "/console", key, follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"].startswith("/console/login")
        posted = await api.request("POST", "/console/bulk", key, data={"action": "approve"})
        assert posted.status_code == 401


@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_a_case_page_shows_its_store_credit_and_drop_off_code(
    api: Api, browser: httpx.AsyncClient
) -> None:
    # A case written as the projection holds it (no workflow: the page reads the record).
    story = write_case(api.engine, opened=datetime.now(UTC), delivered_days=2, sku="SHIRT",
                  category="apparel", price="1000.00", resolution="store_credit")  # fmt: skip
    credit = {"amount": "1000.00", "bonus": "100.00", "currency": "TWD", "status": "issued",
              "kind": "store_credit", "credit_id": "sc_1", "code": "SC-7Q2K"}  # fmt: skip
    expires = (story.opened + timedelta(days=7)).isoformat()
    shipment = {"direction": "inbound", "booked_by": "seller", "tracking_number": "TRK1",
                "dropoff": {"code": "482913057716", "chain": "FamilyMart",
                            "expires_at": expires}}  # fmt: skip
    story.step(timedelta(hours=1), store_credit=credit, shipments=[shipment])
    await sign_in(browser, add_agent(api))
    page = await browser.get(f"/console/cases/{story.case_id}")
    assert page.status_code == 200
    credit_line = re.search(r'<p id="store-credit">(.*?)</p>', page.text, re.S)
    assert credit_line is not None
    assert "1100.00 TWD" in credit_line.group(1) and "SC-7Q2K" in credit_line.group(1)
    dropoff = re.search(r'<p id="dropoff">(.*?)</p>', page.text, re.S)
    assert dropoff is not None
    assert "FamilyMart" in dropoff.group(1) and "482913057716" in dropoff.group(1)
