"""An open with a locale we don't write falls back to the best match (domain/locales.py)."""

from __future__ import annotations

import asyncio
from email.header import decode_header, make_header

from tests.api.conftest import Api


async def test_zh_hk_opens_and_gets_zh_tw_mail(api: Api) -> None:
    case = await api.open(customer={"locale": "zh-HK"})
    case_id, email = case["id"], case["customer"]["email"]
    # The case records the locale it speaks, and keeps the tag the storefront sent.
    assert case["customer"]["locale"] == "zh-TW"
    assert case["customer"]["requested_locale"] == "zh-HK"
    assert (await api.case(case_id))["customer"]["locale"] == "zh-TW"

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not (subjects := [s for s in _subjects(api, email) if case_id in s]):
        assert loop.time() < deadline, "no mail reached the customer"
        await asyncio.sleep(0.05)
    subject = subjects[0]
    # zh-TW's own wording (zh-CN says 我们, en "We received").
    assert subject.startswith("我們已收到您的"), subject
    response = await api.request("GET", f"/v1/cases/{case_id}/notifications", "agent")
    assert {n["locale"] for n in response.json()["items"]} == {"zh-TW"}


def _subjects(api: Api, email: str) -> list[str]:
    return [str(make_header(decode_header(m["Subject"]))) for m in api.mail.to(email)]
