"""A customer uses the status page in a real browser: no JavaScript, just forms (DESIGN 6).

Headless Chromium (Debian's `chromium`, driven by Playwright, launched as in
tests/test_temporal_ui.py) against the whole API stack of tests/api/conftest.py, on SQLite.
"""

from __future__ import annotations

from email.message import EmailMessage, Message
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

# The API stack's fixtures, shared with this module (importing them is how pytest shares them).
from tests.api.conftest import Api, api, dev_server, postgres_url, token_of  # noqa: F401
from tests.test_temporal_ui import UI_TIMEOUT_MS


def html_of(message: Message) -> str:
    """The HTML part of a received email."""
    # The sink parses with the modern policy, so every message is an EmailMessage.
    assert isinstance(message, EmailMessage)
    part = message.get_body(preferencelist=("html",))
    assert part is not None, "the email has no HTML part"
    return str(part.get_content())


@pytest.mark.parametrize("locale", ["en", "zh-TW", "zh-CN"])
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
async def test_customer_follows_the_mail_and_sends_tracking_from_the_page(
    api: Api,  # noqa: F811
    chromium: Browser,
    locale: str,
    tmp_path: Path,
) -> None:
    case = await api.open(customer={"locale": locale})
    case_id, token = case["id"], token_of(case)
    email = case["customer"]["email"]
    await api.reach(case_id, "awaiting_shipment", recorded=True)
    # A phone-sized window: the page is meant for one.
    context = await chromium.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    try:
        page.set_default_timeout(UI_TIMEOUT_MS)
        # The approval mail, as the customer's mail app shows it, links to the status page.
        for _ in range(40):
            approved = [m for m in api.mail.to(email) if case_id in str(m["Subject"])]
            if len(approved) >= 2:
                break
            await page.wait_for_timeout(250)
        mail_html = html_of(approved[-1])
        await page.set_content(mail_html)
        link = page.locator(f'a[href$="/status/{token}"]').first
        await expect(link).to_be_visible()
        await link.click()
        await page.wait_for_url(f"{api.url}/status/{token}")
        assert await page.locator("html").get_attribute("lang") == locale
        waiting_step = await page.locator('li[aria-current="step"]').inner_text()
        # The worker lists the form once the step waits for the parcel: reload till then.
        form = page.locator("#form-provide_tracking")
        for _ in range(40):
            if await form.count():
                break
            await page.wait_for_timeout(250)
            await page.reload()
        await page.fill("#carrier", "Black Cat")
        # A number of its own: a tracking number belongs to one open case.
        tracking = f"BC777{case_id[-4:]}"
        await page.fill("#tracking_number", tracking)
        await form.get_by_role("button").click()
        await page.wait_for_url(f"{api.url}/status/{token}")
        await expect(page.locator(".tracking")).to_have_text(tracking)
        await expect(form).to_have_count(0)

        await api.event(case_id, "carrier.picked_up", tracking_number=tracking)
        await api.reach(case_id, "in_transit")
        await page.reload()
        current = page.locator('li[aria-current="step"]')
        await expect(current).not_to_have_text(waiting_step)
        if locale == "en":
            await expect(page.locator("#status")).to_contain_text("in transit")
            await expect(current).to_have_text("in transit")
    except BaseException:
        shot = tmp_path / f"status-page-{locale}.png"
        await page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
        raise
    finally:
        await context.close()
