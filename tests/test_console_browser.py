"""Agents work in the console in a real browser: sign in, the queue, a case, bulk, languages,
a supervisor's exception, store credit and drop-off lines, reports and the policy simulator.

Headless Chromium (Debian's `chromium`, driven by Playwright, as in tests/test_temporal_ui.py)
against the whole API stack of tests/api/conftest.py, on SQLite. The screenshots docs/console.md
shows go to $AFTERSALES_SCREENSHOTS when it is set (`make screenshots` sets it to docs/console),
else to the test's temporary directory.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect

from domain.names import AgentRole
from domain.policy import Policy, ReturnsPolicy

# The API stack's fixtures, shared with this module (importing them is how pytest shares them).
from tests.api.conftest import Api, api, dev_server, postgres_url, token_of  # noqa: F401
from tests.api.test_actions import OPENED_MUG
from tests.api.test_console import PASSWORD, add_agent, open_overdue
from tests.support import simulation_cases
from tests.support.report_cases import seed
from tests.test_temporal_ui import UI_TIMEOUT_MS

pytestmark = pytest.mark.parametrize("api", ["sqlite"], indirect=True)
MAY_2025 = datetime(2025, 5, 1, tzinfo=UTC)
# The simulator's seeded history goes in a month no other test of the stack opens cases in.
JUNE_2020 = datetime(2020, 6, 1, tzinfo=UTC)


def _shots(tmp_path: Path) -> Path:
    where = Path(os.environ.get("AFTERSALES_SCREENSHOTS") or tmp_path)
    where.mkdir(parents=True, exist_ok=True)
    return where


async def _signed_in(
    browser: Browser,
    api: Api,  # noqa: F811
    email: str,
    *,
    width: int = 1280,
    locale: str = "en-US",
) -> Page:
    context = await browser.new_context(viewport={"width": width, "height": 900}, locale=locale)
    page = await context.new_page()
    page.set_default_timeout(UI_TIMEOUT_MS)
    await page.goto(f"{api.url}/console")
    # No session yet: the console asks for one, and comes back after.
    await page.wait_for_url(f"{api.url}/console/login?next=/console")
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", PASSWORD)
    await page.locator("form button[type=submit]").click()
    await page.wait_for_url(f"{api.url}/console")
    return page


async def test_an_agent_signs_in_takes_the_overdue_case_first_and_sees_it_move(
    api: Api,  # noqa: F811
    chromium: Browser,
    tmp_path: Path,
) -> None:
    email = add_agent(api)
    customer = f"C-browser-{secrets.token_hex(4)}"
    review = await api.open(customer_id=customer, items=OPENED_MUG)
    await api.reach(review["id"], "awaiting_review", recorded=True)
    late = await open_overdue(api, customer)
    page = await _signed_in(chromium, api, email)

    await page.fill("input[name=q]", customer)
    await page.get_by_role("button", name="Filter").click()
    rows = page.locator("#queue-rows tr")
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_have_id(f"row-{late['id']}")
    await expect(rows.first.locator("time.countdown")).to_contain_text("overdue by")
    await page.screenshot(path=str(_shots(tmp_path) / "queue.png"), full_page=True)

    await page.get_by_role("link", name=review["id"]).click()
    await page.wait_for_url(f"{api.url}/console/cases/{review['id']}")
    await expect(page.locator("#case-status")).to_have_text("Awaiting review")
    approve = page.locator('form[data-action="approve"]')
    await approve.locator("textarea[name=notes]").fill("Photos match the description.")
    await approve.get_by_role("button", name="Approve").click()
    await page.wait_for_url(f"{api.url}/console/cases/{review['id']}")
    await expect(page.locator("#case-status")).to_have_text("Awaiting shipment")
    await expect(page.locator(".timeline")).to_contain_text(email)
    await page.screenshot(path=str(_shots(tmp_path) / "case.png"), full_page=True)

    # From here the page is not reloaded: the customer ships, the carrier scans the parcel,
    # and the page follows the case by itself.
    await page.evaluate("window.stayedOnThisPage = true")
    shipped = await api.request(
        "POST",
        f"/v1/cases/{review['id']}/customer-actions",
        token_of(review),
        json={"action": "provide_tracking", "carrier": "Black Cat",
              "tracking_number": f"BC{secrets.token_hex(5)}"},
    )  # fmt: skip
    assert shipped.status_code == 200, shipped.text
    number = shipped.json()["shipments"][0]["tracking_number"]
    await api.event(review["id"], "carrier.picked_up", tracking_number=number)
    await expect(page.locator("#case-status")).to_have_text("In transit")
    assert await page.evaluate("window.stayedOnThisPage") is True

    # The next case of the day: a shirt paid back in store credit with a 10% bonus, on its way
    # from a FamilyMart counter. Written as the worker projects it (this stack's policy offers
    # no drop-off), so the page shows it without a workflow behind it.
    policy = Policy(returns=ReturnsPolicy(return_methods=["pickup", "ship", "dropoff"],
                                          store_credit_bonus_percent=Decimal(10)))  # fmt: skip
    opened = datetime.now(UTC) - timedelta(days=1)
    story = simulation_cases.write_case(
        api.engine, opened=opened, delivered_days=2, sku="SHIRT", category="apparel",
        price="1000.00", resolution="store_credit", return_method="dropoff",
        dropoff_chain="FamilyMart", policy=policy,
    )  # fmt: skip
    credit = {"amount": "1000.00", "bonus": "100.00", "currency": "TWD", "status": "issued",
              "kind": "store_credit", "credit_id": "sc_1", "code": "SC-7Q2K-M4XD"}  # fmt: skip
    expires = opened + timedelta(days=7)
    shipment = {"direction": "inbound", "booked_by": "seller", "carrier": "FamilyMart",
                "tracking_number": "FM48291305771",
                "dropoff": {"code": "482913057716", "chain": "FamilyMart",
                            "expires_at": expires.isoformat()}}  # fmt: skip
    story.step(timedelta(hours=20), status="in_transit", store_credit=credit,
               shipments=[shipment])  # fmt: skip
    await page.goto(f"{api.url}/console/cases/{story.case_id}")
    await expect(page.locator("#case-status")).to_have_text("In transit")
    await expect(page.get_by_role("heading", name="Store credit")).to_be_visible()
    await expect(page.locator("#store-credit")).to_have_text(
        "1100.00 TWD (bonus included: 100.00) · issued · SC-7Q2K-M4XD"
    )
    await expect(page.get_by_role("heading", name="Drop-off")).to_be_visible()
    await expect(page.locator("#dropoff")).to_contain_text(
        "FamilyMart · 482913057716 · expires in "
    )
    await expect(page.locator("#dropoff time.countdown")).to_have_attribute(
        "datetime", expires.isoformat()
    )
    await expect(page.locator("ul.rules")).to_contain_text(
        "Store credit instead of a refund: TWD 1,000.00 plus a 10% bonus of TWD 100.00"
    )
    await page.screenshot(path=str(_shots(tmp_path) / "credit.png"))


async def test_another_agents_session_acts_as_that_agent_and_needs_its_csrf_token(
    api: Api,  # noqa: F811
    chromium: Browser,
) -> None:
    first, second = add_agent(api), add_agent(api)
    case = await api.open(items=OPENED_MUG)
    await api.reach(case["id"], "awaiting_review", recorded=True)
    await _signed_in(chromium, api, first)
    page = await _signed_in(chromium, api, second)
    await page.goto(f"{api.url}/console/cases/{case['id']}")
    # A post from this session without the page's token: refused, nothing reaches the case.
    refused = await page.request.post(
        f"{api.url}/console/cases/{case['id']}/actions",
        form={"action": "note", "message": "no token"},
    )
    assert refused.status == 403
    # With the token but naming the other agent: recorded as this session's agent.
    token = await page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    posted = await page.request.post(
        f"{api.url}/console/cases/{case['id']}/actions",
        form={"csrf_token": token, "action": "note", "message": "mine", "actor": first},
    )
    assert posted.ok
    notes = [e for e in (await api.case(case["id"]))["timeline"] if e["kind"] == "note"]
    assert [(n["actor"], n["message"]) for n in notes] == [(second, "mine")]


async def test_an_agent_inspects_a_three_line_return_line_by_line(
    api: Api,  # noqa: F811
    chromium: Browser,
) -> None:
    email = add_agent(api)
    items = [
        {"sku": "MUG-1", "name": "Mug", "category": "kitchen", "unit_price": "450.00",
         "opened": True, "reason": "changed_mind"},
        {"sku": "LAMP-1", "name": "Desk lamp", "category": "electronics", "unit_price": "2000.00",
         "reason": "defective"},
        {"sku": "BRUSH-1", "name": "Toothbrush", "category": "personal_hygiene",
         "unit_price": "300.00", "reason": "changed_mind"},
    ]  # fmt: skip
    case = await api.open(items=items, reason=None)
    case_id = case["id"]
    await api.reach(case_id, "awaiting_review", recorded=True)
    page = await _signed_in(chromium, api, email)
    await page.goto(f"{api.url}/console/cases/{case_id}")
    # The toothbrush stays out, with its rule; the agent approves the other two.
    await expect(page.locator(".rules")).to_contain_text("1 of 3 lines can't be returned")
    await expect(page.locator(".rules")).to_contain_text("BRUSH-1 (personal_hygiene)")
    await page.locator('form[data-action="approve"]').get_by_role("button", name="Approve").click()
    await expect(page.locator("#case-status")).to_have_text("Awaiting shipment")
    await api.event(case_id, "warehouse.received")
    await api.reach(case_id, "inspecting", recorded=True)

    await page.goto(f"{api.url}/console/cases/{case_id}")
    form = page.locator('form[data-action="record_inspection"]')
    await form.locator("xpath=ancestor::details").locator("summary").click()
    rows = form.locator("fieldset.lines tbody tr")
    # A row for each line taken back, not for the toothbrush.
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("Mug")
    await expect(rows.nth(1)).to_contain_text("Desk lamp")
    await rows.nth(0).locator("select").select_option(label="Passed")
    await rows.nth(1).locator("select").select_option(label="Failed")
    await rows.nth(1).get_by_label("Refund amount LAMP-1").fill("500")
    await rows.nth(1).get_by_label("Notes LAMP-1").fill("Water inside the base.")
    await form.get_by_role("button", name="Record inspection").click()
    await page.wait_for_url(f"{api.url}/console/cases/{case_id}")
    await expect(page.locator(".timeline")).to_contain_text(
        "1 of 2 lines failed inspection (LAMP-1)."
    )
    recorded = [
        e for e in (await api.case(case_id))["timeline"] if e["kind"] == "inspection_recorded"
    ]
    assert recorded[0]["actor"] == email
    assert [
        (line["sku"], line["result"], line["refund_amount"])
        for line in recorded[0]["data"]["lines"]
    ] == [
        ("MUG-1", "pass", None),
        ("LAMP-1", "fail", "500"),
    ]


async def test_bulk_assigning_three_cases_reports_each(
    api: Api,  # noqa: F811
    chromium: Browser,
) -> None:
    email = add_agent(api)
    customer = f"C-bulk-{secrets.token_hex(4)}"
    cases = [await api.open(customer_id=customer, items=OPENED_MUG) for _ in range(3)]
    for case in cases:
        await api.reach(case["id"], "awaiting_review", recorded=True)
    page = await _signed_in(chromium, api, email)
    await page.goto(f"{api.url}/console?q={customer}")
    for case in cases:
        await page.locator(f"input[name=case_id][value={case['id']}]").check()
    await page.select_option("select[name=action]", "assign")
    await page.fill(".bulk-bar input[name=agent]", "lee@shop.example")
    await page.get_by_role("button", name="Apply").click()
    await page.wait_for_url(f"{api.url}/console/bulk")
    for case in cases:
        row = page.locator(f'tr[data-case="{case["id"]}"]')
        await expect(row).to_have_class("ok")
        await expect(row).to_contain_text("Done")
    for case in cases:
        assert (await api.case(case["id"]))["assignee"] == "lee@shop.example"


async def test_a_zh_tw_agent_works_in_zh_tw_on_a_phone(
    api: Api,  # noqa: F811
    chromium: Browser,
) -> None:
    email = add_agent(api, locale="zh-TW")
    case = await api.open(items=OPENED_MUG)
    await api.reach(case["id"], "awaiting_review", recorded=True)
    # The browser says English; the agent's own preference wins.
    page = await _signed_in(chromium, api, email, width=390)
    assert await page.locator("html").get_attribute("lang") == "zh-TW"
    await expect(page.locator("h1")).to_contain_text("等待客服處理的案件")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await page.goto(f"{api.url}/console/cases/{case['id']}")
    await expect(page.locator("#case-status")).to_have_text("待審核")
    await expect(page.locator('form[data-action="approve"] button')).to_have_text("核准")
    # Nothing is cut off at a phone's width: the page never scrolls sideways.
    wide = await page.evaluate(
        """Array.from(document.querySelectorAll('body *'))
             .filter(e => e.getBoundingClientRect().right > 391)
             .map(e => e.tagName + '.' + e.className).slice(0, 8)"""
    )
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, wide


async def test_a_canned_reply_comes_in_the_customers_language_and_is_edited_before_sending(
    api: Api,  # noqa: F811
    chromium: Browser,
) -> None:
    email = add_agent(api)
    case = await api.open(items=OPENED_MUG, customer={"locale": "zh-TW"})
    await api.reach(case["id"], "awaiting_review", recorded=True)
    page = await _signed_in(chromium, api, email)
    await page.goto(f"{api.url}/console/cases/{case['id']}")
    form = page.locator('form[data-action="request_info"]')
    await page.locator("summary", has_text="Ask the customer").click()
    await form.locator("select[data-canned]").select_option(label="Ask for a photo")
    question = form.locator("textarea[name=question]")
    await expect(question).to_have_value(
        f"能否請您提供商品與包裝的照片？這能幫助我們盡快處理案件 {case['id']}。"
    )
    await question.press("End")
    await question.type(" 謝謝！")
    await form.get_by_role("button", name="Ask the customer").click()
    await expect(page.locator("#case-status")).to_have_text("Awaiting customer")
    asked = await api.case(case["id"])
    assert any(e["message"].endswith("謝謝！") for e in asked["timeline"]), asked["timeline"]


async def test_the_reports_page_shows_the_figures_the_api_gives(
    api: Api,  # noqa: F811
    chromium: Browser,
    tmp_path: Path,
) -> None:
    # A month of its own, long before the suite's other cases: its figures are known
    # (tests/api/test_reports.py works them out by hand).
    tag = secrets.token_hex(4)
    seed(api.engine, start=MAY_2025, queue=f"q-{tag}", other_queue=f"q-{tag}-other")
    period = {"from": "2025-05-01", "to": "2025-05-31"}
    summary = (await api.request("GET", "/v1/reports/summary", "operator", params=period)).json()
    page = await _signed_in(chromium, api, add_agent(api))
    await page.get_by_role("link", name="Reports").click()
    await page.wait_for_url(f"{api.url}/console/reports")
    await page.fill("input[name=from]", period["from"])
    await page.fill("input[name=to]", period["to"])
    await page.get_by_role("button", name="Show").click()
    await page.wait_for_url(f"{api.url}/console/reports?**")
    shown: dict[str, str] = await page.evaluate(
        """Object.fromEntries(Array.from(document.querySelectorAll('[data-figure]'))
             .map(e => [e.dataset.figure, e.textContent.trim()]))"""
    )
    assert shown["cases"] == str(summary["cases"]) == "8"
    for name in ("by_type", "by_status", "by_reason"):
        for count in summary["volumes"][name]:
            assert shown[f"{name}.{count['key']}"] == str(count["count"]), name
    assert shown["by_type.return"] == "5"
    for timer in summary["sla"]["timers"]:
        assert shown[f"sla.{timer['timer']}.met"] == str(timer["met"])
        assert shown[f"sla.{timer['timer']}.breached"] == str(timer["breached"])
    assert (shown["sla.review.met"], shown["sla.review.breached"]) == ("5", "1")
    assert shown["breaches"] == str(summary["sla"]["breaches"]) == "2"
    for total in summary["refunds"]["totals"]:
        assert shown[f"refunds.{total['currency']}.count"] == str(total["count"])
        assert Decimal(shown[f"refunds.{total['currency']}.total"]) == Decimal(total["total"])
    assert Decimal(shown["refunds.TWD.total"]) == Decimal("3300.00")
    assert shown["csat.count"] == str(summary["csat"]["count"])
    assert float(shown["csat.average"]) == pytest.approx(summary["csat"]["average"], abs=0.005)
    # Every table downloads as CSV, with the figures the page shows.
    async with page.expect_download() as download_info:
        await page.locator("a.csv").first.click()
    download = await download_info.value
    rows = (Path(await download.path())).read_text().splitlines()
    assert rows[0] == "type,cases" and "return,5" in rows
    await page.screenshot(path=str(_shots(tmp_path) / "reports.png"), full_page=True)


async def test_a_supervisor_approves_a_late_return_as_an_exception_and_waives_the_fee(
    api: Api,  # noqa: F811
    chromium: Browser,
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    # An opened mug delivered 10 days ago, for a change of mind: rejected at open (7 days).
    order = {"placed_at": (now - timedelta(days=14)).isoformat(),
             "shipped_at": (now - timedelta(days=12)).isoformat(),
             "delivered_at": (now - timedelta(days=10)).isoformat()}  # fmt: skip
    case = await api.open(items=OPENED_MUG, reason="changed_mind", order=order,
                          description="The colour is not what the photo showed.")  # fmt: skip
    await api.reach(case["id"], "rejected", recorded=True)
    email = add_agent(api, AgentRole.SUPERVISOR)
    page = await _signed_in(chromium, api, email)
    await page.goto(f"{api.url}/console/cases/{case['id']}")
    await expect(page.locator("#case-status")).to_have_text("Rejected")
    rules = page.locator("ul.rules")
    await expect(rules).to_contain_text("outside_return_window")

    await page.locator("summary", has_text="Approve as an exception").click()
    form = page.locator('form[data-action="approve_exception"]')
    await form.locator("textarea[name=reason]").fill(
        "The courier delivered 4 days late; the customer wrote to us on day 6."
    )
    await form.locator("input[name=restocking_fee]").fill("0")
    await form.locator("select[name=shipping_payer]").select_option(label="The shop")
    await expect(form).to_contain_text("Restocking fee (supervisor)")
    await expect(form).to_contain_text("Return shipping paid by (supervisor)")
    await form.scroll_into_view_if_needed()
    await page.screenshot(path=str(_shots(tmp_path) / "exception.png"))

    await form.get_by_role("button", name="Approve as an exception").click()
    await page.wait_for_url(f"{api.url}/console/cases/{case['id']}")
    # Reopened on the careful path: the shop's pickup is booked, the item comes back first.
    await expect(page.locator("#case-status")).to_have_text("Awaiting shipment")
    await expect(rules.locator("li").first).to_have_text(
        f"agent_exception Approved as an exception by {email}: "
        "The courier delivered 4 days late; the customer wrote to us on day 6."
    )
    await expect(rules).to_contain_text(
        f"agent_adjustment Changed by {email}: restocking fee TWD 45.00 -> TWD 0.00 (waived); "
        "return shipping paid by the shop (pickup booked)."
    )
    # The waived fee shows in the refund estimate: the mug's whole 450.
    await expect(page.locator("section.card", has_text="Refund estimate")).to_contain_text(
        "Refund estimate 450.00 TWD"
    )
    await expect(page.locator(".timeline")).to_contain_text(f"exception_approved {email}")


async def test_a_supervisor_sees_what_a_stricter_window_would_have_changed(
    api: Api,  # noqa: F811
    chromium: Browser,
    tmp_path: Path,
) -> None:
    # tests/api/test_policy_simulator.py works this history's figures out by hand (and
    # docs/policy.md shows the same candidate in a terminal).
    ids = simulation_cases.seed(api.engine, start=JUNE_2020)
    page = await _signed_in(chromium, api, add_agent(api, AgentRole.SUPERVISOR))
    await page.goto(f"{api.url}/console/reports/policy")
    await page.fill("textarea[name=candidate]", "[returns]\nwindow_days = 3\n")
    await page.fill("input[name=since]", "2020-06-01")
    await page.fill("input[name=until]", "2020-06-30")
    await page.fill("input[name=minutes_per_review]", "15")
    await page.get_by_role("button", name="Simulate").click()
    await expect(page.locator(".period")).to_have_text(
        "Cases opened from 2020-06-01 00:00 to 2020-07-01 00:00 (UTC): 9 · left out child_case: 1"
    )
    overall = page.locator("section.card", has=page.get_by_role("heading", name="Overall"))
    expected = {
        "Eligible": ["8", "6", "-2"],
        "Rejected": ["1", "3", "+2"],
        "Auto-approval rate": ["22.2%", "11.1%", "-11.1 pt"],
        "Agent hours": ["1.50", "1.25", "-0.25"],
        "Refunds": ["TWD 1,870.00", "TWD 870.00", "TWD -1,000.00"],
        "Fees": ["TWD 80.00", "TWD 80.00", "TWD +0.00"],
    }
    for label, figures in expected.items():
        first_cell = page.locator("td", has_text=re.compile(f"^{re.escape(label)}$"))
        row = overall.locator("tr", has=first_cell)
        await expect(row.locator("td")).to_have_text([label, *figures])
    await expect(page.locator('[data-figure="flips"]')).to_have_text("2")
    for letter in ("A", "D"):
        flip = page.locator(f'article[data-flip="{ids[letter]}"]')
        await expect(flip).to_contain_text("eligible: yes → no")
        await expect(flip.locator("ul").last).to_contain_text("outside_return_window")
    await expect(page.locator("article.flip")).to_have_count(2)
    # The form and the overall table; the groups and flips below make the page three times
    # as tall.
    box = await overall.bounding_box()
    assert box is not None
    clip = {"x": 0, "y": 0, "width": 1280, "height": box["y"] + box["height"] + 16}
    await page.screenshot(path=str(_shots(tmp_path) / "simulator.png"), full_page=True, clip=clip)
